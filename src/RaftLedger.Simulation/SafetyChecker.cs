using RaftLedger.Raft;

namespace RaftLedger.Simulation;

/// <summary>A safety or liveness property did not hold. Carries the description a replay needs.</summary>
public sealed class SimulationFailureException(string message) : Exception(message);

/// <summary>
/// Watches a simulated Raft group and throws <see cref="SimulationFailureException"/> when a Raft safety
/// property breaks: two leaders in one term; a new leader missing an entry committed in an earlier term
/// (leader completeness); two nodes applying different entries at one index (state-machine safety); logs
/// that agree on a term at an index but not on everything before it (log matching); a committed entry
/// that is no longer durable on a majority (lost or changed after crashes).
/// </summary>
public sealed class SafetyChecker(IReadOnlyList<ISimRaftReplica> nodes)
{
    private readonly Dictionary<ulong, int> _leaderOfTerm = [];

    // Every entry known to be committed, by index - 1. Term 0 marks an index not learned yet.
    private readonly List<(ulong Term, ReadOnlyMemory<byte> Data)> _committed = [];

    // The lowest term of a leader known to have committed each index (ulong.MaxValue: not known).
    private readonly List<ulong> _commitTerm = [];

    public int LeadersElected => _leaderOfTerm.Count;

    public ulong CommittedIndexMax => (ulong)_committed.Count;

    public int Quorum => (nodes.Count / 2) + 1;

    /// <summary>The entry known to be committed at <paramref name="index"/>, if any node has shown it yet.</summary>
    public bool TryGetCommitted(ulong index, out ulong term, out ReadOnlyMemory<byte> data)
    {
        (term, data) = index >= 1 && index <= (ulong)_committed.Count ? _committed[(int)index - 1] : (0, default);
        return term != 0;
    }

    /// <summary>Called after a node persisted and applied a Ready (its durable storage matches its core).</summary>
    public void AfterReady(ISimRaftReplica node)
    {
        var core = node.RunningCore;
        if (core.Role == RaftRole.Leader)
        {
            ObserveLeader(node, core.Term);
        }

        RecordCommitted(node, core.Role == RaftRole.Leader ? core.Term : ulong.MaxValue);
    }

    /// <summary>Called for each entry a node applies: the entry must be the one committed at that index.</summary>
    public void OnApply(ISimRaftReplica node, Entry entry) =>
        Record(entry.Index, entry.Term, entry.Data, $"node {node.Id} applied");

    /// <summary>Full checks over every node's durable log (also the disks of crashed nodes).</summary>
    public void CheckLogs()
    {
        for (var a = 0; a < nodes.Count; a++)
        {
            CheckCommittedPrefix(nodes[a]);
            for (var b = a + 1; b < nodes.Count; b++)
            {
                CheckLogMatching(nodes[a], nodes[b]);
            }
        }

        CheckCommittedDurableOnMajority();
    }

    private void ObserveLeader(ISimRaftReplica node, ulong term)
    {
        if (_leaderOfTerm.TryGetValue(term, out var existing))
        {
            Fail(existing == node.Id, $"two leaders in term {term}: nodes {existing} and {node.Id}");
            return;
        }

        _leaderOfTerm[term] = node.Id;

        // Leader completeness: every entry committed by a leader of an earlier term is in this leader's log.
        var storage = node.Storage;
        for (var i = 0; i < _committed.Count; i++)
        {
            var index = (ulong)i + 1;
            if (_commitTerm[i] >= term || index <= storage.Snapshot.Index || _committed[i].Term == 0)
            {
                continue;
            }

            Fail(storage.TryGetTerm(index, out var t) && t == _committed[i].Term,
                $"leader completeness: node {node.Id} became leader of term {term} without entry {index} " +
                $"(term {_committed[i].Term}) committed in term {_commitTerm[i]}");
        }
    }

    private void RecordCommitted(ISimRaftReplica node, ulong leaderTerm)
    {
        var storage = node.Storage;
        var commit = Math.Min(storage.HardState.Commit, storage.LastIndex);
        for (var index = Math.Max(node.CheckedCommit + 1, storage.FirstIndex); index <= commit; index++)
        {
            var entry = EntryAt(storage, index);
            Record(index, entry.Term, entry.Data, $"node {node.Id} committed");
            _commitTerm[(int)index - 1] = Math.Min(_commitTerm[(int)index - 1], leaderTerm);
            if (leaderTerm != ulong.MaxValue)
            {
                // The moment a leader commits is the moment the entry must be durable on a majority.
                CheckDurableOnMajority(index, entry.Term, $"leader {node.Id} committed");
            }
        }

        node.CheckedCommit = Math.Max(node.CheckedCommit, commit);
    }

    private void Record(ulong index, ulong term, ReadOnlyMemory<byte> data, string who)
    {
        while ((ulong)_committed.Count < index)
        {
            _committed.Add((0, default));
            _commitTerm.Add(ulong.MaxValue);
        }

        var known = _committed[(int)index - 1];
        if (known.Term == 0)
        {
            _committed[(int)index - 1] = (term, data);
            return;
        }

        Fail(known.Term == term && known.Data.Span.SequenceEqual(data.Span),
            $"{who} entry {index} (term {term}) but the committed entry there has term {known.Term}" +
            (known.Term == term ? " and different data" : ""));
    }

    /// <summary>A node's durable entries up to its durable commit index are the committed ones.</summary>
    private void CheckCommittedPrefix(ISimRaftReplica node)
    {
        var storage = node.Storage;
        var high = Math.Min(Math.Min(storage.HardState.Commit, storage.LastIndex), (ulong)_committed.Count);
        for (var index = storage.FirstIndex; index <= high; index++)
        {
            var known = _committed[(int)index - 1];
            if (known.Term != 0)
            {
                Fail(storage.TryGetTerm(index, out var term) && term == known.Term,
                    $"node {node.Id} has entry {index} with term {term} at or below its commit index, but the committed entry has term {known.Term}");
            }
        }
    }

    /// <summary>If two logs have an entry with the same index and term, they are identical up to that index.</summary>
    private static void CheckLogMatching(ISimRaftReplica a, ISimRaftReplica b)
    {
        var sa = a.Storage;
        var sb = b.Storage;
        var low = Math.Max(sa.FirstIndex, sb.FirstIndex);
        var high = Math.Min(sa.LastIndex, sb.LastIndex);
        var matched = false;
        for (var index = high; index >= low && index > 0; index--)
        {
            var ea = EntryAt(sa, index);
            var eb = EntryAt(sb, index);
            if (ea.Term == eb.Term)
            {
                matched = true;
                Fail(ea.Type == eb.Type && ea.Data.Span.SequenceEqual(eb.Data.Span),
                    $"log matching: nodes {a.Id} and {b.Id} have entry {index} in term {ea.Term} with different data");
            }
            else
            {
                Fail(!matched, $"log matching: nodes {a.Id} and {b.Id} agree on a later entry but differ at {index} (terms {ea.Term} and {eb.Term})");
            }
        }
    }

    /// <summary>A committed entry stays durable on a majority: in the log, or covered by a snapshot.</summary>
    private void CheckCommittedDurableOnMajority()
    {
        for (var i = 0; i < _committed.Count; i++)
        {
            var (term, _) = _committed[i];
            if (term == 0)
            {
                continue;
            }

            CheckDurableOnMajority((ulong)i + 1, term, "committed");
        }
    }

    private void CheckDurableOnMajority(ulong index, ulong term, string what)
    {
        var holders = 0;
        foreach (var node in nodes)
        {
            var storage = node.Storage;
            if (index <= storage.Snapshot.Index || (storage.TryGetTerm(index, out var t) && t == term))
            {
                holders++;
            }
        }

        Fail(holders >= Quorum, $"{what} entry {index} (term {term}) but it is durable on only {holders} of {nodes.Count} nodes");
    }

    private static Entry EntryAt(MemoryLogStorage storage, ulong index) => storage.Entries[(int)(index - storage.FirstIndex)];

    private static void Fail(bool condition, string message)
    {
        if (!condition)
        {
            throw new SimulationFailureException(message);
        }
    }
}
