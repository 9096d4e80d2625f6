using System.Globalization;

namespace RaftLedger.Storage.Wal;

// What the writer accepts, and how old segments are freed.
public sealed partial class WriteAheadLog
{
    private ArgumentException? Validate(IReadOnlyList<WalGroupWrite> writes)
    {
        for (var i = 0; i < writes.Count; i++)
        {
            for (var j = 0; j < i; j++)
            {
                if (writes[j].GroupId == writes[i].GroupId)
                {
                    return new ArgumentException($"Group {writes[i].GroupId} appears twice in one append; merge its writes.");
                }
            }

            var error = ValidateWrite(writes[i], _groups[writes[i].GroupId]);
            if (error is not null)
            {
                return new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Group {writes[i].GroupId}: {error}"));
            }
        }

        return null;
    }

    private static string? ValidateWrite(WalGroupWrite write, WalGroupStorage group)
    {
        var view = group.Writer;
        var snapshotIndex = view.SnapshotIndex;
        var last = view.LastIndex;
        if (write.Snapshot is { } snapshot)
        {
            if (snapshot.Index < view.SnapshotIndex)
            {
                return $"snapshot index {snapshot.Index} is below the current snapshot index {view.SnapshotIndex}.";
            }

            if (snapshot.Index > group.CompactableIndex)
            {
                return $"snapshot index {snapshot.Index} is beyond the compactable index {group.CompactableIndex}; make the state " +
                    "machine durable through that index and call SetCompactableIndex before writing the snapshot marker.";
            }

            snapshotIndex = snapshot.Index;
            last = LastAfterSnapshot(group, view.LastIndex, snapshot);
        }

        var entryError = ValidateEntries(write.Entries, snapshotIndex, last, view.Commit);
        if (entryError is not null)
        {
            return entryError;
        }

        last = write.Entries.Count > 0 ? write.Entries[^1].Index : last;
        if (write.HardState is { } state)
        {
            if (state.Term < view.Term || state.Commit < view.Commit)
            {
                return $"hard state (term {state.Term}, commit {state.Commit}) goes back from (term {view.Term}, commit {view.Commit}).";
            }

            if (state.Commit > last)
            {
                return $"hard state commit {state.Commit} is beyond the last index {last}.";
            }
        }

        return null;
    }

    // A marker whose entry we hold with the same term compacts the log; any other replaces it entirely.
    private static ulong LastAfterSnapshot(WalGroupStorage group, ulong last, Raft.SnapshotMetadata snapshot) =>
        snapshot.Index <= last && group.TryGetTerm(snapshot.Index, out var term) && term == snapshot.Term ? last : snapshot.Index;

    private static string? ValidateEntries(IReadOnlyList<Raft.Entry> entries, ulong snapshotIndex, ulong last, ulong commit)
    {
        if (entries.Count == 0)
        {
            return null;
        }

        var first = entries[0].Index;
        for (var i = 1; i < entries.Count; i++)
        {
            if (entries[i].Index != first + (ulong)i || entries[i].Term < entries[i - 1].Term)
            {
                return $"entries must have consecutive indexes and non-decreasing terms (at index {entries[i].Index}).";
            }
        }

        if (first <= snapshotIndex)
        {
            return $"entry {first} is covered by the snapshot at {snapshotIndex}.";
        }

        if (first > last + 1)
        {
            return $"entry {first} would leave a gap after the last index {last}.";
        }

        // A conflicting suffix may be replaced, but never a committed entry (Raft's Log Matching guarantee).
        return first <= last && first <= commit ? $"entry {first} would overwrite a committed entry (commit {commit})." : null;
    }

    private void Compact()
    {
        _compactionDue = false;
        var needingSnapshot = new List<ulong>();
        while (true)
        {
            WalSegment oldest;
            lock (_segmentsLock)
            {
                oldest = _segments.First().Value;
            }

            if (ReferenceEquals(oldest, _active))
            {
                break;
            }

            oldest.Groups.RemoveWhere(id => !_groups[id].IsLiveIn(oldest.Sequence));
            if (oldest.Groups.Count == 0)
            {
                RetireSegment(oldest);
                continue;
            }

            // Copying forward costs writes; only worth it once old segments pile up.
            if (SegmentCount() > _options.CompactionRewriteSegmentsMin)
            {
                foreach (var id in oldest.Groups)
                {
                    QueueCheckpointOrReport(id, needingSnapshot);
                }
            }

            break;
        }

        Volatile.Write(ref _groupsNeedingSnapshot, [.. needingSnapshot]);
        _spare ??= StartSpare();
    }

    // A group pinning the oldest segment is copied forward if its whole live log is small (an idle or
    // lightly used group); otherwise the host must snapshot it (Statistics.GroupsNeedingSnapshot), because
    // copying a large log forward on every roll would multiply the write load.
    private void QueueCheckpointOrReport(ulong groupId, List<ulong> needingSnapshot)
    {
        if (_checkpointing.Contains(groupId))
        {
            return;
        }

        var group = _groups[groupId];
        var bytes = group.CheckpointBytes();
        if (bytes > _options.CompactionRewriteBytesMax)
        {
            needingSnapshot.Add(groupId);
            return;
        }

        _checkpoints.Enqueue(groupId);
        _checkpointing.Add(groupId);
    }

    private int SegmentCount()
    {
        lock (_segmentsLock)
        {
            return _segments.Count;
        }
    }

    /// <summary>
    /// Takes a segment no group needs out of the log. Up to <see cref="WalOptions.FreeSegmentsMax"/> are kept under
    /// their free names to be recycled as later segments (no zero-filling, and their blocks are already allocated, so
    /// fdatasync writes no metadata); beyond that they are deleted, so at most that many files beyond the log and its
    /// spare stay on disk.
    /// </summary>
    private void RetireSegment(WalSegment segment)
    {
        lock (_segmentsLock)
        {
            _segments.Remove(segment.Sequence);
        }

        segment.Dispose();
        if (_free.Count < _options.FreeSegmentsMax && segment.CapacityBytes == _options.SegmentBytes)
        {
            var free = Path.Combine(_options.Directory, WalFiles.FreeName(segment.Sequence));
            WalFiles.RenameDurably(segment.Path, free);
            _free.Add((segment.Sequence, free));
            _free.Sort(static (a, b) => a.Sequence.CompareTo(b.Sequence));
            _options.Log($"WAL compaction: no group needs the records of {segment.Path}; kept as {free} to be recycled.");
            return;
        }

        File.Delete(segment.Path);
        WalFiles.SyncDirectory(_options.Directory);
        _options.Log($"WAL compaction: deleted {segment.Path}; no group needs its records.");
    }
}
