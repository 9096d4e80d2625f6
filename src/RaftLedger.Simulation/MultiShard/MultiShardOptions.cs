using RaftLedger.Common.Placement;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Raft;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>The multi-shard simulator's limits, in one place (a test checks how they relate).</summary>
public static class MultiShardLimits
{
    /// <summary>Replicas per shard (one Raft group of three, as in the node).</summary>
    public const int ReplicasPerShard = 3;

    /// <summary>Fewest and most simulated nodes.</summary>
    public const int NodesMin = 3;
    public const int NodesMax = 5;

    /// <summary>Fewest and most shards.</summary>
    public const int ShardsMin = 1;
    public const int ShardsMax = 8;

    /// <summary>Most transfers in one client request.</summary>
    public const int RequestTransfersMax = 8;

    /// <summary>
    /// Raft's per-message (and per-entry) byte bound in every group: twice the largest ledger command, a cross-shard
    /// command of a full chain (<see cref="CrossShardLimits.CommandBytesMax"/>), as the node's host sizes it; Raft refuses
    /// a larger entry, so a smaller bound would leave such a chain's Prepare or Decide unproposable.
    /// </summary>
    public const long RaftMessageBytesMax = 2L * CrossShardLimits.CommandBytesMax;

    /// <summary>Logical nanoseconds per tick: a tick stands for 100 ms of cluster time (RaftConfig.Recommended's tick).</summary>
    public const ulong TickNs = 100_000_000;
}

/// <summary>Deliberate host bugs, so tests can prove the bank checkers catch them. Never set outside such tests.</summary>
public enum MultiShardHostBug
{
    None = 0,

    /// <summary>Answers a client's transfers <c>created</c> as soon as they are proposed, before the ledger decided anything.</summary>
    AcknowledgeOnPropose = 1,

    /// <summary>Serves account reads from any running replica at once, without waiting for it to apply the read index.</summary>
    StaleReads = 2,

    /// <summary>Serves account reads with the reservations of undecided cross-shard legs counted as pending amounts.</summary>
    ReadsShowReservations = 3,

    /// <summary>Serves reads and takes writes of accounts an inherited cross-shard leg fences (see <c>CrossShardDriver.IsAccountFenced</c>).</summary>
    IgnoreFences = 4,
}

/// <summary>Everything that shapes one multi-shard cluster and its bank workload. A run is fully determined by these.</summary>
public sealed record MultiShardOptions
{
    public required ulong Seed { get; init; }

    /// <summary>Simulated nodes (3..5); every shard has three replicas on three distinct nodes.</summary>
    public required int NodeCount { get; init; }

    /// <summary>Shards (1..8), numbered 0..S-1 as <see cref="ShardRouter.ShardOf"/> returns them.</summary>
    public required int ShardCount { get; init; }

    /// <summary>Guarded customer accounts per shard (each shard also has one unguarded bank account that funds them).</summary>
    public int CustomersPerShard { get; init; } = 4;

    /// <summary>Amount the bank gives every customer at set-up.</summary>
    public ulong InitialBalance { get; init; } = 1_000;

    /// <summary>Clients, each with one request outstanding at a time.</summary>
    public int ClientCount { get; init; } = 4;

    /// <summary>Share of new client requests that move money between shards (0 until the cross-shard driver is hosted).</summary>
    public double CrossShardFraction { get; init; }

    /// <summary>Share of cross-shard requests that are two-phase (a pending transfer, or a post/void of one); 0: none.</summary>
    public double TwoPhaseFraction { get; init; }

    /// <summary>Ticks a client waits for an answer before retrying the same transfers (same ids).</summary>
    public int RequestTimeoutTicks { get; init; } = 40;

    /// <summary>Ticks a client waits between an answer and its next request (uniform in [0, max]).</summary>
    public int ClientThinkTicksMax { get; init; } = 4;

    /// <summary>A replica snapshots its ledger and compacts its log every this many applied entries (0: never).</summary>
    public int SnapshotEveryEntries { get; init; }

    /// <summary>Entries kept behind a local snapshot.</summary>
    public int EntriesKeptAfterSnapshot { get; init; } = 5;

    /// <summary>Probability that a crash tears the last surviving unsynced write of a replica's disk.</summary>
    public double TornWriteProbability { get; init; } = 0.3;

    /// <summary>Ticks between full log checks of every shard.</summary>
    public int FullCheckEveryTicks { get; init; } = 100;

    /// <summary>
    /// Ticks between checks that every replica's derived side records are what its Prepared records imply
    /// (<see cref="MultiShardCluster.CheckLegRecordsDerived"/>): often, so that they run while legs are prepared.
    /// </summary>
    public int DerivedCheckEveryTicks { get; init; } = 20;

    /// <summary>Leaders send before persisting when their Ready allows it.</summary>
    public bool SendBeforePersistWhenAllowed { get; init; }

    /// <summary>
    /// The drivers' timing in cluster time: resend unanswered messages every 2 ticks, ask about a leg prepared for
    /// 30 ticks (3 s; about 3 election timeouts, so a crashed coordinator's shard has a new leader by then).
    /// </summary>
    public CrossShardOptions CrossShard { get; init; } = new()
    {
        RetryIntervalNs = 2 * MultiShardLimits.TickNs,
        AbandonTimeoutNs = 30 * MultiShardLimits.TickNs,
    };

    /// <summary>Probability that a client reads both accounts of a transfer right after it is told it was created (the real-time order check).</summary>
    public double ReadAfterAcknowledgementProbability { get; init; } = 0.5;

    /// <summary>A deliberate bug in the host (tests of the checkers only).</summary>
    public MultiShardHostBug HostBug { get; init; }

    /// <summary>The Raft options of member <c>id</c> of every group; proposals are refused on followers so the host stamps timestamps only as leader.</summary>
    public Func<ulong, RaftConfig> RaftConfig { get; init; } = DefaultRaftConfig;

    public static RaftConfig DefaultRaftConfig(ulong id)
    {
        var recommended = Raft.RaftConfig.Recommended(id);
        return new RaftConfig
        {
            Id = id,
            ElectionTimeoutTicks = recommended.ElectionTimeoutTicks,
            HeartbeatTicks = recommended.HeartbeatTicks,
            InflightMessagesMax = recommended.InflightMessagesMax,
            InflightBytesMax = recommended.InflightBytesMax,
            MessageBytesMax = Math.Max(recommended.MessageBytesMax, MultiShardLimits.RaftMessageBytesMax),
            UncommittedBytesMax = recommended.UncommittedBytesMax,
            PreVote = recommended.PreVote,
            CheckQuorum = recommended.CheckQuorum,
            ReadOnlyMode = recommended.ReadOnlyMode,
            ProposalForwarding = ProposalForwarding.Refuse,
        };
    }

    /// <summary>Throws with a clear message when the settings make no sense.</summary>
    public void Validate()
    {
        if (NodeCount is < MultiShardLimits.NodesMin or > MultiShardLimits.NodesMax)
        {
            throw new ArgumentException($"NodeCount {NodeCount} must be in [{MultiShardLimits.NodesMin}, {MultiShardLimits.NodesMax}]");
        }

        if (ShardCount is < MultiShardLimits.ShardsMin or > MultiShardLimits.ShardsMax)
        {
            throw new ArgumentException($"ShardCount {ShardCount} must be in [{MultiShardLimits.ShardsMin}, {MultiShardLimits.ShardsMax}]");
        }

        if (CustomersPerShard < 2 || ClientCount < 0 || RequestTimeoutTicks < 1 || ClientThinkTicksMax < 0 || FullCheckEveryTicks < 1 || DerivedCheckEveryTicks < 1)
        {
            throw new ArgumentException("at least 2 customers per shard, client count >= 0, request timeout >= 1 tick, think time >= 0 and check interval >= 1 are required");
        }

        if (ReadAfterAcknowledgementProbability is < 0 or > 1)
        {
            throw new ArgumentException($"ReadAfterAcknowledgementProbability {ReadAfterAcknowledgementProbability} must be in [0, 1]");
        }

        if (TwoPhaseFraction is < 0 or > 1)
        {
            throw new ArgumentException($"TwoPhaseFraction {TwoPhaseFraction} must be in [0, 1]");
        }

        if (CrossShardFraction is < 0 or > 1)
        {
            throw new ArgumentException($"CrossShardFraction {CrossShardFraction} must be in [0, 1]");
        }
    }
}
