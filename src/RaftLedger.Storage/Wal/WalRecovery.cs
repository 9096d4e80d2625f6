using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Storage.Wal;

/// <summary>
/// What recovery found: the segments to keep, where writing resumes, and the one file kept to be recycled as the next
/// segment (a free segment or an empty trailing one), if any.
/// </summary>
internal sealed record WalRecoveryResult(
    List<WalSegment> Segments, ulong NextFlushSequence, long TailEndBytes, bool TailAppendable, List<(ulong Sequence, string Path)> Free);

/// <summary>
/// Rebuilds every group's state from the segments, oldest first. Appends are atomic (an append whose
/// last record is missing is discarded) and flush sequence numbers must run without gaps. Where the
/// valid records stop, we look at everything after that point: a record from a later flush than the
/// damaged one means synced data was lost (refuse to start); otherwise it is a torn, never-acknowledged
/// tail, which is zeroed and logged. Bytes after the last valid record that form no record valid for this
/// segment (zeros, a torn partial record, or the records of a recycled file's earlier life, whose checksum covers
/// another segment sequence) are not damage: they can never pass the check, so writing may continue over them.
/// </summary>
internal sealed class WalRecovery
{
    private readonly WalOptions _options;
    private readonly Func<ulong, WalGroupStorage> _groupFor;
    private readonly List<RecoveredRecord> _append = [];
    private long _appendStart;
    private ulong? _lastFlush;
    private (ulong? Flush, bool EndsFlush) _beforeAppend;
    private bool _lastEndsFlush;
    private byte[] _buffer = [];

    public WalRecovery(WalOptions options, Func<ulong, WalGroupStorage> groupFor)
    {
        _options = options;
        _groupFor = groupFor;
    }

    public WalRecoveryResult Run()
    {
        foreach (var stale in Directory.EnumerateFiles(_options.Directory, "wal-*.log.tmp"))
        {
            File.Delete(stale);
        }

        var files = WalFiles.ListSegments(_options.Directory);
        var segments = new List<WalSegment>();
        var ends = new List<long>();
        bool torn;
        try
        {
            torn = ScanAll(files, segments, ends);
        }
        catch
        {
            foreach (var segment in segments)
            {
                segment.Dispose();
            }

            throw;
        }

        var dropped = DropTrailingEmpty(segments, ends, files);
        var free = KeepFree(dropped);
        // Writing resumes in the last segment only after a clean end: a new flush must follow a finished one.
        var appendable = !torn && _lastEndsFlush && segments.Count > 0;
        return new WalRecoveryResult(segments, (_lastFlush ?? 0) + 1, segments.Count > 0 ? ends[^1] : 0, appendable, free);
    }

    private bool ScanAll(List<(ulong Sequence, string Path)> files, List<WalSegment> segments, List<long> ends)
    {
        for (var i = 0; i < files.Count; i++)
        {
            var segment = new WalSegment(files[i].Sequence, files[i].Path, WalFiles.OpenSegment(files[i].Path), new FileInfo(files[i].Path).Length);
            segments.Add(segment);
            var data = Load(segment);
            var (endOfData, damaged) = ScanSegment(segment, data);
            if (damaged)
            {
                EnsureNothingAfter(files, i + 1, segment, endOfData);
                ends.Add(Truncate(segment, data, endOfData));
                return true;
            }

            ends.Add(endOfData);
        }

        return false;
    }

    private ReadOnlySpan<byte> Load(WalSegment segment)
    {
        var length = (int)segment.CapacityBytes;
        if (_buffer.Length < length)
        {
            _buffer = GC.AllocateUninitializedArray<byte>(length);
        }

        var read = 0;
        while (read < length)
        {
            var n = RandomAccess.Read(segment.Handle, _buffer.AsSpan(read, length - read), read);
            Invariant.Check(n > 0, "segment shorter than its length");
            read += n;
        }

        return _buffer.AsSpan(0, length);
    }

    private (long EndOfData, bool Damaged) ScanSegment(WalSegment segment, ReadOnlySpan<byte> data)
    {
        var position = 0;
        while (WalRecord.TryRead(data[position..], segment.Sequence, _options.RecordBytesMax, out var header, out var length))
        {
            CheckChain(segment, position, header);
            if (_append.Count == 0)
            {
                _appendStart = position;
                _beforeAppend = (_lastFlush, _lastEndsFlush);
            }

            _append.Add(Decode(segment, position, header, data.Slice(position, length)));
            _lastFlush = header.FlushSequence;
            _lastEndsFlush = header.EndsFlush;
            position += WalRecord.Align(length);
            if (header.EndsAppend)
            {
                ApplyAppend(segment);
            }
        }

        var after = ScanForRecords(data, segment.Sequence, position + WalRecord.AlignmentBytes);
        CheckNothingSyncedAfter(segment, position, after);
        // A valid record after the end (a torn flush's sectors written out of order) must be zeroed, or writing
        // resumed here with the same flush number could end right before it and take it as its own.
        var damaged = _append.Count > 0 || after.Found;
        return (position, damaged);
    }

    private void CheckChain(WalSegment segment, int position, WalRecordHeader header)
    {
        if (_lastFlush is not ulong last)
        {
            return;
        }

        // Within a flush records continue it; a new flush follows a finished one, or starts a segment
        // (after recovery cut a torn flush short, writing resumes in a fresh segment).
        var continues = position > 0 && header.FlushSequence == last && !_lastEndsFlush;
        var next = header.FlushSequence == last + 1 && (_lastEndsFlush || position == 0);
        if (!continues && !next)
        {
            throw new WalCorruptionException(segment.Path, position,
                $"record of flush {header.FlushSequence} follows flush {last} (a synced flush is missing or out of order)");
        }
    }

    private void CheckNothingSyncedAfter(WalSegment segment, int endOfData, (bool Found, long Offset, ulong MinFlush, ulong MaxFlush) after)
    {
        var (found, offset, minFlush, maxFlush) = after;
        if (!found)
        {
            return;
        }

        // The damaged spot belongs to the flush after the last good record if that record ended its flush.
        var corrupt = _lastFlush is ulong last
            ? maxFlush > (_lastEndsFlush || endOfData == 0 ? last + 1 : last)
            : minFlush != maxFlush;
        if (corrupt)
        {
            throw new WalCorruptionException(segment.Path, endOfData,
                $"unreadable record (bad checksum, length or header) followed at offset {offset} by a record of a later, synced flush {maxFlush}");
        }
    }

    private (bool Found, long Offset, ulong MinFlush, ulong MaxFlush) ScanForRecords(ReadOnlySpan<byte> data, ulong segmentSequence, int from)
    {
        var found = false;
        long first = 0;
        ulong min = ulong.MaxValue, max = 0;
        for (var at = from; at <= data.Length - WalRecord.HeaderBytes; at += WalRecord.AlignmentBytes)
        {
            if (BinaryPrimitives.ReadUInt16LittleEndian(data[(at + 8)..]) != WalRecord.Magic ||
                !WalRecord.TryRead(data[at..], segmentSequence, _options.RecordBytesMax, out var header, out _))
            {
                continue;
            }

            first = found ? first : at;
            found = true;
            min = Math.Min(min, header.FlushSequence);
            max = Math.Max(max, header.FlushSequence);
        }

        return (found, first, min, max);
    }

    private void EnsureNothingAfter(List<(ulong Sequence, string Path)> files, int from, WalSegment damaged, long damagedOffset)
    {
        for (var i = from; i < files.Count; i++)
        {
            using var handle = WalFiles.OpenSegment(files[i].Path);
            var segment = new WalSegment(files[i].Sequence, files[i].Path, handle, new FileInfo(files[i].Path).Length);
            var (found, offset, _, maxFlush) = ScanForRecords(Load(segment), segment.Sequence, 0);
            if (found)
            {
                throw new WalCorruptionException(damaged.Path, damagedOffset,
                    $"unreadable or incomplete record, yet {files[i].Path} holds a later synced record (flush {maxFlush}, offset {offset})");
            }
        }
    }

    private long Truncate(WalSegment segment, ReadOnlySpan<byte> data, long endOfData)
    {
        var from = _append.Count > 0 ? _appendStart : endOfData;
        if (_append.Count > 0)
        {
            // The discarded records must not count as written: writing resumes after the last kept flush.
            (_lastFlush, _lastEndsFlush) = _beforeAppend;
        }

        _options.Log($"WAL recovery: torn tail in {segment.Path} at offset {from}: discarding {_append.Count} record(s) " +
            $"of an incomplete append and {data.Length - from} trailing bytes; they were never acknowledged as durable.");
        _append.Clear();
        WalFiles.ZeroRange(segment.Handle, from, data.Length);
        return from;
    }

    private static List<(ulong Sequence, string Path)> DropTrailingEmpty(List<WalSegment> segments, List<long> ends, List<(ulong Sequence, string Path)> files)
    {
        // Segments after the last one read (a torn tail stops the scan; they hold no valid record) and an empty
        // last segment (a spare made before the crash, or one whose only append was torn) leave the log;
        // writing starts afresh. The caller recycles or deletes them.
        var dropped = files.GetRange(segments.Count, files.Count - segments.Count);
        while (segments.Count > 0 && segments[^1].Groups.Count == 0)
        {
            segments[^1].Dispose();
            dropped.Add((segments[^1].Sequence, segments[^1].Path));
            segments.RemoveAt(segments.Count - 1);
            ends.RemoveAt(ends.Count - 1);
        }

        return dropped;
    }

    /// <summary>
    /// Of the dropped segments and the free files, keeps the <see cref="WalOptions.FreeSegmentsMax"/> of the highest
    /// sequences (renamed to their free names) to be recycled, oldest first, and deletes the rest; a file of another
    /// size than <see cref="WalOptions.SegmentBytes"/> is deleted too. The next segment's sequence is above every kept
    /// name, so no old record can pass its check.
    /// </summary>
    private List<(ulong Sequence, string Path)> KeepFree(List<(ulong Sequence, string Path)> dropped)
    {
        var candidates = WalFiles.ListFree(_options.Directory);
        candidates.AddRange(dropped);
        candidates.Sort(static (a, b) => a.Sequence.CompareTo(b.Sequence));
        var kept = new List<(ulong Sequence, string Path)>();
        for (var i = candidates.Count - 1; i >= 0; i--)
        {
            var (sequence, path) = candidates[i];
            if (kept.Exists(k => k.Sequence == sequence))
            {
                // A dropped segment whose free name was also on disk: one of the two is kept (a rename replaced the other).
                if (!kept.Exists(k => k.Path == path))
                {
                    File.Delete(path);
                }

                continue;
            }

            var free = Path.Combine(_options.Directory, WalFiles.FreeName(sequence));

            if (kept.Count < _options.FreeSegmentsMax && new FileInfo(path).Length == _options.SegmentBytes)
            {
                if (path != free)
                {
                    File.Move(path, free, overwrite: true);
                }

                kept.Add((sequence, free));
                continue;
            }

            File.Delete(path);
        }

        if (candidates.Count > 0)
        {
            WalFiles.SyncDirectory(_options.Directory);
        }

        kept.Reverse();
        return kept;
    }

    private static RecoveredRecord Decode(WalSegment segment, int position, WalRecordHeader header, ReadOnlySpan<byte> record)
    {
        var payload = record[WalRecord.HeaderBytes..];
        try
        {
            return header.Kind switch
            {
                WalRecordKind.Entry => new RecoveredRecord(header, new EntryLocation(header.Term, segment.Sequence, position, record.Length), default, null),
                WalRecordKind.HardState => new RecoveredRecord(header, default, WalRecord.ReadHardState(header.Term, payload), null),
                _ => new RecoveredRecord(header, default, default,
                    new SnapshotMetadata(header.Index, header.Term, WalRecord.ReadConfState(payload))),
            };
        }
        catch (Exception e) when (e is FormatException or ArgumentOutOfRangeException)
        {
            throw new WalCorruptionException(segment.Path, position, $"checksummed record does not parse ({e.Message})");
        }
    }

    private void ApplyAppend(WalSegment segment)
    {
        foreach (var record in _append)
        {
            var group = _groupFor(record.Header.GroupId);
            segment.Groups.Add(record.Header.GroupId);
            switch (record.Header.Kind)
            {
                case WalRecordKind.Entry:
                    group.ApplyRecoveredEntry(record.Header.Index, record.Location);
                    break;
                case WalRecordKind.HardState:
                    group.ApplyHardState(record.HardState, segment.Sequence);
                    break;
                default:
                    group.ApplySnapshot(record.Snapshot!, segment.Sequence);
                    break;
            }
        }

        _append.Clear();
    }

    private readonly record struct RecoveredRecord(WalRecordHeader Header, EntryLocation Location, HardState HardState, SnapshotMetadata? Snapshot);
}
