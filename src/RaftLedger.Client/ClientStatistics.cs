namespace RaftLedger.Client;

/// <summary>
/// Counters of what a <see cref="LedgerClient"/> has done since it was created (a snapshot; read
/// <see cref="LedgerClient.Statistics"/> again for fresh values). Comparing
/// <see cref="CreateCalls"/> with <see cref="CreateRequests"/> shows the automatic batching.
/// </summary>
public readonly record struct ClientStatistics
{
    /// <summary>Create calls made by the application (<c>CreateTransfersAsync</c>, <c>CreateAccountsAsync</c>, ...).</summary>
    public long CreateCalls { get; init; }

    /// <summary>Events given in those calls.</summary>
    public long CreateEvents { get; init; }

    /// <summary>Create requests sent to nodes, retries included: at most one per call, usually far fewer under load.</summary>
    public long CreateRequests { get; init; }

    /// <summary>
    /// Events carried by those requests, retries included: <c>CreateRequestEvents / CreateRequests</c>
    /// is the mean request size the automatic batching achieved.
    /// </summary>
    public long CreateRequestEvents { get; init; }

    /// <summary>
    /// Create requests that carried events of an earlier, failed request (same events, same ids). A
    /// failed request's events are routed again by their shards' current leaders, so a retry may
    /// carry only some of them, together with other events.
    /// </summary>
    public long CreateRetries { get; init; }

    /// <summary>Create requests sent to the node the client believed to lead the shards of all the events in the request.</summary>
    public long RequestsToLeader { get; init; }

    /// <summary>Lookup and query requests sent (retries included).</summary>
    public long ReadRequests { get; init; }

    /// <summary>Times the client re-read the cluster map (initially, periodically and after failures).</summary>
    public long ClusterMapRefreshes { get; init; }

    /// <summary>Events whose call returned without an answer (deadline passed): not applied or unknown.</summary>
    public long EventsWithoutAnswer { get; init; }
}

/// <summary>The live counters behind <see cref="ClientStatistics"/> (updated with interlocked operations).</summary>
internal sealed class StatisticsCounters
{
    public long CreateCalls;
    public long CreateEvents;
    public long CreateRequests;
    public long CreateRequestEvents;
    public long CreateRetries;
    public long RequestsToLeader;
    public long ReadRequests;
    public long ClusterMapRefreshes;
    public long EventsWithoutAnswer;

    public ClientStatistics Snapshot() => new()
    {
        CreateCalls = Interlocked.Read(ref CreateCalls),
        CreateEvents = Interlocked.Read(ref CreateEvents),
        CreateRequests = Interlocked.Read(ref CreateRequests),
        CreateRequestEvents = Interlocked.Read(ref CreateRequestEvents),
        CreateRetries = Interlocked.Read(ref CreateRetries),
        RequestsToLeader = Interlocked.Read(ref RequestsToLeader),
        ReadRequests = Interlocked.Read(ref ReadRequests),
        ClusterMapRefreshes = Interlocked.Read(ref ClusterMapRefreshes),
        EventsWithoutAnswer = Interlocked.Read(ref EventsWithoutAnswer),
    };
}
