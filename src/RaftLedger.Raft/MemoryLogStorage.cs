using RaftLedger.Common;

namespace RaftLedger.Raft;

/// <summary>
/// An in-memory <see cref="IRaftLogStorage"/> for tests, the simulator and benchmarks. The host calls
/// <see cref="Append"/>, <see cref="SetHardState"/> and <see cref="ApplySnapshot"/> when it persists a
/// <see cref="Ready"/>, and <see cref="CreateSnapshot"/>/<see cref="Compact"/> to trim the log.
/// Not thread-safe: one owner drives it, like the core.
/// </summary>
public sealed class MemoryLogStorage : IRaftLogStorage
{
    // Invariant: _entries[i].Index == _offset + 1 + i, and _offset == FirstIndex - 1 with term _offsetTerm.
    private readonly List<Entry> _entries = [];
    private ulong _offset;
    private ulong _offsetTerm;

    /// <inheritdoc/>
    public HardState HardState { get; private set; } = HardState.Empty;

    /// <inheritdoc/>
    public ConfState ConfState => Snapshot.ConfState;

    /// <inheritdoc/>
    public SnapshotMetadata Snapshot { get; private set; } = SnapshotMetadata.Empty;

    /// <inheritdoc/>
    public ulong FirstIndex => _offset + 1;

    /// <inheritdoc/>
    public ulong LastIndex => _offset + (ulong)_entries.Count;

    /// <summary>Entries currently stored (for tests and checkers).</summary>
    public IReadOnlyList<Entry> Entries => _entries;

    /// <inheritdoc/>
    public bool TryGetTerm(ulong index, out ulong term)
    {
        term = 0;
        if (index < _offset || index > LastIndex)
        {
            return false;
        }

        term = index == _offset ? _offsetTerm : _entries[(int)(index - _offset - 1)].Term;
        return true;
    }

    /// <inheritdoc/>
    public void GetEntries(ulong low, ulong high, long maxBytes, List<Entry> into)
    {
        Invariant.Check(low >= FirstIndex && low <= high && high <= LastIndex + 1, $"range [{low}, {high}) outside [{FirstIndex}, {LastIndex + 1})");
        long bytes = 0;
        for (var index = low; index < high; index++)
        {
            var entry = _entries[(int)(index - _offset - 1)];
            if (index > low && bytes + entry.SizeBytes > maxBytes)
            {
                break;
            }

            bytes += entry.SizeBytes;
            into.Add(entry);
        }
    }

    /// <summary>
    /// Appends entries made durable by the host (a Ready's Entries). An entry at an index already stored replaces
    /// it and everything after (a new leader overwrote an uncommitted suffix); entries already compacted are skipped.
    /// </summary>
    public void Append(IReadOnlyList<Entry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            if (entry.Index <= _offset)
            {
                continue;
            }

            Invariant.Check(entry.Index <= LastIndex + 1, $"gap: appending {entry.Index} after {LastIndex}");
            if (entry.Index <= LastIndex)
            {
                var keep = (int)(entry.Index - _offset - 1);
                _entries.RemoveRange(keep, _entries.Count - keep);
            }

            _entries.Add(entry);
        }
    }

    /// <summary>Persists the hard state of a Ready.</summary>
    public void SetHardState(HardState hardState) => HardState = hardState;

    /// <summary>Installs a snapshot received from the leader: the log now starts after it.</summary>
    public void ApplySnapshot(SnapshotMetadata snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        Invariant.Check(snapshot.Index >= Snapshot.Index, "snapshot older than the current one");
        _entries.Clear();
        _offset = snapshot.Index;
        _offsetTerm = snapshot.Term;
        Snapshot = snapshot;
        HardState = HardState with { Commit = Math.Max(HardState.Commit, snapshot.Index) };
    }

    /// <summary>
    /// Records that the host's state machine took a snapshot at <paramref name="index"/> (an applied index) with
    /// membership <paramref name="confState"/> (<see cref="RaftNode.ConfState"/> at that point). Does not compact.
    /// </summary>
    public SnapshotMetadata CreateSnapshot(ulong index, ConfState confState)
    {
        ArgumentNullException.ThrowIfNull(confState);
        Invariant.Check(index >= Snapshot.Index && index <= LastIndex, $"snapshot index {index} outside [{Snapshot.Index}, {LastIndex}]");
        var found = TryGetTerm(index, out var term);
        Invariant.Check(found);
        Snapshot = new SnapshotMetadata(index, term, confState);
        return Snapshot;
    }

    /// <summary>Drops entries up to and including <paramref name="index"/>, which must not pass the snapshot.</summary>
    public void Compact(ulong index)
    {
        Invariant.Check(index <= Snapshot.Index, "compact only up to the latest snapshot, so followers can still catch up");
        if (index <= _offset)
        {
            return;
        }

        var found = TryGetTerm(index, out var term);
        Invariant.Check(found);
        _entries.RemoveRange(0, (int)(index - _offset));
        _offset = index;
        _offsetTerm = term;
    }
}
