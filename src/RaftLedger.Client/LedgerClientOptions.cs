namespace RaftLedger.Client;

/// <summary>
/// How a <see cref="LedgerClient"/> reaches a cluster and how patiently it retries. Only
/// <see cref="Addresses"/> is required; the defaults suit a cluster on one network.
/// </summary>
public sealed record LedgerClientOptions
{
    /// <summary>
    /// gRPC addresses of some or all nodes (the node's <c>--grpc</c> endpoint, e.g.
    /// <c>http://10.0.0.1:9101</c>). The client asks them for the cluster map and falls back to them
    /// when it does not know a shard's leader. At least one is required.
    /// </summary>
    public required IReadOnlyList<Uri> Addresses { get; init; }

    /// <summary>
    /// Node id → gRPC address, for nodes whose gRPC address the cluster map does not carry (today's
    /// nodes publish only their REST address). Without an entry for a shard's leader the client
    /// cannot send to that leader directly and sends to any node, which forwards (one extra hop).
    /// </summary>
    public IReadOnlyDictionary<ulong, Uri> NodeAddresses { get; init; } = new Dictionary<ulong, Uri>();

    /// <summary>
    /// How long one create or lookup call may take, retries included, when the call does not give
    /// its own timeout. At this deadline a create call returns with the outcome of each event
    /// (definite, not applied, or unknown) instead of retrying further.
    /// </summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest one request to one node may take before it is abandoned and retried.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The first retry waits about this long (with jitter); each further retry doubles it.</summary>
    public TimeSpan RetryBackoffInitial { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Retries never wait longer than this, whatever the attempt number.</summary>
    public TimeSpan RetryBackoffMax { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How often the client re-reads the cluster map in the background, so it follows leadership
    /// moves that cause no error (a node that is not the leader forwards instead of refusing).
    /// Failures trigger an immediate refresh as well.
    /// </summary>
    public TimeSpan ClusterMapRefreshInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Create requests in flight per node. A call's events wait in the queue of the node that leads
    /// their shard; while that many requests to the node are in flight, further events for any of the
    /// node's shards queue and leave together in the next request (automatic batching). An idle node
    /// gets a call's events at once. With 64 callers, 1 gave larger requests, more throughput and a
    /// lower p99 than 2 (docs/PERFORMANCE.md, Client SDK).
    /// </summary>
    public int RequestsInFlightPerNodeMax { get; init; } = 1;

    /// <summary>
    /// No longer used: the client batches per node (see <see cref="RequestsInFlightPerNodeMax"/>),
    /// because a node persists all its shards' entries of one round with one fsync, so one request
    /// per node carries more events for the same cost. Still validated (at least 1) so that existing
    /// settings keep compiling and starting; it will be removed in a later major version.
    /// </summary>
    [Obsolete("The client batches per node now: use RequestsInFlightPerNodeMax. This option has no effect.")]
    public int RequestsInFlightPerShardMax { get; init; } = 1;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option that is out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Addresses);
        if (Addresses.Count == 0)
        {
            throw new ArgumentException("Give at least one node gRPC address, e.g. http://127.0.0.1:9101.", nameof(Addresses));
        }

        foreach (var address in Addresses.Concat(NodeAddresses.Values))
        {
            if (!address.IsAbsoluteUri || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
            {
                throw new ArgumentException($"Node address '{address}' must be an absolute http:// or https:// URL.", nameof(Addresses));
            }
        }

        Positive(CallTimeout, nameof(CallTimeout));
        Positive(RequestTimeout, nameof(RequestTimeout));
        Positive(RetryBackoffInitial, nameof(RetryBackoffInitial));
        Positive(ClusterMapRefreshInterval, nameof(ClusterMapRefreshInterval));
        if (RetryBackoffMax < RetryBackoffInitial)
        {
            throw new ArgumentException($"RetryBackoffMax ({RetryBackoffMax}) must be at least RetryBackoffInitial ({RetryBackoffInitial}).", nameof(RetryBackoffMax));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(RequestsInFlightPerNodeMax, 1, nameof(RequestsInFlightPerNodeMax));
#pragma warning disable CS0618 // Validated for compatibility although it has no effect.
        ArgumentOutOfRangeException.ThrowIfLessThan(RequestsInFlightPerShardMax, 1, nameof(RequestsInFlightPerShardMax));
#pragma warning restore CS0618
    }

    /// <summary>
    /// Parses <c>id=host:port,...</c> or <c>host:port,...</c> (each may also be a full http:// URL) into
    /// options: entries with an id also fill <see cref="NodeAddresses"/>.
    /// </summary>
    public static LedgerClientOptions Parse(string addresses)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(addresses);
        var list = new List<Uri>();
        var byId = new Dictionary<ulong, Uri>();
        foreach (var item in addresses.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var text = item;
            var equals = item.IndexOf('=', StringComparison.Ordinal);
            ulong? id = null;
            if (equals > 0)
            {
                if (!ulong.TryParse(item.AsSpan(0, equals), System.Globalization.CultureInfo.InvariantCulture, out var parsed) || parsed == 0)
                {
                    throw new FormatException($"'{item}': the part before '=' must be a node id (a positive integer).");
                }

                id = parsed;
                text = item[(equals + 1)..];
            }

            if (!text.Contains("://", StringComparison.Ordinal))
            {
                text = "http://" + text;
            }

            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
            {
                throw new FormatException($"'{item}' is not a node address; write host:port, http://host:port or id=host:port.");
            }

            list.Add(uri);
            if (id is { } nodeId)
            {
                byId[nodeId] = uri;
            }
        }

        return new LedgerClientOptions { Addresses = list, NodeAddresses = byId };
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");
        }
    }
}
