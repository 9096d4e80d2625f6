using System.Buffers.Binary;
using System.Runtime.InteropServices;
using RaftLedger.Common;
using RocksDbSharp;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// One shard's slice of the node's RocksDB: its applied index, reads, batches, cursors and snapshots.
/// Obtain it with <see cref="RocksLedgerDatabase.OpenShard"/>.
/// </summary>
public sealed class RocksShard
{
    private readonly Lock stateLock = new();

    // Invariant: durableAppliedIndex <= appliedIndex, both guarded by stateLock.
    // appliedIndex only grows, except when a snapshot install replaces the state (then generation grows).
    private ulong appliedIndex;
    private ulong durableAppliedIndex;
    private ulong generation;
    private bool installing;

    [ThreadStatic]
    private static byte[]? keyBufferPerThread;

    internal RocksShard(RocksLedgerDatabase database, uint shardId)
    {
        Database = database;
        ShardId = shardId;
        var onDisk = ReadMeta(RocksKeys.MetaAppliedIndex, out var value) ? BinaryPrimitives.ReadUInt64BigEndian(value) : 0;
        installing = ReadMeta(RocksKeys.MetaInstalling, out _);

        // What a fresh open reads is on disk: flushed SSTs (WAL disabled) or a RocksDB WAL that Open synced.
        appliedIndex = onDisk;
        durableAppliedIndex = onDisk;
    }

    public RocksLedgerDatabase Database { get; }

    public uint ShardId { get; }

    /// <summary>The Raft index of the last batch committed to this shard (durable or not).</summary>
    public ulong AppliedIndex
    {
        get
        {
            lock (stateLock)
            {
                return appliedIndex;
            }
        }
    }

    /// <summary>
    /// The highest applied index that is on disk: after any crash the shard reopens at this index or later.
    /// The host must not compact this shard's Raft WAL past it.
    /// </summary>
    public ulong DurableAppliedIndex
    {
        get
        {
            lock (stateLock)
            {
                return durableAppliedIndex;
            }
        }
    }

    /// <summary>
    /// True while a snapshot install is incomplete (also after a crash or a corrupt chunk during one): the
    /// shard's data is partial and must not be served. Installing a complete snapshot clears it.
    /// </summary>
    public bool IsInstalling
    {
        get
        {
            lock (stateLock)
            {
                return installing;
            }
        }
    }

    /// <summary>
    /// Changes whenever the shard's state is replaced wholesale (snapshot install, reset), so that caches
    /// built on the old state know to drop themselves.
    /// </summary>
    public ulong Generation => Volatile.Read(ref generation);

    /// <summary>A new reusable write batch for this shard.</summary>
    public RocksShardBatch NewBatch() => new(this);

    /// <summary>
    /// Reads the value of <paramref name="key"/> in <paramref name="table"/> into <paramref name="value"/>.
    /// Returns false when absent; <paramref name="length"/> is the value's length (the buffer must hold it).
    /// </summary>
    public bool TryGet(RocksTable table, ReadOnlySpan<byte> key, Span<byte> value, out int length)
    {
        var keyBuffer = keyBufferPerThread ??= new byte[RocksLedgerLimits.TablePrefixBytes + RocksLedgerLimits.TableKeyBytesMax];
        var keyLength = RocksKeys.Write(keyBuffer, ShardId, table, key);
        return TryGetRaw(keyBuffer, keyLength, value, out length);
    }

    /// <summary>
    /// Like <see cref="TryGet"/> with a caller-owned key buffer whose first <paramref name="keyLength"/> bytes
    /// are a full key (prefix included, see <see cref="RocksKeys.Write"/>): the allocation-free hot path.
    /// </summary>
    public bool TryGetRawKey(byte[] key, int keyLength, Span<byte> value, out int length)
    {
        Invariant.Check(RocksKeys.ShardOf(key) == ShardId, "key belongs to another shard");
        return TryGetRaw(key, keyLength, value, out length);
    }

    /// <summary>
    /// Reads <paramref name="count"/> keys of this shard at once with RocksDB's batched MultiGet, which shares one
    /// view of the database and probes each file's filters for all keys together instead of once per key.
    /// The keys are full keys (prefix included) of <paramref name="keyLength"/> bytes each, back to back in
    /// <paramref name="keys"/>, ascending. For key <c>i</c>, <paramref name="valueLengths"/>[i] is -1 when absent,
    /// else the value's length, and the value is at <paramref name="valueOffsets"/>[i] in <paramref name="values"/>
    /// (found values are packed back to back; the buffer grows when they do not fit).
    /// </summary>
    public void MultiGetRaw(byte[] keys, int keyLength, int count, Span<int> valueLengths, Span<int> valueOffsets, ref byte[] values)
    {
        Invariant.Check(count > 0 && keys.Length >= count * keyLength, "the key block holds every key");
        Invariant.Check(valueLengths.Length >= count && valueOffsets.Length >= count);
        var scratch = MultiGetScratch.For(count);
        var keysPin = GCHandle.Alloc(keys, GCHandleType.Pinned);
        var valuesPin = GCHandle.Alloc(scratch.Values, GCHandleType.Pinned);
        try
        {
            var first = keysPin.AddrOfPinnedObject();
            for (var i = 0; i < count; i++)
            {
                Invariant.Check(RocksKeys.ShardOf(keys.AsSpan(i * keyLength, keyLength)) == ShardId, "key belongs to another shard");
                scratch.Keys[i] = first + (i * keyLength);
                scratch.KeySizes[i] = (UIntPtr)keyLength;
            }

            Native.Instance.rocksdb_batched_multi_get_cf(
                Database.Db.Handle, Database.ReadOptions.Handle, Database.DefaultColumnFamily, (UIntPtr)count,
                scratch.Keys, scratch.KeySizes, valuesPin.AddrOfPinnedObject(), scratch.Errors, 1);
            var packed = 0;
            for (var i = 0; i < count; i++)
            {
                valueOffsets[i] = packed;
                valueLengths[i] = TakeMultiGetValue(scratch, i, ref values, packed);
                packed += Math.Max(valueLengths[i], 0);
            }
        }
        finally
        {
            FreeMultiGetAnswers(scratch, count);
            valuesPin.Free();
            keysPin.Free();
            GC.KeepAlive(Database); // Its RocksDb and ReadOptions free their native parts in finalizers; RocksDB got handles only.
        }
    }

    // After a throw part-way through, the answers not yet taken are still allocated: free them.
    private static void FreeMultiGetAnswers(MultiGetScratch scratch, int count)
    {
        var native = Native.Instance;
        for (var i = 0; i < count; i++)
        {
            if (scratch.Errors[i] != IntPtr.Zero)
            {
                native.rocksdb_free(scratch.Errors[i]);
                scratch.Errors[i] = IntPtr.Zero;
            }

            if (scratch.Values[i] != IntPtr.Zero)
            {
                native.rocksdb_pinnableslice_destroy(scratch.Values[i]);
                scratch.Values[i] = IntPtr.Zero;
            }
        }
    }

    // Copies out and frees one MultiGet answer at values[offset..] (-1: the key is absent). An error (I/O,
    // corruption) is an infrastructure failure and throws; the caller frees whatever is left.
    private static int TakeMultiGetValue(MultiGetScratch scratch, int index, ref byte[] values, int offset)
    {
        var native = Native.Instance;
        if (scratch.Errors[index] != IntPtr.Zero)
        {
            var message = Marshal.PtrToStringAnsi(scratch.Errors[index]);
            throw new IOException($"RocksDB MultiGet failed: {message}. The state directory may be damaged or the disk failing.");
        }

        var slice = scratch.Values[index];
        if (slice == IntPtr.Zero)
        {
            return -1;
        }

        var pointer = native.rocksdb_pinnableslice_value(slice, out var valueLength);
        var length = checked((int)valueLength);
        if (values.Length < offset + length)
        {
            Array.Resize(ref values, Math.Max(2 * values.Length, offset + length));
        }

        Marshal.Copy(pointer, values, offset, length);
        native.rocksdb_pinnableslice_destroy(slice);
        scratch.Values[index] = IntPtr.Zero;
        return length;
    }

    /// <summary>The pointer arrays a MultiGet call needs, per thread and grown to the largest call.</summary>
    private sealed class MultiGetScratch
    {
        [ThreadStatic]
        private static MultiGetScratch? perThread;

        private MultiGetScratch(int capacity)
        {
            Keys = new IntPtr[capacity];
            KeySizes = new UIntPtr[capacity];
            Values = new IntPtr[capacity];
            Errors = new IntPtr[capacity];
        }

        public IntPtr[] Keys { get; }

        public UIntPtr[] KeySizes { get; }

        public IntPtr[] Values { get; }

        public IntPtr[] Errors { get; }

        public static MultiGetScratch For(int count)
        {
            var scratch = perThread;
            if (scratch is null || scratch.Keys.Length < count)
            {
                scratch = new MultiGetScratch(Math.Max(count, 256));
                perThread = scratch;
            }

            return scratch;
        }
    }

    /// <summary>A cursor over the raw keys [<paramref name="lower"/>, <paramref name="upper"/>) of this shard (prefixes included).</summary>
    public RocksShardCursor NewRawCursor(byte[] lower, byte[] upper, bool reverse = false)
    {
        Invariant.Check(RocksKeys.ShardOf(lower) == ShardId && RocksKeys.ShardOf(upper) == ShardId, "range outside the shard");
        return new RocksShardCursor(Database.Db, lower, upper, startKey: default, snapshot: null, reverse);
    }

    /// <summary>True when <paramref name="key"/> exists in <paramref name="table"/>.</summary>
    public bool Contains(RocksTable table, ReadOnlySpan<byte> key) => TryGet(table, key, [], out _);

    private bool TryGetRaw(byte[] key, int keyLength, Span<byte> value, out int length)
    {
        var native = Native.Instance;
        var slice = native.rocksdb_get_pinned(Database.Db.Handle, Database.ReadOptions.Handle, key, (UIntPtr)keyLength);
        if (slice == IntPtr.Zero)
        {
            length = 0;
            return false;
        }

        try
        {
            var pointer = native.rocksdb_pinnableslice_value(slice, out var valueLength);
            length = checked((int)valueLength);
            if (value.Length > 0)
            {
                Invariant.Check(length <= value.Length, "value buffer too small for stored value");
                CopyNative(pointer, value[..length]);
            }

            return true;
        }
        finally
        {
            native.rocksdb_pinnableslice_destroy(slice);
            GC.KeepAlive(Database);
        }
    }

    private static void CopyNative(IntPtr source, Span<byte> destination)
    {
        // Marshal.Copy needs an array (this project has no unsafe code), so stage through a per-thread buffer.
        var staging = CopyBuffer(destination.Length);
        Marshal.Copy(source, staging, 0, destination.Length);
        staging.AsSpan(0, destination.Length).CopyTo(destination);
    }

    [ThreadStatic]
    private static byte[]? copyBufferPerThread;

    private static byte[] CopyBuffer(int length)
    {
        var buffer = copyBufferPerThread;
        if (buffer is null || buffer.Length < length)
        {
            buffer = new byte[Math.Max(length, 512)];
            copyBufferPerThread = buffer;
        }

        return buffer;
    }

    /// <summary>A cursor over one table of this shard, from <paramref name="startKey"/> (inclusive) to the table's end.</summary>
    public RocksShardCursor NewCursor(RocksTable table, ReadOnlySpan<byte> startKey = default) =>
        new(Database.Db, ShardId, table, startKey, snapshot: null);

    private bool ReadMeta(byte metaKey, out byte[] value)
    {
        var key = new byte[RocksLedgerLimits.TablePrefixBytes + 1];
        var length = RocksKeys.Write(key, ShardId, RocksTable.Meta, [metaKey]);
        value = new byte[sizeof(ulong)];
        return TryGetRaw(key, length, value, out _);
    }

    /// <summary>
    /// Writes a batch and advances the applied index; the batch holds the applied-index key already.
    /// <paramref name="newAppliedIndex"/> 0 means the batch carries no index and the applied index stays.
    /// </summary>
    internal void CommitBatch(WriteBatch batch, ulong newAppliedIndex)
    {
        lock (stateLock)
        {
            Invariant.Check(!installing, "shard is being installed from a snapshot; finish or redo the install first");
            Invariant.Check(newAppliedIndex == 0 || newAppliedIndex > appliedIndex, "applied index must grow with every batch");
        }

        Database.Write(batch);
        if (newAppliedIndex != 0)
        {
            lock (stateLock)
            {
                appliedIndex = newAppliedIndex;
            }
        }
    }

    /// <summary>
    /// Deletes the shard's whole range, applied index included, in one batch: the shard becomes empty at
    /// applied index 0. Until the next <see cref="RocksLedgerDatabase.MakeDurable"/> a crash may bring back the
    /// old state, so the durable applied index drops to 0 (nothing of the new state is durable yet).
    /// </summary>
    internal void ResetState()
    {
        using var batch = new WriteBatch();
        var start = RocksKeys.ShardStart(ShardId);
        var end = RocksKeys.ShardEnd(ShardId);
        batch.DeleteRange(start, (ulong)start.Length, end, (ulong)end.Length);
        lock (stateLock)
        {
            Invariant.Check(!installing, "shard is being installed from a snapshot; finish or redo the install first");
            generation++;
            appliedIndex = 0;
            durableAppliedIndex = 0;
        }

        Database.Write(batch);
    }

    internal (ulong AppliedIndex, ulong Generation) CaptureApplied()
    {
        lock (stateLock)
        {
            return (appliedIndex, generation);
        }
    }

    internal void MarkDurable(ulong capturedAppliedIndex, ulong capturedGeneration)
    {
        lock (stateLock)
        {
            // An install since the capture replaced the state; the capture says nothing about the new state.
            if (capturedGeneration != generation || installing)
            {
                return;
            }

            Invariant.Check(capturedAppliedIndex <= appliedIndex);
            durableAppliedIndex = Math.Max(durableAppliedIndex, capturedAppliedIndex);
        }
    }

    /// <summary>Starts an install: the state is about to be cleared; nothing of it is durable any more.</summary>
    internal void BeginInstall()
    {
        lock (stateLock)
        {
            installing = true;
            generation++;
            appliedIndex = 0;
            durableAppliedIndex = 0;
        }
    }

    /// <summary>
    /// Ends an install whose file has been ingested. An ingest is durable when it returns (RocksDB syncs the file and its
    /// manifest record), so the installed state is the shard's durable state without a flush.
    /// </summary>
    internal void EndInstall(ulong installedAppliedIndex)
    {
        lock (stateLock)
        {
            Invariant.Check(installing);
            installing = false;
            generation++;
            appliedIndex = installedAppliedIndex;
            durableAppliedIndex = installedAppliedIndex;
        }
    }
}
