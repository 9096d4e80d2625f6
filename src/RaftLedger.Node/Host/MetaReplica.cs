using RaftLedger.Common;
using RaftLedger.Node.Meta;
using RaftLedger.Node.Placement;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>A meta command waiting to be proposed or applied; completed on the scheduler thread.</summary>
internal sealed class MetaProposal(byte[] command)
{
    public byte[] Command { get; } = command;

    public TaskCompletionSource<ShardCallResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ulong Term { get; set; }
}

/// <summary>
/// This node's replica of the meta group (Raft group 0): its core and the <see cref="MetaState"/> it applies. Driven
/// only by the scheduler thread. The leader proposes the bootstrap map while the state has none, and the commands
/// nodes send (address registrations); a proposal completes when its entry is applied in its term.
/// </summary>
internal sealed class MetaReplica
{
    /// <summary>Meta commands queued for proposal at most (registrations are one per node start).</summary>
    public const int QueuedProposalsMax = 64;

    private readonly Queue<MetaProposal> queued = new();
    private readonly Dictionary<ulong, MetaProposal> proposed = []; // Log index → proposal awaiting its apply.

    // Leader bookkeeping: the term we lead in (0 = not leader) and its first index; proposals wait until every
    // entry before it is applied, so the leader knows whether the state already has a map.
    private ulong leaderTerm;
    private ulong termStartIndex;
    private ulong bootstrapProposedTerm;

    public MetaReplica(ulong[] voters, RaftNode raft, MetaState state, ClusterMap bootstrapMap)
    {
        Invariant.Check(voters.Contains(raft.Id), "only voters host a meta replica");
        Invariant.Check(raft.AppliedIndex == state.AppliedIndex, "the core resumes applying after the persisted meta state");
        Voters = voters;
        Raft = raft;
        State = state;
        BootstrapMap = bootstrapMap;
    }

    /// <summary>The meta group's voters (highest rendezvous weight first).</summary>
    public ulong[] Voters { get; }

    public RaftNode Raft { get; }

    /// <summary>The state machine; replaced when a snapshot is installed.</summary>
    public MetaState State { get; private set; }

    /// <summary>This node's own bootstrap map: what it proposes while the state has none, and what it persists until then.</summary>
    public ClusterMap BootstrapMap { get; }

    public bool IsLeader => Raft.Role == RaftRole.Leader;

    public void Enqueue(MetaProposal proposal)
    {
        if (!IsLeader || queued.Count >= QueuedProposalsMax)
        {
            var leader = Raft.Leader;
            proposal.Done.TrySetResult(IsLeader
                ? ShardCallResult.Fail(ShardCallStatus.Overloaded, "the meta group has too many commands queued; retry shortly")
                : leader == 0
                    ? ShardCallResult.Fail(ShardCallStatus.NoLeader, "the meta group has no leader yet; retry shortly")
                    : ShardCallResult.Fail(ShardCallStatus.NotLeader, $"node {Raft.Id} does not lead the meta group", leader));
            return;
        }

        queued.Enqueue(proposal);
    }

    /// <summary>Each round before the Ready: follows leadership; the leader proposes the bootstrap map and queued commands.</summary>
    public void BeforeReady()
    {
        if (Raft.Role == RaftRole.Leader && leaderTerm != Raft.Term)
        {
            leaderTerm = Raft.Term;
            termStartIndex = Raft.LastIndex;
        }
        else if (Raft.Role != RaftRole.Leader && leaderTerm != 0)
        {
            leaderTerm = 0;
            FailAll(ShardCallResult.Fail(ShardCallStatus.NotLeader, $"node {Raft.Id} lost the meta leadership", Raft.Leader), failProposed: false);
        }

        if (leaderTerm == 0 || State.AppliedIndex < termStartIndex)
        {
            return;
        }

        if (State.Map is null && bootstrapProposedTerm != leaderTerm)
        {
            bootstrapProposedTerm = leaderTerm;
            Raft.Propose(MetaCodec.Encode(MetaCommand.Bootstrap(BootstrapMap)));
        }

        while (queued.TryDequeue(out var proposal))
        {
            var result = Raft.Propose(proposal.Command);
            if (!result.IsAccepted)
            {
                proposal.Done.TrySetResult(ShardCallResult.Fail(ShardCallStatus.NoLeader, "the meta group refused the command: " + result.Describe(), result.LeaderHint));
                continue;
            }

            proposal.Term = result.Term;
            proposed[result.FirstIndex] = proposal;
        }
    }

    /// <summary>Applies committed entries; returns the results of commands that did not apply (for the log) and whether the state moved.</summary>
    public bool Apply(IReadOnlyList<Entry> committed, List<(ulong Index, MetaApplyResult Result)> ignored)
    {
        var moved = false;
        foreach (var entry in committed)
        {
            if (entry.Index <= State.AppliedIndex)
            {
                continue; // Applied before a restart (the persisted state includes it) or covered by a snapshot.
            }

            var data = entry.Type == EntryType.Normal ? entry.Data.Span : default;
            var result = State.Apply(entry.Index, entry.Term, data);
            moved = true;
            if (result.Status is not (MetaApplyStatus.Applied or MetaApplyStatus.Unchanged))
            {
                ignored.Add((entry.Index, result));
            }

            if (proposed.Remove(entry.Index, out var mine))
            {
                mine.Done.TrySetResult(mine.Term != entry.Term
                    ? ShardCallResult.Fail(ShardCallStatus.NoLeader, "the meta leader changed before the command committed; nothing applied, retry")
                    : result.Status is MetaApplyStatus.Applied or MetaApplyStatus.Unchanged
                        ? new ShardCallResult(ShardCallStatus.Ok, ReadOnlyMemory<byte>.Empty, 0, "")
                        : ShardCallResult.Fail(ShardCallStatus.Unavailable, $"the meta command was ignored ({result.Status}): {result.Detail}"));
            }
        }

        Invariant.Check(State.AppliedIndex <= Raft.CommitIndex, "only committed entries are applied");
        return moved;
    }

    /// <summary>A snapshot replaced the log: the state becomes the snapshot's.</summary>
    public void InstallSnapshot(MetaState state)
    {
        Invariant.Check(state.AppliedIndex > State.AppliedIndex, "a snapshot is installed only when it is ahead");
        State = state;
        foreach (var index in proposed.Keys.Where(i => i <= state.AppliedIndex).ToList())
        {
            proposed.Remove(index, out var lost);
            lost!.Done.TrySetResult(ShardCallResult.Fail(ShardCallStatus.NoLeader, "a snapshot replaced the meta log; retry"));
        }
    }

    public void FailAll(ShardCallResult result, bool failProposed)
    {
        while (queued.TryDequeue(out var proposal))
        {
            proposal.Done.TrySetResult(result);
        }

        if (failProposed)
        {
            foreach (var proposal in proposed.Values)
            {
                proposal.Done.TrySetResult(result);
            }

            proposed.Clear();
        }
    }
}
