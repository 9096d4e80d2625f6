using RaftLedger.Common;

namespace RaftLedger.Client.Internal;

/// <summary>
/// Which node to send a shard's requests to. Holds one connection per node address, the merged
/// cluster map, and which nodes failed recently; re-reads the map periodically and after failures.
/// Thread-safe: the routing table is an immutable snapshot swapped atomically.
/// </summary>
internal sealed class ClusterRouter : IAsyncDisposable
{
    private readonly LedgerClientOptions options;
    private readonly TimeProvider time;
    private readonly StatisticsCounters statistics;
    private readonly Func<Uri, INodeConnection> connect;
    private readonly Lock connectionsGate = new();
    private readonly Dictionary<Uri, NodeSlot> slotsByAddress = [];
    // Invariant: seeds.Length >= 1 (options validated); a seed slot is never removed.
    private readonly NodeSlot[] seeds;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task refreshLoop;
    private RouteTable? table;
    private Task<RouteTable?>? refreshing;
    private long lastRefreshTimestamp;
    private int roundRobin;
    // 1 while a failure-triggered refresh waits for the refresh gap to pass.
    private int refreshScheduled;

    public ClusterRouter(LedgerClientOptions options, TimeProvider time, StatisticsCounters statistics, Func<Uri, INodeConnection> connect)
    {
        this.options = options;
        this.time = time;
        this.statistics = statistics;
        this.connect = connect;
        seeds = options.Addresses.Distinct().Select(SlotFor).ToArray();
        Invariant.Check(seeds.Length >= 1);
        refreshLoop = RefreshPeriodicallyAsync();
    }

    /// <summary>The routing table, or null before the first successful map read.</summary>
    public RouteTable? Table => Volatile.Read(ref table);

    public CancellationToken Stopping => stopping.Token;

    /// <summary>The routing table, reading the map first if there is none yet (until <paramref name="deadline"/>).</summary>
    public async Task<RouteTable> GetTableAsync(long deadline, CancellationToken cancellationToken)
    {
        var attempt = 0;
        while (true)
        {
            if (Table is { } known)
            {
                return known;
            }

            if (await RefreshAsync(force: true) is { } fresh)
            {
                return fresh;
            }

            var remaining = Remaining(deadline);
            if (remaining <= TimeSpan.Zero)
            {
                throw new LedgerUnavailableException(
                    $"No node answered the cluster-map request ({string.Join(", ", seeds.Select(s => s.Connection.Address))}). Check that the nodes run and that the addresses are their --grpc endpoints.");
            }

            var delay = RetryPolicy.Backoff(attempt++, options.RetryBackoffInitial, options.RetryBackoffMax, Random.Shared.NextDouble());
            await Task.Delay(delay < remaining ? delay : remaining, time, cancellationToken);
        }
    }

    /// <summary>
    /// The node to send shard <paramref name="shard"/>'s next request to: its leader when known and
    /// not recently failed, otherwise the next seed node that has not failed recently.
    /// </summary>
    public INodeConnection Pick(RouteTable route, int shard, out bool toLeader) => Target(route, shard, out toLeader).Connection;

    /// <summary>
    /// The node whose create queue takes shard <paramref name="shard"/>'s events: its leader when known
    /// and not recently failed (<paramref name="toLeader"/>), otherwise a fallback node that has not
    /// failed recently, round robin (any node forwards to the leader).
    /// </summary>
    public NodeSlot Target(RouteTable route, int shard, out bool toLeader)
    {
        var now = time.GetTimestamp();
        if (shard >= 0 && route.Leaders[shard] is { } leader && !leader.IsAvoided(now))
        {
            toLeader = true;
            return leader;
        }

        toLeader = false;
        var nodes = FallbackNodes(route);
        var start = Interlocked.Increment(ref roundRobin);
        for (var i = 0; i < nodes.Length; i++)
        {
            var slot = nodes[(int)((uint)(start + i) % (uint)nodes.Length)];
            if (!slot.IsAvoided(now))
            {
                return slot;
            }
        }

        // Every node failed recently: try them in turn rather than give up before the deadline.
        return nodes[(int)((uint)start % (uint)nodes.Length)];
    }

    /// <summary>
    /// Whether shard <paramref name="shard"/>'s events queued for <paramref name="node"/> should still
    /// go there. A leader queue (<paramref name="fallback"/> false) keeps them while the node leads the
    /// shard and has not failed recently. A fallback queue keeps them while the shard's leader is
    /// unknown or failed and the node itself has not failed recently (or every node has: moving would
    /// not help). Stable, unlike <see cref="Target"/>'s round robin, so a leaderless shard's events do
    /// not hop between queues.
    /// </summary>
    public bool StillTargets(RouteTable route, int shard, NodeSlot node, bool fallback)
    {
        var now = time.GetTimestamp();
        if (route.Leaders[shard] is { } leader && !leader.IsAvoided(now))
        {
            return !fallback && ReferenceEquals(leader, node);
        }

        if (!fallback)
        {
            return false;
        }

        if (!node.IsAvoided(now))
        {
            return true;
        }

        foreach (var slot in FallbackNodes(route))
        {
            if (!slot.IsAvoided(now))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when the map names <paramref name="node"/> as shard <paramref name="shard"/>'s leader.</summary>
    public static bool IsLeader(RouteTable route, int shard, NodeSlot node) => ReferenceEquals(route.Leaders[shard], node);

    private NodeSlot[] FallbackNodes(RouteTable route) => route.Nodes.Length > 0 ? route.Nodes : seeds;

    /// <summary>A request to <paramref name="connection"/> failed: avoid the node for a while (if it is down) and re-read the map.</summary>
    public void ReportFailure(INodeConnection connection, bool nodeLooksDown)
    {
        if (nodeLooksDown)
        {
            SlotFor(connection.Address).AvoidUntil(time.GetTimestamp() + (long)(ClientLimits.NodeAvoidDuration.TotalSeconds * time.TimestampFrequency));
        }

        var sinceLast = time.GetElapsedTime(Interlocked.Read(ref lastRefreshTimestamp));
        if (sinceLast >= ClientLimits.ClusterMapRefreshGapMin)
        {
            _ = RefreshAsync(force: false);
        }
        else if (Interlocked.Exchange(ref refreshScheduled, 1) == 0)
        {
            // A refresh ran moments ago, maybe before the failure it should explain (mid-election):
            // read again once the gap has passed, once for any number of failures meanwhile.
            _ = RefreshLaterAsync(ClientLimits.ClusterMapRefreshGapMin - sinceLast);
        }
    }

    private async Task RefreshLaterAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, time, stopping.Token);
            Volatile.Write(ref refreshScheduled, 0);
            await RefreshAsync(force: true);
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
    }

    public TimeSpan Remaining(long deadline) => deadline == long.MaxValue
        ? Timeout.InfiniteTimeSpan
        : TimeSpan.FromSeconds((double)(deadline - time.GetTimestamp()) / time.TimestampFrequency);

    public long DeadlineAfter(TimeSpan timeout) => time.GetTimestamp() + (long)(timeout.TotalSeconds * time.TimestampFrequency);

    /// <summary>Reads the map from every known node at once and installs the merged result; one read at a time.</summary>
    public Task<RouteTable?> RefreshAsync(bool force)
    {
        lock (connectionsGate)
        {
            if (refreshing is { IsCompleted: false } running)
            {
                return running;
            }

            if (!force && time.GetElapsedTime(lastRefreshTimestamp) < ClientLimits.ClusterMapRefreshGapMin)
            {
                return Task.FromResult(Table);
            }

            Interlocked.Exchange(ref lastRefreshTimestamp, time.GetTimestamp());
            refreshing = ReadAndInstallAsync();
            return refreshing;
        }
    }

    private async Task<RouteTable?> ReadAndInstallAsync()
    {
        Interlocked.Increment(ref statistics.ClusterMapRefreshes);
        NodeSlot[] asked;
        lock (connectionsGate)
        {
            asked = [.. slotsByAddress.Values];
        }

        var reads = new Task<ClusterMap>[asked.Length];
        for (var i = 0; i < asked.Length; i++)
        {
            reads[i] = asked[i].Connection.GetClusterAsync(ClientLimits.ClusterMapReadTimeout, stopping.Token);
        }

        var answers = new List<ClusterMap>();
        for (var i = 0; i < reads.Length; i++)
        {
            try
            {
                answers.Add(await reads[i]);
            }
            catch (Exception exception) when (exception is Grpc.Core.RpcException or OperationCanceledException or ObjectDisposedException)
            {
                // That node did not answer; the others may have.
            }
        }

        if (answers.Count == 0)
        {
            return null;
        }

        var merged = MapMerge.Merge(answers);
        var route = BuildTable(merged);
        Volatile.Write(ref table, route);
        return route;
    }

    private RouteTable BuildTable(ClusterMap map)
    {
        var addresses = new Dictionary<ulong, NodeSlot>();
        foreach (var node in map.Nodes)
        {
            if (AddressOf(node) is { } address)
            {
                addresses[node.Id] = SlotFor(address);
            }
        }

        var leaders = new NodeSlot?[map.ShardCount];
        for (var shard = 0; shard < leaders.Length; shard++)
        {
            leaders[shard] = addresses.GetValueOrDefault(map.LeaderOf(shard));
        }

        // Fallback targets: the seeds plus every member whose address is known, so a client given
        // one address still reaches the others when that one is down.
        var nodes = seeds.Concat(addresses.Values).Distinct().ToArray();
        return new RouteTable(map, leaders, nodes);
    }

    /// <summary>The node's gRPC address: from the map when the node publishes it, else from the options.</summary>
    private Uri? AddressOf(ClusterNode node)
    {
        if (!string.IsNullOrEmpty(node.GrpcAddress))
        {
            var text = node.GrpcAddress.Contains("://", StringComparison.Ordinal) ? node.GrpcAddress : "http://" + node.GrpcAddress;
            if (Uri.TryCreate(text, UriKind.Absolute, out var published))
            {
                return published;
            }
        }

        return options.NodeAddresses.GetValueOrDefault(node.Id);
    }

    private NodeSlot SlotFor(Uri address)
    {
        lock (connectionsGate)
        {
            if (!slotsByAddress.TryGetValue(address, out var slot))
            {
                slot = new NodeSlot(connect(address));
                slotsByAddress[address] = slot;
            }

            return slot;
        }
    }

    private async Task RefreshPeriodicallyAsync()
    {
        using var timer = new PeriodicTimer(options.ClusterMapRefreshInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping.Token))
            {
                await RefreshAsync(force: false);
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        await refreshLoop;
        if (refreshing is { } last)
        {
            await ((Task)last).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        lock (connectionsGate)
        {
            foreach (var slot in slotsByAddress.Values)
            {
                slot.Connection.Dispose();
            }

            slotsByAddress.Clear();
        }

        stopping.Dispose();
    }
}

/// <summary>One node address: its connection and until when to avoid it after a failure.</summary>
internal sealed class NodeSlot(INodeConnection connection)
{
    // Invariant: 0 or a TimeProvider timestamp; the node is avoided while now < avoidUntil.
    private long avoidUntil;

    public INodeConnection Connection { get; } = connection;

    public bool IsAvoided(long now) => now < Interlocked.Read(ref avoidUntil);

    public void AvoidUntil(long timestamp) => Interlocked.Exchange(ref avoidUntil, timestamp);
}

/// <summary>
/// An immutable routing snapshot: the merged map, each shard's leader slot (null when unknown or its
/// address is not known), and every reachable node for fallback.
/// </summary>
internal sealed record RouteTable(ClusterMap Map, NodeSlot?[] Leaders, NodeSlot[] Nodes)
{
    public int ShardCount => Map.ShardCount;
}

/// <summary>Merges the maps several nodes answered (pure).</summary>
internal static class MapMerge
{
    /// <summary>
    /// Per shard, the entry reported with the highest term (a node cut off from the others may still
    /// believe in an old leader, with an older term); among equal terms, one that names a leader.
    /// </summary>
    public static ClusterMap Merge(IReadOnlyList<ClusterMap> answers)
    {
        Invariant.Check(answers.Count > 0);
        var first = answers[0];
        var shards = new ClusterShard[first.ShardCount];
        for (var shard = 0; shard < shards.Length; shard++)
        {
            ClusterShard? best = null;
            foreach (var answer in answers)
            {
                if (shard >= answer.ShardCount)
                {
                    continue;
                }

                var candidate = answer.Shards[shard];
                if (best is null || Better(candidate, best))
                {
                    best = candidate;
                }
            }

            shards[shard] = best!;
        }

        return new ClusterMap(first.Nodes, shards);
    }

    private static bool Better(ClusterShard candidate, ClusterShard best)
    {
        if (candidate.Term != best.Term)
        {
            return candidate.Term > best.Term;
        }

        return candidate.Leader != 0 && best.Leader == 0;
    }
}
