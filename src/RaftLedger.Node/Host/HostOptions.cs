using System.Net;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Node.Host;

/// <summary>
/// Settings of one node. Limits of the host live here, in one place; a test asserts how they relate
/// (a full coalesced entry fits in a Raft message, which fits in a transport message).
/// </summary>
public sealed record HostOptions
{
    /// <summary>Events coalesced into one Raft entry at most: one ledger command holds one batch.</summary>
    public const int EntryEventsMax = LedgerLimits.BatchEventsMax;

    /// <summary>Bytes of one coalesced entry at most (a full ledger command).</summary>
    public const int EntryBytesMax = LedgerLimits.CommandBytesMax;

    /// <summary>Entries one shard proposes per scheduler round at most (keeps one busy shard from starving the rest).</summary>
    public const int EntriesPerRoundMax = 8;

    /// <summary>A scheduler round longer than this many ticks is logged as slow (it delayed every heartbeat).</summary>
    public const int SlowRoundTicks = 3;

    /// <summary>Inputs (peer messages, ticks, client requests) taken per scheduler round at most.</summary>
    public const int InputsPerRoundMax = 16_384;

    /// <summary>Peer messages waiting for the scheduler before new ones are dropped (Raft retransmits).</summary>
    public const int InboxPeerMessagesMax = 65_536;

    /// <summary>Client requests waiting in a shard's queue before new ones are refused as overloaded.</summary>
    public const int ShardQueueRequestsMax = 4096;

    /// <summary>Raft's per-message entry budget: a full entry plus headroom, below the transport's message limit.</summary>
    public const long RaftMessageBytesMax = 2L * EntryBytesMax;

    /// <summary>
    /// Entry bytes a leader has in flight (sent, unacknowledged) to one follower in one group at most: one full Raft
    /// message. It is also what one scheduler round sends a lagging follower per group at most (a round can only
    /// refill what acknowledgements freed), so a restarted follower is caught up over several rounds instead of
    /// tens of MB being read from the WAL and encoded in one round that holds every heartbeat of the node.
    /// Two full coalesced entries still fit, so pipelining of large batches is kept.
    /// </summary>
    public const long RaftInflightBytesMax = RaftMessageBytesMax;

    /// <summary>
    /// Time one scheduler round should spend applying committed entries (all groups together). The host turns it into a
    /// byte budget from the apply rate it measured in recent rounds, between <see cref="ApplyBytesPerRoundMin"/> and
    /// <see cref="ApplyBytesPerRoundMax"/>: a replica re-applying its log after a restart, or a follower catching up,
    /// applies its backlog over several rounds and answers heartbeats and votes in between, and a warm node still
    /// applies in large rounds. 50 ms is half a tick: far below the election timeout.
    /// </summary>
    public static readonly TimeSpan ApplyTimePerRoundTarget = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Smallest apply budget of a round, in committed entry bytes (the group asked first in a round still gets at least
    /// one entry). A restarted node under the bench applied 64 KiB (~110 small entries) in up to 0.4 s on the
    /// shared 2-core machine (cold caches, CPU taken by other programs; docs/PERFORMANCE.md, Failover).
    /// </summary>
    public const long ApplyBytesPerRoundMin = 64L * 1024;

    /// <summary>Largest apply budget of a round, in committed entry bytes: one full Raft message.</summary>
    public const long ApplyBytesPerRoundMax = RaftMessageBytesMax;

    /// <summary>
    /// Committed entries a replica may still have to apply and campaign in its first failover turn; with more it passes
    /// that turn to the next survivor (a leader accepts writes only once it has applied the entries before its term).
    /// About one round's apply budget of small entries.
    /// </summary>
    public const int FailoverApplyBacklogEntriesMax = 100;

    /// <summary>Largest cross-shard protocol message the host carries between shard leaders (one transport message).</summary>
    public const int ShardMessageBytesMax = Transport.TransportOptions.MessageBytesMax;

    /// <summary>Snapshot streams a node sends at once at most (more wait: the core retries).</summary>
    public const int SnapshotSendsMax = 4;

    /// <summary>
    /// Threads that write snapshot files for followers and prepare received ones (<see cref="BackgroundThreads"/>): one
    /// per core of the machine this was tuned on, so a catch-up can use the cores the serving path leaves idle.
    /// </summary>
    public const int BackgroundThreadCount = 2;

    /// <summary>
    /// How much higher those threads' Linux nice value is than the process's. At +10 they get about a tenth of a
    /// contended core's time (the kernel's weights 110 against 1024), so the scheduler loop's heartbeats are not
    /// queued behind them.
    /// </summary>
    public const int BackgroundThreadNiceIncrement = 10;

    /// <summary>Background items that may wait for a thread (snapshot sends are bounded by <see cref="SnapshotSendsMax"/>).</summary>
    public const int BackgroundQueuedItemsMax = 64;

    /// <summary>Largest snapshot a node accepts from a leader (one shard's ledger state).</summary>
    public const long SnapshotBytesMax = 64L << 30;

    /// <summary>This node's id (never 0).</summary>
    public required ulong NodeId { get; init; }

    /// <summary>Folder of the node's WAL, ledger state and cluster map.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Peer address to listen on (port 0 picks a free port, for tests).</summary>
    public required IPEndPoint Listen { get; init; }

    /// <summary>This node's client API address, as shown to operators (informational).</summary>
    public string ApiAddress { get; init; } = "";

    /// <summary>Every founding member: node id → peer address host:port (includes this node).</summary>
    public required IReadOnlyDictionary<ulong, string> Peers { get; init; }

    /// <summary>Client API addresses of the members, when known (node id → host:port), for cluster status.</summary>
    public IReadOnlyDictionary<ulong, string> ApiAddresses { get; init; } = new Dictionary<ulong, string>();

    /// <summary>This node's gRPC client API address, when it serves one on its own port.</summary>
    public string GrpcAddress { get; init; } = "";

    /// <summary>
    /// gRPC client API addresses of the members, when known (node id → host:port). Published in the cluster map so the
    /// SDK sends each request straight to its shard's leader instead of through whichever node it knows.
    /// </summary>
    public IReadOnlyDictionary<ulong, string> GrpcAddresses { get; init; } = new Dictionary<ulong, string>();

    /// <summary>Shards of a new cluster (ignored when --data already holds a cluster map).</summary>
    public int ShardCount { get; init; } = 8;

    /// <summary>Replicas per shard of a new cluster.</summary>
    public int Replication { get; init; } = 3;

    /// <summary>Shared cluster secret peers present on every stream.</summary>
    public string Secret { get; init; } = "raftledger-dev";

    /// <summary>Scheduler tick (Raft's logical clock).</summary>
    public TimeSpan TickInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Election timeout in ticks (randomized in [ET, 2ET) by the core).</summary>
    public int ElectionTimeoutTicks { get; init; } = 10;

    /// <summary>Heartbeat interval in ticks.</summary>
    public int HeartbeatTicks { get; init; } = 1;

    /// <summary>How long a client request waits for its outcome before it is reported unknown (504).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Ticks between leadership-balance checks (preferred replicas take their leadership back).</summary>
    public int LeaderBalanceTicks { get; init; } = 20;

    /// <summary>
    /// Ticks a node must be up, and free of slow rounds, before it takes back the leadership of its preferred shards
    /// (a node that just started is still re-applying its log and catching up).
    /// </summary>
    public int LeaderBalanceSettleTicks { get; init; } = 30;

    /// <summary>
    /// Fail over as soon as the transport reports a leader's node down (its connections refused or reset), instead
    /// of after the election timeout. See MultiRaftHost.Failover.
    /// </summary>
    public bool FastFailover { get; init; } = true;

    /// <summary>Ticks from a leader's node going down until the first survivor campaigns (≥ 1: lets every survivor notice).</summary>
    public int FailoverCampaignDelayTicks { get; init; } = 1;

    /// <summary>Ticks between the campaigns of successive survivors (in placement order), so they never split the vote.</summary>
    public int FailoverCampaignStaggerTicks { get; init; } = 2;

    /// <summary>
    /// Applied entries of a shard between two snapshots: then its ledger state is made durable and the WAL is
    /// compacted up to it (followers further behind catch up from a snapshot).
    /// </summary>
    public int SnapshotEntries { get; init; } = 10_000;

    /// <summary>
    /// Applied meta entries between two compactions of the meta log (group 0): the saved cluster.json stands for the
    /// entries it covers, and a meta follower further behind gets the state as a snapshot.
    /// </summary>
    public int MetaSnapshotEntries { get; init; } = 32;

    /// <summary>Ticks between checks whether a shard is due for a snapshot.</summary>
    public int SnapshotCheckTicks { get; init; } = 10;

    /// <summary>
    /// Size of each Raft WAL segment file. The log is also compacted when it holds more than a few segments (see
    /// MultiRaftHost.Snapshot), so this sets its disk use under large entries too. Tests shrink it so that rolling and
    /// compaction happen within seconds; below the default, the largest entry the WAL takes shrinks to half a segment.
    /// </summary>
    public long WalSegmentBytes { get; init; } = WalOptions.SegmentBytesDefault;

    /// <summary>Smallest <see cref="WalSegmentBytes"/> accepted: two of the largest records a test cluster writes.</summary>
    public const long WalSegmentBytesMin = 1L << 20;

    /// <summary>
    /// While a follower is being sent a snapshot, its leader keeps the shard's log from the snapshot's index on, so the
    /// follower continues from the log once it has installed it instead of needing a second snapshot (see
    /// SnapshotRetention); but not once the WAL holds more than this. 1 GiB is ~50 s of the WAL at 100,000 transfers/s.
    /// </summary>
    public long SnapshotRetentionLogBytesMax { get; init; } = 1L << 30;

    /// <summary>
    /// Ticks after which a follower being caught up from a snapshot that has acknowledged nothing new (since its stream
    /// started, since it ended, or since its last new acknowledgement) no longer has its leaders' logs kept for it: it
    /// is alive but wedged. 1,200 ticks of 100 ms is two minutes, well past a multi-million-record install under load
    /// (seconds after its stream ends, twenty-sixth session).
    /// </summary>
    public long SnapshotRetentionStallTicks { get; init; } = 1_200;

    /// <summary>How long a stopping node (SIGTERM) waits for its leaderships to move to followers before it exits.</summary>
    public TimeSpan ShutdownHandOffTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Use the durable WAL and RocksDB (true) or in-memory storage (tests of the scheduler only).</summary>
    public bool Durable { get; init; } = true;

    /// <summary>Retry and abandonment timing of the cross-shard protocol (cluster time).</summary>
    public CrossShardOptions CrossShard { get; init; } = CrossShardOptions.Default;

    /// <summary>Clock for ticks, timeouts and cluster timestamps.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Throws when the options cannot work, naming the value to fix.</summary>
    public void Validate()
    {
        if (NodeId == 0)
        {
            throw new ArgumentException("--id must be 1 or more (0 means 'no node' in Raft)", nameof(NodeId));
        }

        if (!Peers.ContainsKey(NodeId))
        {
            throw new ArgumentException($"--peers must list this node ({NodeId}=<its --listen address>)", nameof(Peers));
        }

        if (ElectionTimeoutTicks <= HeartbeatTicks || HeartbeatTicks < 1)
        {
            throw new ArgumentException("election timeout ticks must exceed heartbeat ticks (≥ 1); 10 and 1 are usual", nameof(ElectionTimeoutTicks));
        }

        if (FailoverCampaignDelayTicks < 1 || FailoverCampaignStaggerTicks < 1 ||
            FailoverCampaignDelayTicks + FailoverCampaignStaggerTicks >= ElectionTimeoutTicks)
        {
            throw new ArgumentException("failover campaign delay and stagger must be ≥ 1 tick and together shorter than the election timeout (1 and 2 are usual)", nameof(FailoverCampaignDelayTicks));
        }

        if (SnapshotEntries < 1 || SnapshotCheckTicks < 1 || MetaSnapshotEntries < 1 || SnapshotRetentionStallTicks < SnapshotCheckTicks)
        {
            throw new ArgumentException("snapshot entries and check ticks must be ≥ 1, and the retention stall ticks at least the check ticks (10000, 10 and 1200 are usual)", nameof(SnapshotEntries));
        }

        if (WalSegmentBytes < WalSegmentBytesMin || WalSegmentBytes > WalOptions.SegmentBytesMaxLimit || WalSegmentBytes % 8 != 0)
        {
            throw new ArgumentException($"the WAL segment size must be a multiple of 8 between {WalSegmentBytesMin} and {WalOptions.SegmentBytesMaxLimit} bytes", nameof(WalSegmentBytes));
        }

        if (TickInterval <= TimeSpan.Zero || RequestTimeout <= TickInterval)
        {
            throw new ArgumentException("the tick must be positive and shorter than the request timeout", nameof(TickInterval));
        }
    }

    /// <summary>
    /// The operator wiped this node's data folder (the recovery <c>RecoveryAdvice</c> describes): its groups rejoin
    /// without voting or campaigning until each has caught up with a leader (<see cref="Raft.RaftConfig.Rejoining"/>).
    /// Remembered in the data folder (<see cref="RejoinMarker"/>) until every group has, so a restart meanwhile keeps it.
    /// </summary>
    public bool Rejoin { get; init; }

    /// <summary>The Raft configuration of every group on this node (<paramref name="rejoining"/>: see <see cref="Rejoin"/>).</summary>
    public RaftConfig RaftConfig(ulong applied, bool rejoining = false) => new()
    {
        Id = NodeId,
        ElectionTimeoutTicks = ElectionTimeoutTicks,
        HeartbeatTicks = HeartbeatTicks,
        InflightMessagesMax = 256,
        InflightBytesMax = RaftInflightBytesMax,
        MessageBytesMax = RaftMessageBytesMax,
        UncommittedBytesMax = 128L << 20,
        PreVote = true,
        CheckQuorum = true,
        ReadOnlyMode = ReadOnlyMode.Safe,
        // Proposals are routed to leaders by the host (and forwarded between nodes by the service), so a
        // follower refuses rather than forwards: the caller then learns the outcome and the leader hint at once.
        ProposalForwarding = ProposalForwarding.Refuse,
        ReadyCommittedBytesMax = 4L * EntryBytesMax,
        Applied = applied,
        Rejoining = rejoining,
    };
}
