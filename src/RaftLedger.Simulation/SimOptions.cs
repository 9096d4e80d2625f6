using RaftLedger.Raft;

namespace RaftLedger.Simulation;

/// <summary>
/// Deliberate host bugs, so tests can prove the checkers catch what they claim to catch. Never set outside
/// such tests.
/// </summary>
public enum SimHostBug
{
    None = 0,

    /// <summary>Sends a Ready's messages before persisting it, breaking the Ready contract: a crash then loses acknowledged entries and votes.</summary>
    SendBeforePersist = 1,

    /// <summary>Answers reads from whatever node the client asked, without going through the log: stale reads.</summary>
    StaleLocalReads = 2,
}

/// <summary>Everything that shapes one simulated cluster. A run is fully determined by these and the seed.</summary>
public sealed record SimClusterOptions
{
    public required int NodeCount { get; init; }

    public required ulong Seed { get; init; }

    /// <summary>The Raft options of node <c>id</c>; by default the recommended ones (10-tick election timeout).</summary>
    public Func<ulong, RaftConfig> RaftConfig { get; init; } = Raft.RaftConfig.Recommended;

    /// <summary>Clients issuing key-value operations (each has one outstanding at a time).</summary>
    public int ClientCount { get; init; } = 3;

    /// <summary>Keys clients pick from; few keys mean more contention and a sharper linearizability check.</summary>
    public int KeyCount { get; init; } = 3;

    /// <summary>Ticks a client waits for an answer before retrying the same operation elsewhere.</summary>
    public int RequestTimeoutTicks { get; init; } = 30;

    /// <summary>Ticks a client waits between an answer and its next operation (uniform in [0, max]).</summary>
    public int ClientThinkTicksMax { get; init; } = 3;

    /// <summary>A node takes a local snapshot and compacts once this many entries are applied past the last one (0: never).</summary>
    public int SnapshotEveryEntries { get; init; }

    /// <summary>Entries kept behind a local snapshot so that slightly lagging followers need no snapshot.</summary>
    public int EntriesKeptAfterSnapshot { get; init; } = 5;

    /// <summary>Probability that a crash tears the last surviving unsynced write.</summary>
    public double TornWriteProbability { get; init; } = 0.3;

    /// <summary>Ticks between full log checks (log matching, committed entries durable on a majority).</summary>
    public int FullCheckEveryTicks { get; init; } = 100;

    /// <summary>
    /// Send a leader's messages before persisting when the Ready allows it (<c>MessagesMaySendBeforePersist</c>,
    /// thesis §10.2.1), as a production host overlapping its disk write with replication would.
    /// </summary>
    public bool SendBeforePersistWhenAllowed { get; init; }

    /// <summary>Clients read with ReadIndex (no log entry) instead of proposing their reads through the log.</summary>
    public bool ReadIndexReads { get; init; }

    /// <summary>A deliberate bug in the host (tests of the checkers only).</summary>
    public SimHostBug HostBug { get; init; }

    public void Validate()
    {
        if (NodeCount is < 1 or > SimLimits.NodesMax)
        {
            throw new ArgumentException($"NodeCount {NodeCount} must be in [1, {SimLimits.NodesMax}]");
        }

        if (ClientCount < 0 || KeyCount < 1 || RequestTimeoutTicks < 1 || ClientThinkTicksMax < 0 || FullCheckEveryTicks < 1)
        {
            throw new ArgumentException("client count >= 0, key count >= 1, request timeout >= 1 tick, think time >= 0 and check interval >= 1 are required");
        }
    }
}
