using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// This node's replica of one shard: its Raft core, its ledger, and the client requests waiting on it.
/// Driven only by the scheduler thread (<see cref="MultiRaftHost"/>); nothing here is thread-safe.
/// </summary>
internal sealed partial class ShardReplica
{
    private readonly Queue<ShardRequest> writes = new();
    private readonly List<ShardRequest> newReads = [];
    private readonly Dictionary<ulong, (ulong FinishIndex, ulong FinishTerm, List<ShardRequest> Reads)> readsAwaitingIndex = [];
    private readonly List<(ulong Index, ulong FinishTerm, List<ShardRequest> Reads)> readsAwaitingApply = [];

    // Reads a fenced cross-shard leg holds, with the term they were fenced in (see TryCompleteRead).
    private readonly List<(ulong Term, ShardRequest Read)> fencedReads = [];

    // Reads that found a fence up when they started (StartReads): served only after the Finish that ended it.
    private readonly HashSet<ShardRequest> readsFencedAtStart = [];

    // Reads whose fences ended while they waited: served after the Finish that ended them, without waiting for later fences.
    private readonly HashSet<ShardRequest> readsPastFence = [];

    // Proposed entries by index; completed when the entry at that index is applied (same term) or replaced.
    private readonly Dictionary<ulong, ProposedEntry> proposed = [];
    private readonly byte[] applyResults = new byte[LedgerLimits.ResultBytesMax];
    private readonly TimeProvider time;
    private ulong nextReadContext;

    // Invariant: applied <= raft.CommitIndex; entries are applied in index order, each once.
    private ulong applied;

    // Leader bookkeeping: the term we lead in (0 = not leader), the index of that term's first entry, and
    // whether every entry before it is applied so that cluster timestamps can continue from the ledger's.
    private ulong leaderTerm;
    private ulong termStartIndex;
    private bool timestampsReady;

    // Invariant (leader, timestampsReady): lastProposedTimestamp >= ledger.LastTimestamp and every proposed
    // command's batch timestamp is above the previous one by at least its event count.
    private ulong lastProposedTimestamp;

    public ShardReplica(int shard, ulong[] replicas, RaftNode raft, LedgerStateMachine ledger, ulong applied, TimeProvider time)
    {
        Shard = shard;
        GroupId = (ulong)shard + 1;
        Replicas = replicas;
        Raft = raft;
        Ledger = ledger;
        this.applied = applied;
        this.time = time;
    }

    public int Shard { get; }

    public ulong GroupId { get; }

    /// <summary>The shard's replicas, preferred leader first.</summary>
    public ulong[] Replicas { get; }

    public RaftNode Raft { get; }

    public LedgerStateMachine Ledger { get; }

    public ulong Applied => applied;

    public bool IsLeader => Raft.Role == RaftRole.Leader;

    /// <summary>Ticks left before this replica may try another leadership transfer.</summary>
    public int TransferCooldownTicks { get; set; }

    /// <summary>Queues a client request, or refuses it at once with the reason.</summary>
    public void Enqueue(ShardRequest request)
    {
        if (!IsLeader)
        {
            var leader = Raft.Leader;
            request.Complete(leader == 0
                ? ShardCallResult.Fail(ShardCallStatus.NoLeader, $"shard {Shard} has no leader yet; retry shortly")
                : ShardCallResult.Fail(ShardCallStatus.NotLeader, $"node {Raft.Id} does not lead shard {Shard}", leader));
            return;
        }

        if (writes.Count + newReads.Count + fencedWrites.Count >= HostOptions.ShardQueueRequestsMax)
        {
            request.Complete(ShardCallResult.Fail(ShardCallStatus.Overloaded, $"shard {Shard} has {HostOptions.ShardQueueRequestsMax} requests queued; back off and retry"));
            return;
        }

        if (request.IsWrite && request.Kind == ShardRequestKind.CreateTransfers && driver is not null)
        {
            unclassified.Enqueue(request); // Classified by the driver once this leader can propose.
        }
        else if (request.IsWrite)
        {
            writes.Enqueue(request);
        }
        else
        {
            newReads.Add(request);
        }
    }

    /// <summary>Called each round before collecting Readies: follows leadership, proposes queued writes, starts reads.</summary>
    public void BeforeReady()
    {
        ObserveLeadership();
        RunCrossShard();
        if (leaderTerm == 0)
        {
            return;
        }

        if (timestampsReady)
        {
            ProposeQueuedWrites();
        }

        StartReads();
    }

    private void ObserveLeadership()
    {
        if (Raft.Role == RaftRole.Leader && leaderTerm != Raft.Term)
        {
            // The new term's first entry (the leader's no-op) is the last one now; every earlier entry must be
            // applied before we know the ledger's last timestamp and can continue from it.
            leaderTerm = Raft.Term;
            termStartIndex = Raft.LastIndex;
            timestampsReady = false;
        }
        else if (Raft.Role != RaftRole.Leader && leaderTerm != 0)
        {
            leaderTerm = 0;
            timestampsReady = false;
            FailQueued(ShardCallResult.Fail(ShardCallStatus.NotLeader, $"node {Raft.Id} lost the leadership of shard {Shard}", Raft.Leader));
        }

        if (leaderTerm != 0 && !timestampsReady && applied >= termStartIndex)
        {
            lastProposedTimestamp = Ledger.LastTimestamp;
            timestampsReady = true;
        }
    }

    private void FailQueued(ShardCallResult result)
    {
        while (writes.TryDequeue(out var request))
        {
            request.Complete(result);
        }

        FailUnclassified(result);

        foreach (var read in newReads)
        {
            read.Complete(result);
        }

        newReads.Clear();
        foreach (var (_, _, reads) in readsAwaitingIndex.Values)
        {
            reads.ForEach(r => r.Complete(result));
        }

        readsAwaitingIndex.Clear();
        foreach (var (_, _, reads) in readsAwaitingApply)
        {
            reads.ForEach(r => r.Complete(result));
        }

        readsAwaitingApply.Clear();
        fencedReads.ForEach(r => r.Read.Complete(result));
        fencedReads.Clear();
        readsFencedAtStart.Clear();
        readsPastFence.Clear();
    }

    /// <summary>Fails every waiting request: the node is stopping.</summary>
    public void Shutdown()
    {
        FailQueued(ShardCallResult.Fail(ShardCallStatus.Unavailable, "the node is stopping; retry on another node"));
        foreach (var entry in proposed.Values)
        {
            foreach (var part in entry.Parts)
            {
                part.Request.Complete(ShardCallResult.Fail(ShardCallStatus.OutcomeUnknown, "the node stopped before the outcome was known; retry with the same ids"));
            }
        }

        proposed.Clear();
        FailSubmissions(true, "the node stopped while a cross-shard transfer was in flight; retry with the same ids");
    }
}
