using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Storage.Wal;

/// <summary>Counters for metrics and tests.</summary>
public sealed record WalStatistics(long Flushes, long FlushedBytes, long Appends, int Segments, IReadOnlyList<ulong> GroupsNeedingSnapshot)
{
    /// <summary>Reads of uncached entries from segments so far (each one sequential read of up to ReadBytesMax).</summary>
    public long SegmentReads { get; init; }
}

/// <summary>
/// The node's write-ahead log, shared by all its Raft groups. Appends from any thread are queued (bounded:
/// appenders wait when it is full); one writer thread takes everything queued, writes it with one write and
/// one fdatasync, applies it to each group's <see cref="WalGroupStorage"/>, then completes the appends.
/// A completed <see cref="AppendAsync(IReadOnlyList{WalGroupWrite}, CancellationToken)"/> means durable.
/// A lone appender (a node's scheduler) can instead write on its own thread with <see cref="TryAppendNow"/>
/// while nothing is queued, which saves the two thread wake-ups of the queue.
/// </summary>
public sealed partial class WriteAheadLog : IDisposable, IWalEntryReader
{
    private readonly WalOptions _options;

    /// <summary>The options the log was opened with.</summary>
    public WalOptions Options => _options;
    private readonly ConcurrentDictionary<ulong, WalGroupStorage> _groups = new();
    private readonly Lock _segmentsLock = new();
    private readonly SortedDictionary<ulong, WalSegment> _segments = []; // guarded by _segmentsLock
    private readonly Channel<PendingAppend> _queue;
    private readonly Thread _writer;

    // Held for each flush, by the writer thread or by a caller of TryAppendNow; guards the flush state below.
    private readonly Lock _flushLock = new();
    private volatile bool _disposed;

    // Flush state (under _flushLock).
    private readonly byte[] _flushBuffer;
    private readonly List<EntryLocation> _flushLocations = [];
    private readonly List<PendingAppend> _batch = [];
    private readonly Queue<ulong> _checkpoints = new(); // groups to copy forward in the next flush
    private readonly HashSet<ulong> _checkpointing = [];
    private WalSegment _active;
    private long _writePosition; // Invariant: _writePosition <= _active.CapacityBytes, multiple of 8.
    private ulong _nextFlushSequence;
    private Task<WalSegment>? _spare; // Null from a roll until the compaction after it, which may free a file to recycle.
    private readonly List<(ulong Sequence, string Path)> _free = []; // Compacted segments kept to be recycled as spares, oldest first.
    private bool _compactionDue = true;
    private int _lastFlushAppends; // Appends (not checkpoints) the last flush completed.

    private volatile Exception? _fault;
    private ulong[] _groupsNeedingSnapshot = [];
    private long _flushes;
    private long _segmentReads; // Reads of uncached entries from segments (each covers up to ReadBytesMax).
    private long _flushedBytes;
    private long _appends;
    private readonly WalSyncedMarkWriter? _syncedMark; // Test instrument (WalOptions.SyncedMarkPath); null when off.

    private WriteAheadLog(WalOptions options)
    {
        _options = options;
        _flushBuffer = GC.AllocateUninitializedArray<byte>(options.FlushBytesMax, pinned: true);
        var recovered = new WalRecovery(options, GetGroup).Run();
        foreach (var group in _groups.Values)
        {
            var error = group.FinishRecovery();
            if (error is not null)
            {
                recovered.Segments.ForEach(static s => s.Dispose());
                throw new WalCorruptionException($"Write-ahead log in {options.Directory} is corrupt: {error}. " + RecoveryAdvice.WipeAndRejoin);
            }
        }

        foreach (var segment in recovered.Segments)
        {
            // What recovery read may have been only in the page cache (a process killed between a flush's write and
            // its fdatasync): make it durable before the node acts on it, e.g. tells a leader it holds those entries.
            WalFiles.SyncData(segment.Handle);
            _segments.Add(segment.Sequence, segment);
        }

        _nextFlushSequence = recovered.NextFlushSequence;
        _free.AddRange(recovered.Free);
        var lastSequence = recovered.Segments.Count > 0 ? recovered.Segments[^1].Sequence : 0;
        if (recovered.TailAppendable && recovered.Segments[^1].CapacityBytes - recovered.TailEndBytes >= options.FlushBytesMax)
        {
            _active = recovered.Segments[^1];
            _writePosition = recovered.TailEndBytes;
        }
        else
        {
            var sequence = Math.Max(lastSequence, HighestFreeSequence()) + 1;
            _active = MakeSegment(sequence, TakeFree(sequence));
            _segments.Add(_active.Sequence, _active);
        }

        _syncedMark = options.SyncedMarkPath is { } markPath ? new WalSyncedMarkWriter(markPath, options.SyncedMarkLagMarks) : null;
        _syncedMark?.Update(_active.Sequence, _writePosition); // Every kept segment was synced above.
        _spare = StartSpare();
        _queue = Channel.CreateBounded<PendingAppend>(new BoundedChannelOptions(options.QueueLengthMax)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "wal-writer" };
        _writer.Start();
    }

    /// <summary>
    /// Opens (creating if needed) the log in <see cref="WalOptions.Directory"/>, recovering every group.
    /// Throws <see cref="WalCorruptionException"/> when synced data is damaged, and <see cref="InvalidDataException"/>
    /// when the folder holds a log of another on-disk layout (<see cref="WalFormat"/>).
    /// </summary>
    public static WriteAheadLog Open(WalOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Directory.CreateDirectory(options.Directory);
        WalFormat.Check(options.Directory);
        WalFormat.WriteIfMissing(options.Directory);
        return new WriteAheadLog(options);
    }

    /// <summary>Ids of the groups with state in this log (recovered or written since).</summary>
    public IReadOnlyCollection<ulong> GroupIds => [.. _groups.Keys];

    /// <summary>Current counters.</summary>
    public WalStatistics Statistics
    {
        get
        {
            int segments;
            lock (_segmentsLock)
            {
                segments = _segments.Count;
            }

            return new WalStatistics(Interlocked.Read(ref _flushes), Interlocked.Read(ref _flushedBytes),
                Interlocked.Read(ref _appends), segments, Volatile.Read(ref _groupsNeedingSnapshot))
            {
                SegmentReads = Interlocked.Read(ref _segmentReads),
            };
        }
    }

    /// <summary>The storage of <paramref name="groupId"/>, created empty if the log has none yet.</summary>
    public WalGroupStorage GetGroup(ulong groupId)
    {
        if (_groups.TryGetValue(groupId, out var existing))
        {
            return existing;
        }

        if (_groups.Count >= _options.GroupsMax)
        {
            throw new InvalidOperationException(
                $"The WAL already holds {_options.GroupsMax} groups (WalOptions.GroupsMax); raise the limit or place fewer groups on this node.");
        }

        return _groups.GetOrAdd(groupId, id => new WalGroupStorage(id, this, _options.GroupCacheBytesMax));
    }

    /// <summary>See <see cref="WalGroupStorage.SetCompactableIndex"/>.</summary>
    public void SetCompactableIndex(ulong groupId, ulong index) => GetGroup(groupId).SetCompactableIndex(index);

    /// <summary>Appends one group's write; see <see cref="AppendAsync(IReadOnlyList{WalGroupWrite}, CancellationToken)"/>.</summary>
    public Task AppendAsync(WalGroupWrite write, CancellationToken cancellationToken = default) =>
        AppendAsync([write], cancellationToken);

    /// <summary>
    /// Queues the writes as one atomic append (after a crash either all of it is recovered or none) and
    /// completes once it is durable and every group's storage shows it. Waits while the queue is full.
    /// Fails with <see cref="ArgumentException"/> for a write that breaks the log's rules (see
    /// <see cref="WalGroupWrite"/>), and with <see cref="IOException"/> once the log has failed.
    /// </summary>
    public Task AppendAsync(IReadOnlyList<WalGroupWrite> writes, CancellationToken cancellationToken = default)
    {
        var bytes = CheckAppend(writes);
        var pending = new PendingAppend(writes, (int)bytes, isCheckpoint: false);
        return _queue.Writer.TryWrite(pending) ? pending.Task : EnqueueAsync(pending, cancellationToken);
    }

    private long CheckAppend(IReadOnlyList<WalGroupWrite> writes)
    {
        ArgumentNullException.ThrowIfNull(writes);
        ThrowIfFaulted();
        long bytes = 0;
        for (var w = 0; w < writes.Count; w++)
        {
            bytes += CheckShape(writes[w]);
        }

        if (bytes > _options.FlushBytesMax)
        {
            throw new ArgumentException(
                $"An append of {bytes} bytes exceeds WalOptions.FlushBytesMax ({_options.FlushBytesMax}); split the entries over several appends.",
                nameof(writes));
        }

        return bytes;
    }

    /// <summary>
    /// Writes the writes as one atomic append on the calling thread (one write and one fdatasync) and returns true
    /// once they are durable and every group's storage shows them; returns false, having done nothing, when the
    /// log is busy (an append is queued or being flushed, or compaction is due), and the caller must use
    /// <see cref="AppendAsync(IReadOnlyList{WalGroupWrite}, CancellationToken)"/>, which keeps the order of appends.
    /// Blocks for the fdatasync. Fails as <see cref="AppendAsync(IReadOnlyList{WalGroupWrite}, CancellationToken)"/> does.
    /// </summary>
    public bool TryAppendNow(IReadOnlyList<WalGroupWrite> writes)
    {
        var bytes = CheckAppend(writes);
        if (_queue.Reader.Count > 0 || !_flushLock.TryEnter())
        {
            return false;
        }

        try
        {
            // Checked again under the lock: the writer dequeues only while holding it, so an empty queue here means
            // no earlier append can be overtaken. Compaction and its checkpoints stay on the writer thread.
            ThrowIfFaulted();
            if (_disposed || _queue.Reader.Count > 0 || _compactionDue || _checkpoints.Count > 0)
            {
                return false;
            }

            var pending = new PendingAppend(writes, (int)bytes, isCheckpoint: false);
            FlushInline(pending);
            if (pending.Rejection is { } rejection)
            {
                throw rejection;
            }

            return true;
        }
        finally
        {
            _flushLock.Exit();
        }
    }

    /// <summary>Tests only: holds the flush lock, so the writer thread cannot take queued appends until disposed.</summary>
    internal Lock.Scope HoldFlushesForTest() => _flushLock.EnterScope();

    private void FlushInline(PendingAppend pending)
    {
        try
        {
            FlushOnce(pending);
        }
        catch (Exception e) when (IsWriteFailure(e))
        {
            Fault(e);
            ThrowIfFaulted();
            throw;
        }
    }

    private async Task EnqueueAsync(PendingAppend pending, CancellationToken cancellationToken)
    {
        try
        {
            await _queue.Writer.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            ThrowIfFaulted();
            throw new ObjectDisposedException(nameof(WriteAheadLog));
        }

        await pending.Task.ConfigureAwait(false);
    }

    private long CheckShape(WalGroupWrite write)
    {
        ArgumentNullException.ThrowIfNull(write);
        ArgumentNullException.ThrowIfNull(write.Entries);
        _ = GetGroup(write.GroupId);
        for (var i = 0; i < write.Entries.Count; i++)
        {
            if (WalRecord.StoredBytes(write.Entries[i].Data.Length) > _options.RecordBytesMax)
            {
                throw new ArgumentException(
                    $"Entry {write.Entries[i].Index} of group {write.GroupId} has {write.Entries[i].Data.Length} payload bytes; " +
                    $"a record may hold at most {_options.RecordBytesMax - WalRecord.HeaderBytes} (WalOptions.RecordBytesMax).",
                    nameof(write));
            }
        }

        return write.StoredBytes();
    }

    private void ThrowIfFaulted()
    {
        if (_fault is { } fault)
        {
            throw new IOException("The write-ahead log failed and accepts no more appends; restart the node (recovery will run).", fault);
        }
    }

    /// <summary>Reads an entry record back from its segment (entries older than the cache).</summary>
    void IWalEntryReader.ReadEntries(ulong groupId, ulong firstIndex, ReadOnlySpan<EntryLocation> locations, List<Entry> into)
    {
        var i = 0;
        while (i < locations.Length)
        {
            // A run: records in one segment, each after the previous one, spanning at most ReadBytesMax. The
            // records of other groups written in between are read too; one sequential read is still far cheaper
            // than a read and an allocation per entry. The entries' payloads are slices of the run's buffer.
            var start = (long)locations[i].Offset;
            var end = i + 1;
            while (end < locations.Length && locations[end].Segment == locations[i].Segment &&
                locations[end].Offset >= locations[end - 1].Offset + locations[end - 1].Length &&
                (long)locations[end].Offset + locations[end].Length - start <= _options.ReadBytesMax)
            {
                end++;
            }

            var segment = SegmentOf(locations[i].Segment);
            var buffer = new byte[locations[end - 1].Offset + locations[end - 1].Length - start];
            var read = ReadAt(segment, buffer, start);
            Interlocked.Increment(ref _segmentReads);
            for (var j = i; j < end; j++)
            {
                var location = locations[j];
                var at = (int)(location.Offset - start);
                into.Add(DecodeEntry(segment, buffer.AsMemory(at, Math.Max(0, Math.Min(location.Length, read - at))), groupId, firstIndex + (ulong)j, location));
            }

            i = end;
        }
    }

    private WalSegment SegmentOf(ulong sequence)
    {
        WalSegment? segment;
        lock (_segmentsLock)
        {
            _segments.TryGetValue(sequence, out segment);
        }

        Invariant.Check(segment is not null, "a live entry's segment is never deleted");
        return segment;
    }

    /// <summary>Reads into <paramref name="buffer"/> from <paramref name="offset"/>; returns the bytes read (short only at the end of the file).</summary>
    private static int ReadAt(WalSegment segment, byte[] buffer, long offset)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = RandomAccess.Read(segment.Handle, buffer.AsSpan(read), offset + read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return read;
    }

    /// <summary>Checks a record read back (CRC, kind, group, index, term) and returns its entry, a slice of <paramref name="record"/>.</summary>
    private Entry DecodeEntry(WalSegment segment, ReadOnlyMemory<byte> record, ulong groupId, ulong index, EntryLocation location)
    {
        if (!WalRecord.TryRead(record.Span, segment.Sequence, _options.RecordBytesMax, out var header, out var length) || length != location.Length ||
            header.Kind != WalRecordKind.Entry || header.GroupId != groupId || header.Index != index || header.Term != location.Term)
        {
            throw new WalCorruptionException(segment.Path, location.Offset,
                $"entry {index} of group {groupId} does not read back intact");
        }

        return new Entry(header.Term, header.Index, header.EntryType, record.Slice(WalRecord.HeaderBytes, length - WalRecord.HeaderBytes));
    }

    /// <summary>
    /// Makes segment <paramref name="sequence"/> from <paramref name="free"/> (renamed; its old records fail the
    /// new sequence's check, so nothing needs erasing) or, without one, as a new zero-filled file.
    /// </summary>
    private WalSegment MakeSegment(ulong sequence, (ulong Sequence, string Path)? free)
    {
        var path = Path.Combine(_options.Directory, WalFiles.SegmentName(sequence));
        if (free is { } reused)
        {
            WalFiles.RenameDurably(reused.Path, path);
        }
        else
        {
            WalFiles.CreateZeroFilled(path, _options.SegmentBytes);
        }

        return new WalSegment(sequence, path, WalFiles.OpenSegment(path), _options.SegmentBytes);
    }

    /// <summary>Hands the oldest free file, if any, to the one segment about to be made as <paramref name="sequence"/>.</summary>
    private (ulong Sequence, string Path)? TakeFree(ulong sequence)
    {
        if (_free.Count == 0)
        {
            return null;
        }

        (ulong Sequence, string Path)? free = _free[0];
        _free.RemoveAt(0);
        // Invariant: a file is only renamed to a higher sequence, so every record in it was sealed with a lower one.
        Invariant.Check(free is null || free.Value.Sequence < sequence);
        return free;
    }

    private ulong HighestFreeSequence() => _free.Count == 0 ? 0 : _free.Max(static f => f.Sequence);

    // The next segment is made in the background (recycled or zero-filled) so that rolling does not stall appends.
    // Its sequence is above every free file's too, which after a restart may be above the active segment's.
    private Task<WalSegment> StartSpare()
    {
        var sequence = Math.Max(_active.Sequence, HighestFreeSequence()) + 1;
        var free = TakeFree(sequence);
        return Task.Run(() => MakeSegment(sequence, free));
    }

    /// <summary>Stops the writer after it has written everything queued, and closes the files.</summary>
    public void Dispose()
    {
        _disposed = true;
        _queue.Writer.TryComplete();
        _writer.Join();
        _flushLock.Enter(); // Waits for an inline append in progress; later ones see _disposed.
        _flushLock.Exit();

        try
        {
            _spare?.GetAwaiter().GetResult().Dispose();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A spare that failed to be created (a full disk, a permission problem) was never used; nothing to close.
        }

        lock (_segmentsLock)
        {
            foreach (var segment in _segments.Values)
            {
                segment.Dispose();
            }

            _segments.Clear();
        }

        _syncedMark?.Dispose();
    }

    private static ReadOnlySpan<Entry> AsSpan(IReadOnlyList<Entry> entries, out Entry[]? rented)
    {
        rented = null;
        switch (entries)
        {
            case Entry[] array:
                return array;
            case List<Entry> list:
                return CollectionsMarshal.AsSpan(list);
            default:
                rented = ArrayPool<Entry>.Shared.Rent(entries.Count);
                for (var i = 0; i < entries.Count; i++)
                {
                    rented[i] = entries[i];
                }

                return rented.AsSpan(0, entries.Count);
        }
    }
}
