using System.Runtime.InteropServices;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Storage.Wal;

/// <summary>Where one entry's record lives.</summary>
public readonly record struct EntryLocation(ulong Term, ulong Segment, int Offset, int Length);

/// <summary>Reads entries' records back from their segments.</summary>
internal interface IWalEntryReader
{
    /// <summary>
    /// Appends to <paramref name="into"/> the entries <paramref name="firstIndex"/>, firstIndex + 1, ... stored at
    /// <paramref name="locations"/>, reading each run of nearby records in one segment with one read.
    /// </summary>
    void ReadEntries(ulong groupId, ulong firstIndex, ReadOnlySpan<EntryLocation> locations, List<Entry> into);
}

/// <summary>
/// One Raft group's view of the shared write-ahead log: the durable state the core reads through
/// <see cref="IRaftLogStorage"/>. Only the WAL's writer thread (after an fdatasync) and recovery change it;
/// the Raft host thread reads it. Recent entries stay in a bounded cache; older ones are read from segments.
/// </summary>
public sealed class WalGroupStorage : IRaftLogStorage
{
    private readonly Lock _sync = new();
    private readonly IWalEntryReader _reader;
    private readonly long _cacheBytesMax;

    private SnapshotMetadata _snapshot = SnapshotMetadata.Empty;
    private HardState _hardState = HardState.Empty;

    // Invariant (outside recovery): _locations[i] is the entry at _locationsFirstIndex + i and
    // _locationsFirstIndex == _snapshot.Index + 1. During recovery a prefix may be missing (a deleted segment).
    private readonly List<EntryLocation> _locations = [];
    private ulong _locationsFirstIndex = 1;

    // Invariant: the cache holds the entries [_cacheFirstIndex, LastIndex] (a suffix of the log) and
    // _cacheBytes is the sum of their SizeBytes.
    private readonly List<Entry> _cache = [];
    private ulong _cacheFirstIndex = 1;
    private long _cacheBytes;

    // Segments holding the latest hard-state and snapshot records (0 = none written): compaction must keep them.
    private ulong _hardStateSegment;
    private ulong _snapshotSegment;

    // Highest index the state machine has made durable: snapshot markers may not go past it (see SetCompactableIndex).
    private long _compactableIndex;

    internal GroupWriterView Writer;

    internal WalGroupStorage(ulong groupId, IWalEntryReader reader, long cacheBytesMax)
    {
        Invariant.Check(cacheBytesMax >= 0);
        GroupId = groupId;
        _reader = reader;
        _cacheBytesMax = cacheBytesMax;
    }

    /// <summary>The Raft group this storage belongs to.</summary>
    public ulong GroupId { get; }

    /// <inheritdoc/>
    public HardState HardState
    {
        get { lock (_sync) { return _hardState; } }
    }

    /// <inheritdoc/>
    public ConfState ConfState
    {
        get { lock (_sync) { return _snapshot.ConfState; } }
    }

    /// <inheritdoc/>
    public SnapshotMetadata Snapshot
    {
        get { lock (_sync) { return _snapshot; } }
    }

    /// <inheritdoc/>
    public ulong FirstIndex
    {
        get { lock (_sync) { return _snapshot.Index + 1; } }
    }

    /// <inheritdoc/>
    public ulong LastIndex
    {
        get { lock (_sync) { return LastIndexLocked; } }
    }

    /// <summary>The index up to which the state machine is durable, as last told by the host.</summary>
    public ulong CompactableIndex => (ulong)Interlocked.Read(ref _compactableIndex);

    /// <summary>Bytes of entries currently cached (for tests and metrics).</summary>
    public long CachedBytes
    {
        get { lock (_sync) { return _cacheBytes; } }
    }

    /// <summary>Index of the first cached entry; entries below it are read from segments.</summary>
    public ulong CacheFirstIndex
    {
        get { lock (_sync) { return _cacheFirstIndex; } }
    }

    private ulong LastIndexLocked =>
        _locations.Count > 0 ? _locationsFirstIndex + (ulong)_locations.Count - 1 : _snapshot.Index;

    /// <inheritdoc/>
    public bool TryGetTerm(ulong index, out ulong term)
    {
        lock (_sync)
        {
            term = 0;
            if (index == _snapshot.Index)
            {
                term = _snapshot.Term;
                return true;
            }

            if (index < _locationsFirstIndex || index > LastIndexLocked)
            {
                return false;
            }

            term = _locations[(int)(index - _locationsFirstIndex)].Term;
            return true;
        }
    }

    /// <inheritdoc/>
    public void GetEntries(ulong low, ulong high, long maxBytes, List<Entry> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        lock (_sync)
        {
            Invariant.Check(_snapshot.Index + 1 <= low && low <= high, "requires FirstIndex <= low <= high");
            Invariant.Check(high <= LastIndexLocked + 1, "requires high <= LastIndex + 1");
            long total = 0;
            var index = low;
            // Entries older than the cache (a follower that fell behind): how many fit is known from their record
            // lengths, so they are read in a few sequential reads instead of one per entry.
            var uncachedHigh = Math.Min(high, _cacheFirstIndex);
            if (index < uncachedHigh)
            {
                var first = (int)(index - _locationsFirstIndex);
                var count = 0;
                var full = false;
                for (; index < uncachedHigh; index++, count++)
                {
                    total += Entry.OverheadBytes + _locations[first + count].Length - WalRecord.HeaderBytes;
                    if (total > maxBytes && index > low)
                    {
                        full = true;
                        break;
                    }
                }

                _reader.ReadEntries(GroupId, low, CollectionsMarshal.AsSpan(_locations).Slice(first, count), into);
                if (full)
                {
                    return;
                }
            }

            for (; index < high; index++)
            {
                var entry = _cache[(int)(index - _cacheFirstIndex)];
                total += entry.SizeBytes;
                if (total > maxBytes && index > low)
                {
                    return;
                }

                into.Add(entry);
            }
        }
    }

    /// <summary>
    /// Tells the log that the state machine has made everything up to <paramref name="index"/> durable, so a
    /// snapshot marker (which lets the log drop entries) may now go that far. The log never drops an entry
    /// beyond this index: after a crash the state machine must be able to re-apply every entry after it.
    /// </summary>
    public void SetCompactableIndex(ulong index)
    {
        long current;
        do
        {
            current = Interlocked.Read(ref _compactableIndex);
            if ((ulong)current >= index)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _compactableIndex, (long)index, current) != current);
    }

    internal void ApplySnapshot(SnapshotMetadata snapshot, ulong segment)
    {
        lock (_sync)
        {
            var last = LastIndexLocked;
            var keepsSuffix = _locations.Count > 0 && snapshot.Index >= _locationsFirstIndex && snapshot.Index <= last &&
                _locations[(int)(snapshot.Index - _locationsFirstIndex)].Term == snapshot.Term;
            if (keepsSuffix)
            {
                // Compaction of our own log: entries after the snapshot stay.
                var drop = (int)(snapshot.Index - _locationsFirstIndex + 1);
                _locations.RemoveRange(0, drop);
                _locationsFirstIndex = snapshot.Index + 1;
            }
            else if (_locations.Count == 0 || snapshot.Index >= _locationsFirstIndex)
            {
                // An installed snapshot whose index we lack or whose term differs replaces the whole log.
                _locations.Clear();
                _locationsFirstIndex = snapshot.Index + 1;
            }

            // Otherwise (recovery only) the snapshot lies below entries whose earlier part was in a deleted
            // segment; FinishRecovery checks that the remaining entries start right after a snapshot.
            _snapshot = snapshot;
            _snapshotSegment = segment;
            TrimCacheBelow(snapshot.Index + 1);
            if (_locations.Count == 0)
            {
                ClearCache(snapshot.Index + 1);
            }
        }
    }

    internal void ApplyEntries(ReadOnlySpan<Entry> entries, ReadOnlySpan<EntryLocation> locations, bool cache)
    {
        Invariant.Check(entries.Length == locations.Length);
        lock (_sync)
        {
            for (var i = 0; i < entries.Length; i++)
            {
                AppendLocation(entries[i].Index, locations[i]);
                if (cache)
                {
                    AppendCache(entries[i]);
                }
            }

            EvictCache();
        }
    }

    /// <summary>Recovery's per-record form of <see cref="ApplyEntries"/> (no payload, so nothing is cached).</summary>
    internal void ApplyRecoveredEntry(ulong index, EntryLocation location)
    {
        lock (_sync)
        {
            AppendLocation(index, location);
        }
    }

    internal void ApplyHardState(HardState state, ulong segment)
    {
        lock (_sync)
        {
            _hardState = state;
            _hardStateSegment = segment;
        }
    }

    private void AppendLocation(ulong index, EntryLocation location)
    {
        var last = LastIndexLocked;
        if (_locations.Count > 0 && index >= _locationsFirstIndex && index <= last)
        {
            // A later record for an index replaces that entry and every entry after it (conflict truncation).
            _locations.RemoveRange((int)(index - _locationsFirstIndex), (int)(last - index + 1));
        }
        else if (_locations.Count > 0 && index != last + 1)
        {
            // Recovery only: the log continues in a segment after a deleted one; checked in FinishRecovery.
            _locations.Clear();
        }

        if (_locations.Count == 0)
        {
            _locationsFirstIndex = index;
        }

        if (_cache.Count > 0 && index < _cacheFirstIndex + (ulong)_cache.Count)
        {
            TruncateCacheFrom(index);
        }

        // Invariant: entry locations' segments never decrease with the index. Appends go to the newest
        // segment, truncation keeps a prefix, and a checkpoint rewrites the whole log into one segment.
        Invariant.Check(_locations.Count == 0 || _locations[^1].Segment <= location.Segment);
        _locations.Add(location);
        Invariant.Check(LastIndexLocked == index);
    }

    private void AppendCache(Entry entry)
    {
        if (_cache.Count == 0)
        {
            _cacheFirstIndex = entry.Index;
        }

        if (entry.Index != _cacheFirstIndex + (ulong)_cache.Count)
        {
            // The cache must stay a suffix; an entry after a gap restarts it.
            ClearCache(entry.Index);
        }

        _cache.Add(entry);
        _cacheBytes += entry.SizeBytes;
    }

    private void EvictCache()
    {
        if (_cacheBytes <= _cacheBytesMax)
        {
            return;
        }

        // Evict down to three quarters of the budget so eviction (an O(n) shift) is amortised.
        var target = _cacheBytesMax / 4 * 3;
        var drop = 0;
        while (drop < _cache.Count && _cacheBytes > target)
        {
            _cacheBytes -= _cache[drop].SizeBytes;
            drop++;
        }

        _cache.RemoveRange(0, drop);
        _cacheFirstIndex += (ulong)drop;
        Invariant.Check(_cacheBytes <= _cacheBytesMax);
    }

    private void TrimCacheBelow(ulong index)
    {
        var drop = 0;
        while (drop < _cache.Count && _cacheFirstIndex + (ulong)drop < index)
        {
            _cacheBytes -= _cache[drop].SizeBytes;
            drop++;
        }

        _cache.RemoveRange(0, drop);
        _cacheFirstIndex += (ulong)drop;
    }

    private void TruncateCacheFrom(ulong index)
    {
        if (index <= _cacheFirstIndex)
        {
            ClearCache(index);
            return;
        }

        var keep = (int)(index - _cacheFirstIndex);
        for (var i = keep; i < _cache.Count; i++)
        {
            _cacheBytes -= _cache[i].SizeBytes;
        }

        _cache.RemoveRange(keep, _cache.Count - keep);
    }

    private void ClearCache(ulong nextIndex)
    {
        _cache.Clear();
        _cacheBytes = 0;
        _cacheFirstIndex = nextIndex;
    }

    /// <summary>Checks recovery left a gap-free log and seeds the writer's view; returns an error or null.</summary>
    internal string? FinishRecovery()
    {
        lock (_sync)
        {
            if (_locations.Count > 0 && _locationsFirstIndex != _snapshot.Index + 1)
            {
                return $"group {GroupId} has entries from index {_locationsFirstIndex} but its snapshot ends at {_snapshot.Index}: " +
                    $"entries {_snapshot.Index + 1}..{_locationsFirstIndex - 1} are missing";
            }

            ClearCache(LastIndexLocked + 1);
            _compactableIndex = (long)_snapshot.Index;
            Writer = new GroupWriterView(LastIndexLocked, _snapshot.Index, _hardState.Term, _hardState.Commit);
            return null;
        }
    }

    /// <summary>True if compaction must keep <paramref name="segment"/> (the oldest segment) for this group.</summary>
    internal bool IsLiveIn(ulong segment)
    {
        lock (_sync)
        {
            if (_snapshotSegment == segment || _hardStateSegment == segment)
            {
                return true;
            }

            // Segments are non-decreasing along the log (see AppendLocation), so the first entry is in
            // the oldest segment this group uses.
            return _locations.Count > 0 && _locations[0].Segment <= segment;
        }
    }

    /// <summary>Bytes a checkpoint (snapshot marker, every live entry, hard state) would take on disk.</summary>
    internal long CheckpointBytes()
    {
        lock (_sync)
        {
            long bytes = WalRecord.StoredBytes(WalRecord.SnapshotPayloadBytes(_snapshot.ConfState)) +
                WalRecord.StoredBytes(WalRecord.HardStatePayloadBytes);
            foreach (var location in _locations)
            {
                bytes += WalRecord.Align(location.Length);
            }

            return bytes;
        }
    }

    /// <summary>The whole durable state as one write, to copy it forward out of an old segment.</summary>
    internal WalGroupWrite Checkpoint()
    {
        lock (_sync)
        {
            var entries = new List<Entry>(_locations.Count);
            if (_locations.Count > 0)
            {
                GetEntries(_locationsFirstIndex, LastIndexLocked + 1, long.MaxValue, entries);
            }

            return new WalGroupWrite(GroupId, entries, _hardState.IsEmpty ? null : _hardState, _snapshot);
        }
    }
}

/// <summary>What the writer thread has accepted for a group (durable or in the flush being built).</summary>
internal record struct GroupWriterView(ulong LastIndex, ulong SnapshotIndex, ulong Term, ulong Commit);
