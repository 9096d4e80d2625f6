using RaftLedger.Common;

namespace RaftLedger.Raft;

/// <summary>
/// The node's view of its log: the host's stable storage followed by the "unstable" part (entries or a
/// snapshot not yet durable). Tracks the commit and applied indexes.
/// </summary>
internal sealed class RaftLog
{
    private readonly IRaftLogStorage _storage;
    private readonly List<Entry> _unstable = [];
    private readonly List<Entry> _scratch = [];

    // Invariant: the first unstable entry (if any) has index _unstableOffset; storage entries at or after it
    // are stale and will be overwritten when the host appends the unstable ones.
    private ulong _unstableOffset;

    public RaftLog(IRaftLogStorage storage, ulong applied)
    {
        _storage = storage;
        _unstableOffset = storage.LastIndex + 1;
        Committed = storage.HardState.Commit;
        var snapshotIndex = storage.FirstIndex - 1;
        Committed = Math.Max(Committed, snapshotIndex);
        Applied = Math.Max(applied, snapshotIndex);
        // The commit index is volatile state (Raft paper, Figure 2): a host need not sync a hard state that only
        // moved it (Ready.MustSync), so the state machine may have applied past the persisted one. What it
        // applied was committed, and committed entries stay in the log, so the commit index restarts there.
        Committed = Math.Max(Committed, Applied);
        Invariant.Check(Committed <= LastIndex, "applied or persisted commit index beyond the stored log");
    }

    // Invariant: Applied <= Committed <= LastIndex (Committed may pass the durable index on followers).
    public ulong Committed { get; private set; }

    public ulong Applied { get; private set; }

    /// <summary>A snapshot received from the leader, not yet installed by the host.</summary>
    public SnapshotMetadata? UnstableSnapshot { get; private set; }

    public IReadOnlyList<Entry> UnstableEntries => _unstable;

    public ulong FirstIndex => UnstableSnapshot is { } s ? s.Index + 1 : _storage.FirstIndex;

    public ulong LastIndex => _unstable.Count > 0
        ? _unstableOffset + (ulong)_unstable.Count - 1
        : UnstableSnapshot?.Index ?? _storage.LastIndex;

    /// <summary>The last index that is durable on this node (entries handed to the host and advanced).</summary>
    public ulong DurableLastIndex => UnstableSnapshot is not null ? 0 : Math.Min(_unstableOffset - 1, _storage.LastIndex);

    public ulong LastTerm => Term(LastIndex);

    /// <summary>The term at <paramref name="index"/>, or false when compacted or beyond the end.</summary>
    public bool TryTerm(ulong index, out ulong term)
    {
        term = 0;
        if (index > LastIndex)
        {
            return false;
        }

        if (_unstable.Count > 0 && index >= _unstableOffset)
        {
            term = _unstable[(int)(index - _unstableOffset)].Term;
            return true;
        }

        if (UnstableSnapshot is { } snap)
        {
            term = snap.Term;
            return index == snap.Index;
        }

        return _storage.TryGetTerm(index, out term);
    }

    /// <summary>The term at an index known to be present (a missing one is a bug).</summary>
    public ulong Term(ulong index)
    {
        var found = TryTerm(index, out var term);
        // The detail is formatted only on failure: this runs for every message.
        Invariant.Check(found, found ? "" : $"term of index {index} not available (first {FirstIndex}, last {LastIndex})");
        return term;
    }

    public bool MatchTerm(ulong index, ulong term) => TryTerm(index, out var t) && t == term;

    /// <summary>Raft paper §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours?</summary>
    public bool IsUpToDate(ulong lastIndex, ulong lastTerm) =>
        lastTerm > LastTerm || (lastTerm == LastTerm && lastIndex >= LastIndex);

    /// <summary>
    /// Appends entries received from a leader after (index, logTerm) if our log matches there; truncates a
    /// conflicting suffix first (paper §5.3). Returns the last new index, or false on mismatch.
    /// </summary>
    public bool TryAppendFromLeader(ulong index, ulong logTerm, ulong leaderCommit, IReadOnlyList<Entry> entries, out ulong lastNew)
    {
        lastNew = 0;
        if (!MatchTerm(index, logTerm))
        {
            return false;
        }

        lastNew = index + (ulong)entries.Count;
        var conflictAt = FindConflict(entries);
        if (conflictAt != 0)
        {
            Invariant.Check(conflictAt > Committed, conflictAt > Committed ? "" : $"leader overwrote committed entry {conflictAt}");
            var from = (int)(conflictAt - (index + 1));
            Append(entries, from);
        }

        CommitTo(Math.Min(leaderCommit, lastNew));
        return true;
    }

    /// <summary>Appends (a leader's own new entries, or a follower's accepted suffix), truncating after the predecessor.</summary>
    public void Append(IReadOnlyList<Entry> entries, int from)
    {
        if (from >= entries.Count)
        {
            return;
        }

        var after = entries[from].Index;
        Invariant.Check(after > Committed, "cannot overwrite committed entries");
        if (_unstable.Count == 0 || after <= _unstableOffset)
        {
            // Everything from `after` on is replaced; storage entries at or past it become stale.
            _unstable.Clear();
            _unstableOffset = after;
        }
        else if (after <= LastIndex)
        {
            _unstable.RemoveRange((int)(after - _unstableOffset), (int)(LastIndex - after + 1));
        }

        Invariant.Check(after == LastIndex + 1 || (_unstable.Count == 0 && after == _unstableOffset));
        for (var i = from; i < entries.Count; i++)
        {
            _unstable.Add(entries[i]);
        }
    }

    /// <summary>
    /// The first index among <paramref name="entries"/> whose term differs from ours or that we lack, or 0 when
    /// we already have them all.
    /// </summary>
    private ulong FindConflict(IReadOnlyList<Entry> entries)
    {
        for (var i = 0; i < entries.Count; i++)
        {
            if (!MatchTerm(entries[i].Index, entries[i].Term))
            {
                return entries[i].Index;
            }
        }

        return 0;
    }

    /// <summary>
    /// For fast backtracking: the largest index at or below <paramref name="index"/> whose term is at most
    /// <paramref name="term"/>, and that term. Entries after it cannot match an entry of term &lt;= term.
    /// </summary>
    public (ulong Index, ulong Term) FindConflictByTerm(ulong index, ulong term)
    {
        index = Math.Min(index, LastIndex);
        while (true)
        {
            if (!TryTerm(index, out var t))
            {
                return (index, 0);
            }

            if (t <= term || index == 0)
            {
                return (index, t);
            }

            index--;
        }
    }

    public void CommitTo(ulong index)
    {
        if (index > Committed)
        {
            Invariant.Check(index <= LastIndex, index <= LastIndex ? "" : $"commit {index} beyond last index {LastIndex}");
            Committed = index;
        }
    }

    public void AppliedTo(ulong index)
    {
        Invariant.Check(index <= Committed && index >= Applied);
        Applied = index;
    }

    /// <summary>Entries in [low, high) with a byte budget (at least one); false when low is compacted.</summary>
    public bool TryGetEntries(ulong low, ulong high, long maxBytes, List<Entry> into)
    {
        if (low < FirstIndex)
        {
            return false;
        }

        high = Math.Min(high, LastIndex + 1);
        if (low >= high)
        {
            return true;
        }

        long bytes = 0;
        var storageHigh = _unstable.Count > 0 ? Math.Min(high, _unstableOffset) : high;
        if (low < storageHigh)
        {
            var before = into.Count;
            _storage.GetEntries(low, storageHigh, maxBytes, into);
            for (var i = before; i < into.Count; i++)
            {
                bytes += into[i].SizeBytes;
            }

            if (into.Count - before < (int)(storageHigh - low))
            {
                return true;
            }
        }

        for (var index = Math.Max(low, _unstableOffset); index < high && _unstable.Count > 0; index++)
        {
            var entry = _unstable[(int)(index - _unstableOffset)];
            if (into.Count > 0 && bytes + entry.SizeBytes > maxBytes)
            {
                break;
            }

            bytes += entry.SizeBytes;
            into.Add(entry);
        }

        return true;
    }

    /// <summary>Committed entries that are durable here and not yet applied, within a byte budget.</summary>
    public IReadOnlyList<Entry> NextCommittedEntries(long maxBytes)
    {
        if (UnstableSnapshot is not null)
        {
            return [];
        }

        var high = Math.Min(Committed, DurableLastIndex);
        if (high <= Applied)
        {
            return [];
        }

        var list = new List<Entry>();
        var ok = TryGetEntries(Applied + 1, high + 1, maxBytes, list);
        Invariant.Check(ok, "unapplied entries were compacted");
        return list;
    }

    public bool HasNextCommittedEntries() =>
        UnstableSnapshot is null && Math.Min(Committed, DurableLastIndex) > Applied;

    /// <summary>The host made entries up to (index, term) durable; drop them from the unstable part.</summary>
    public void StableTo(ulong index, ulong term)
    {
        if (_unstable.Count == 0 || index < _unstableOffset || index > LastIndex)
        {
            return;
        }

        if (_unstable[(int)(index - _unstableOffset)].Term != term)
        {
            // Overwritten by a newer leader after the Ready was taken; the new entries come in the next Ready.
            return;
        }

        var count = (int)(index - _unstableOffset + 1);
        _unstable.RemoveRange(0, count);
        _unstableOffset = index + 1;
        Invariant.Check(_storage.LastIndex >= index, "Advance called before the Ready's entries were appended to storage");
    }

    /// <summary>Replaces the log with a snapshot received from the leader.</summary>
    public void Restore(SnapshotMetadata snapshot)
    {
        Invariant.Check(snapshot.Index > Committed);
        UnstableSnapshot = snapshot;
        _unstable.Clear();
        _unstableOffset = snapshot.Index + 1;
        Committed = snapshot.Index;
    }

    /// <summary>The host installed the snapshot (state machine and storage).</summary>
    public void SnapshotInstalled(SnapshotMetadata snapshot)
    {
        if (UnstableSnapshot is not { } pending || pending.Index != snapshot.Index)
        {
            return;
        }

        Invariant.Check(_storage.FirstIndex - 1 >= snapshot.Index, "Advance called before the snapshot was applied to storage");
        UnstableSnapshot = null;
        Applied = Math.Max(Applied, snapshot.Index);
    }

    /// <summary>Scratch list for reading entries without allocating a new list each time.</summary>
    public List<Entry> RentScratch()
    {
        _scratch.Clear();
        return _scratch;
    }
}
