using System.Buffers;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Storage.Wal;

// The writer thread: group commit, validation against what it has accepted, compaction.
public sealed partial class WriteAheadLog
{
    // Set by the queue's continuation when an append arrives while the writer sleeps; no spinning (see WaitForAppend).
    // Never disposed: it holds no OS handle (WaitHandle is never read), and a late Set must not meet a disposed event.
    private readonly ManualResetEventSlim _appendArrived = new(initialState: false, spinCount: 0);
    private Action? _signalAppendArrived;

    private void WriterLoop()
    {
        try
        {
            while (_checkpoints.Count > 0 || SpinForAppend() || WaitForAppend())
            {
                lock (_flushLock)
                {
                    FlushOnce(inline: null);
                    if (_compactionDue)
                    {
                        Compact();
                    }
                }
            }
        }
        catch (Exception e) when (IsWriteFailure(e))
        {
            Fault(e);
        }
    }

    private static bool IsWriteFailure(Exception e) =>
        e is IOException or UnauthorizedAccessException or InvariantViolationException or ObjectDisposedException;

    /// <summary>
    /// One write and one fdatasync: of <paramref name="inline"/> alone (a caller's append written on its own
    /// thread), or of the queued appends and due checkpoints. Caller holds <see cref="_flushLock"/>.
    /// </summary>
    private void FlushOnce(PendingAppend? inline)
    {
        if (_active.CapacityBytes - _writePosition < _options.FlushBytesMax)
        {
            Roll();
        }

        _batch.Clear();
        _flushLocations.Clear();
        if (inline is null)
        {
            GatherConcurrentAppends();
        }

        var used = inline is null ? EncodeFlush() : EncodeInline(inline);
        if (used > 0)
        {
            WriteAndSync(used);
        }

        ApplyAndComplete();
    }

    /// <summary>
    /// Sleeps until an append is queued or the queue completes (false). Blocking on the wait's Task instead spun
    /// first (Task.Wait's spin phase: sched_yield and Sleep(0/1)), about 3 % of the nodes' CPU on this 2-core
    /// machine where three nodes share the cores (docs/PERFORMANCE.md, "Profile and fixes (fifth session)").
    /// </summary>
    private bool WaitForAppend()
    {
        _appendArrived.Reset();
        var wait = _queue.Reader.WaitToReadAsync();
        if (!wait.IsCompleted)
        {
            wait.GetAwaiter().UnsafeOnCompleted(_signalAppendArrived ??= _appendArrived.Set);
            _appendArrived.Wait();
        }

        return wait.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Polls the queue for up to <see cref="WalOptions.IdleSpinMicroseconds"/> before the writer sleeps: a
    /// sleeping writer costs a futex wake-up (tens of microseconds) on the next append, which a lone Raft
    /// group pays on every Ready.
    /// </summary>
    private bool SpinForAppend()
    {
        if (_options.IdleSpinMicroseconds == 0)
        {
            return false;
        }

        var deadline = System.Diagnostics.Stopwatch.GetTimestamp() + (_options.IdleSpinMicroseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000);
        var spinner = default(SpinWait);
        while (System.Diagnostics.Stopwatch.GetTimestamp() < deadline)
        {
            if (_queue.Reader.TryPeek(out _))
            {
                return true;
            }

            // SpinOnce(-1) never sleeps: yielding the core is fine, a Sleep(1) would cost a millisecond.
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        return false;
    }

    /// <summary>
    /// Waits up to <see cref="WalOptions.GroupCommitGatherMicroseconds"/> for more appends when the previous flush
    /// served several (see the option's default for why), ending early once none arrived for a quarter of it.
    /// Spins with yields rather than sleeping: a sleep is at least a millisecond, several fdatasyncs.
    /// </summary>
    private void GatherConcurrentAppends()
    {
        if (_options.GroupCommitGatherMicroseconds == 0 || _lastFlushAppends < 2)
        {
            return;
        }

        var ticksPerMicrosecond = System.Diagnostics.Stopwatch.Frequency / 1_000_000.0;
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var deadline = start + (long)(_options.GroupCommitGatherMicroseconds * ticksPerMicrosecond);
        var quietTicks = (long)(_options.GroupCommitGatherMicroseconds * ticksPerMicrosecond / 4);
        var seen = _queue.Reader.Count;
        var lastArrival = start;
        var spinner = default(SpinWait);
        while (seen < _options.QueueLengthMax)
        {
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            var queued = _queue.Reader.Count;
            if (queued != seen)
            {
                seen = queued;
                lastArrival = now;
            }

            if (now >= deadline || now - lastArrival >= quietTicks)
            {
                return;
            }

            spinner.SpinOnce(sleep1Threshold: -1);
        }
    }

    private int EncodeFlush()
    {
        var used = 0;
        var lastRecord = -1;
        // A checkpoint is taken now, not when compaction asked for it: everything before this flush is
        // applied, so it is the group's current log and no later append can be overtaken by it.
        while (_checkpoints.TryPeek(out var groupId))
        {
            var write = _groups[groupId].Checkpoint();
            var bytes = write.StoredBytes();
            if (used > 0 && used + bytes > _options.FlushBytesMax)
            {
                break;
            }

            _checkpoints.Dequeue();
            if (bytes > _options.CompactionRewriteBytesMax)
            {
                _checkpointing.Remove(groupId); // Grew meanwhile: the next compaction reports it instead.
                continue;
            }

            var checkpoint = new PendingAppend([write], bytes, isCheckpoint: true);
            _batch.Add(checkpoint);
            used = Encode(checkpoint, used, ref lastRecord);
        }

        while (_queue.Reader.TryPeek(out var next) && (used == 0 || used + next.StoredBytes <= _options.FlushBytesMax))
        {
            _queue.Reader.TryRead(out var pending);
            Invariant.Check(ReferenceEquals(pending, next), "single reader");
            _batch.Add(pending);
            pending.Rejection = Validate(pending.Writes);
            if (pending.Rejection is null)
            {
                used = Encode(pending, used, ref lastRecord);
            }
        }

        if (lastRecord >= 0)
        {
            WalRecord.AddFlags(_flushBuffer.AsSpan(lastRecord), _active.Sequence, WalRecord.FlagEndOfFlush);
        }

        Invariant.Check(used <= _options.FlushBytesMax);
        return used;
    }

    private int EncodeInline(PendingAppend inline)
    {
        var lastRecord = -1;
        _batch.Add(inline);
        inline.Rejection = Validate(inline.Writes);
        var used = inline.Rejection is null ? Encode(inline, 0, ref lastRecord) : 0;
        if (lastRecord >= 0)
        {
            WalRecord.AddFlags(_flushBuffer.AsSpan(lastRecord), _active.Sequence, WalRecord.FlagEndOfFlush);
        }

        return used;
    }

    private void WriteAndSync(int used)
    {
        RandomAccess.Write(_active.Handle, _flushBuffer.AsSpan(0, used), _writePosition);
        WalFiles.SyncData(_active.Handle);
        _writePosition += used;
        _syncedMark?.Update(_active.Sequence, _writePosition);
        _nextFlushSequence++;
        Interlocked.Increment(ref _flushes);
        Interlocked.Add(ref _flushedBytes, used);
    }

    private int Encode(PendingAppend pending, int used, ref int lastRecord)
    {
        pending.LocationStart = _flushLocations.Count;
        var start = used;
        var lastOfAppend = -1;
        foreach (var write in pending.Writes)
        {
            var group = _groups[write.GroupId];
            if (write.Snapshot is { } snapshot)
            {
                lastOfAppend = used;
                used += EncodeSnapshot(write.GroupId, snapshot, used);
                group.Writer = group.Writer with
                {
                    SnapshotIndex = snapshot.Index,
                    LastIndex = LastAfterSnapshot(group, group.Writer.LastIndex, snapshot),
                };
            }

            for (var i = 0; i < write.Entries.Count; i++)
            {
                var entry = write.Entries[i];
                var header = new WalRecordHeader(WalRecordKind.Entry, 0, entry.Type, _nextFlushSequence, write.GroupId, entry.Term, entry.Index);
                lastOfAppend = used;
                var stored = WalRecord.Write(_flushBuffer.AsSpan(used), _active.Sequence, header, entry.Data.Span);
                _flushLocations.Add(new EntryLocation(entry.Term, _active.Sequence, checked((int)(_writePosition + used)), WalRecord.HeaderBytes + entry.Data.Length));
                used += stored;
            }

            if (write.Entries.Count > 0)
            {
                group.Writer = group.Writer with { LastIndex = write.Entries[^1].Index };
            }

            if (write.HardState is { } state)
            {
                lastOfAppend = used;
                used += EncodeHardState(write.GroupId, state, used);
                group.Writer = group.Writer with { Term = state.Term, Commit = state.Commit };
            }
        }

        if (lastOfAppend >= 0)
        {
            WalRecord.AddFlags(_flushBuffer.AsSpan(lastOfAppend), _active.Sequence, WalRecord.FlagEndOfAppend);
            lastRecord = lastOfAppend;
        }

        Invariant.Check(used - start == pending.StoredBytes, "encoded size matches the size checked at append");
        return used;
    }

    private int EncodeSnapshot(ulong groupId, SnapshotMetadata snapshot, int at)
    {
        var payloadBytes = WalRecord.SnapshotPayloadBytes(snapshot.ConfState);
        var payload = ArrayPool<byte>.Shared.Rent(payloadBytes);
        try
        {
            WalRecord.WriteConfState(payload, snapshot.ConfState);
            var header = new WalRecordHeader(WalRecordKind.Snapshot, 0, EntryType.Normal, _nextFlushSequence, groupId, snapshot.Term, snapshot.Index);
            return WalRecord.Write(_flushBuffer.AsSpan(at), _active.Sequence, header, payload.AsSpan(0, payloadBytes));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload);
        }
    }

    private int EncodeHardState(ulong groupId, HardState state, int at)
    {
        Span<byte> payload = stackalloc byte[WalRecord.HardStatePayloadBytes];
        WalRecord.WriteHardState(payload, state);
        var header = new WalRecordHeader(WalRecordKind.HardState, 0, EntryType.Normal, _nextFlushSequence, groupId, state.Term, 0);
        return WalRecord.Write(_flushBuffer.AsSpan(at), _active.Sequence, header, payload);
    }

    private void ApplyAndComplete()
    {
        _lastFlushAppends = 0;
        foreach (var pending in _batch)
        {
            if (pending.Rejection is { } rejection)
            {
                pending.Fail(rejection);
                continue;
            }

            var location = pending.LocationStart;
            foreach (var write in pending.Writes)
            {
                location = Apply(write, location);
                if (pending.IsCheckpoint)
                {
                    _checkpointing.Remove(write.GroupId);
                    _compactionDue = true;
                }
            }

            if (!pending.IsCheckpoint)
            {
                Interlocked.Increment(ref _appends);
                _lastFlushAppends++;
            }

            pending.Complete();
        }

        _batch.Clear();
    }

    private int Apply(WalGroupWrite write, int location)
    {
        var group = _groups[write.GroupId];
        _active.Groups.Add(write.GroupId);
        if (write.Snapshot is { } snapshot)
        {
            group.ApplySnapshot(snapshot, _active.Sequence);
            _compactionDue = true;
        }

        if (write.Entries.Count > 0)
        {
            var entries = AsSpan(write.Entries, out var rented);
            group.ApplyEntries(entries, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_flushLocations).Slice(location, entries.Length), cache: true);
            location += entries.Length;
            if (rented is not null)
            {
                ArrayPool<Entry>.Shared.Return(rented, clearArray: true);
            }
        }

        if (write.HardState is { } state)
        {
            group.ApplyHardState(state, _active.Sequence);
        }

        return location;
    }

    private void Roll()
    {
        // The compaction after the previous roll started the spare: a fresh segment holds at least two flushes
        // (WalOptions.Validate) and an inline append waits while compaction is due. Should none exist, make it now.
        var next = (_spare ?? StartSpare()).GetAwaiter().GetResult();
        lock (_segmentsLock)
        {
            _segments.Add(next.Sequence, next);
        }

        _active = next;
        _writePosition = 0;
        // Every write to the old segment was followed by its fdatasync, so rolling leaves it durable whole.
        _syncedMark?.Update(_active.Sequence, 0);
        // The next spare waits for the compaction this roll makes due: it may free the oldest segment to recycle.
        _spare = null;
        _compactionDue = true;
    }

    private void Fault(Exception error)
    {
        _options.Log($"WAL writer stopped: {error.Message}. Pending appends fail; restart the node to recover.");
        _fault = error;
        _queue.Writer.TryComplete(error);
        var failure = new IOException("The write-ahead log failed before this append was durable; restart the node.", error);
        foreach (var pending in _batch)
        {
            pending.Fail(failure);
        }

        _checkpoints.Clear();
        while (_queue.Reader.TryRead(out var pending))
        {
            pending.Fail(failure);
        }
    }
}
