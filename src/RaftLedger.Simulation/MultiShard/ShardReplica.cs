using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Raft;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>A proposal a leader replica is waiting to see applied: a client's fast-path part, or a driver's command.</summary>
internal sealed record PendingProposal(ulong Term, ClientRequest? Request, int Attempt, long? DriverToken, LedgerOperation Operation);

/// <summary>
/// One replica of one shard on one simulated node: a real <see cref="RaftNode"/> over a simulated disk, and the
/// real <see cref="LedgerStateMachine"/> on an <see cref="InMemoryLedgerStore"/> applied from committed entries.
/// The disk survives crashes; the core, the ledger and everything waiting are volatile and rebuilt on restart
/// (ledger from the durable snapshot bytes, then the committed entries after it).
/// </summary>
public sealed class ShardReplica : ISimRaftReplica
{
    internal ShardReplica(int shard, int node, SimDisk<RaftDiskRecord, RaftDiskImage> disk)
    {
        Invariant.Check(shard >= 0 && node >= 1);
        Shard = shard;
        NodeId = node;
        Disk = disk;
    }

    public int Shard { get; }

    /// <summary>The simulated node hosting this replica; also its Raft id within the shard's group.</summary>
    public int NodeId { get; }

    int ISimRaftReplica.Id => NodeId;

    ulong ISimRaftReplica.CheckedCommit { get; set; }

    public SimDisk<RaftDiskRecord, RaftDiskImage> Disk { get; }

    public MemoryLogStorage Storage => Disk.Image.Storage;

    public RaftNode? Core { get; internal set; }

    public RaftNode RunningCore => Core ?? throw new InvalidOperationException($"replica of shard {Shard} on node {NodeId} is down");

    public LedgerStateMachine? Ledger { get; internal set; }

    /// <summary>The cross-shard protocol driver of this replica (volatile, rebuilt on restart over the ledger).</summary>
    public CrossShardDriver? Driver { get; internal set; }

    public bool IsUp => Core is not null;

    // Invariant: AppliedIndex is the index of the last entry applied to Ledger (or of the restored snapshot).
    public ulong AppliedIndex { get; internal set; }

    /// <summary>Term of the last applied entry: once it equals the leader's term, everything before the term is applied.</summary>
    public ulong AppliedTerm { get; internal set; }

    /// <summary>
    /// The term in which this replica leads and may propose (0: not a ready leader). A leader becomes ready when
    /// it has applied an entry of its own term, so the ledger's last timestamp covers every earlier term.
    /// </summary>
    public ulong ReadyTerm { get; internal set; }

    // Invariant: while ReadyTerm != 0, every command proposed in ReadyTerm has a batch timestamp <= this.
    internal ulong LastProposedTimestamp { get; set; }

    /// <summary>
    /// The last cross-shard Finish this replica proposed as leader, and its term: once its driver told a coordinator it took
    /// that Finish, a client may have been answered, so a read this leader serves waits until it applied that far.
    /// </summary>
    internal ulong LastFinishIndex { get; set; }

    internal ulong LastFinishTerm { get; set; }

    /// <summary>Proposals waiting to be applied, by log index.</summary>
    internal Dictionary<ulong, PendingProposal> Waiting { get; } = [];

    internal Dictionary<ulong, byte[]> ReceivedSnapshots { get; } = [];

    /// <summary>Driver proposals that will never apply, to report to the driver once its current actions are taken.</summary>
    internal List<long> FailedTokens { get; } = [];

    public bool IsReadyLeader => ReadyTerm != 0 && Core is { Role: RaftRole.Leader } core && core.Term == ReadyTerm;

    /// <summary>Drops everything volatile (power loss).</summary>
    internal void Lose()
    {
        Core = null;
        Ledger = null;
        Driver = null;
        ReadyTerm = 0;
        LastProposedTimestamp = 0;
        Waiting.Clear();
        FailedTokens.Clear();
        ReceivedSnapshots.Clear();
    }

    public override string ToString() => $"shard {Shard} replica on node {NodeId}";
}
