using System.Buffers.Binary;
using RaftLedger.Common;
using RocksDbSharp;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// The writes of one apply step of one shard, committed atomically together with the shard's new applied
/// index (the applied index is written in the same RocksDB WriteBatch as the state it describes, so after a
/// crash the two always agree). Reusable: <see cref="Commit"/> clears it.
/// </summary>
public sealed class RocksShardBatch : IDisposable
{
    private readonly RocksShard shard;
    private readonly WriteBatchRep batch = new();
    private readonly byte[] keyBuffer = new byte[RocksLedgerLimits.TablePrefixBytes + RocksLedgerLimits.TableKeyBytesMax];

    internal RocksShardBatch(RocksShard shard)
    {
        this.shard = shard;
    }

    /// <summary>Number of puts and deletes staged so far.</summary>
    public int Count => batch.Count;

    /// <summary>Stages <paramref name="value"/> under <paramref name="key"/> in <paramref name="table"/>.</summary>
    public void Put(RocksTable table, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        Invariant.Check(table != RocksTable.Meta, "the meta table is written by the batch itself");
        Invariant.Check(value.Length <= RocksLedgerLimits.ValueBytesMax);
        var keyLength = RocksKeys.Write(keyBuffer, shard.ShardId, table, key);
        batch.Put(keyBuffer.AsSpan(0, keyLength), value);
    }

    /// <summary>Stages the deletion of <paramref name="key"/> from <paramref name="table"/>.</summary>
    public void Delete(RocksTable table, ReadOnlySpan<byte> key)
    {
        Invariant.Check(table != RocksTable.Meta, "the meta table is written by the batch itself");
        var keyLength = RocksKeys.Write(keyBuffer, shard.ShardId, table, key);
        batch.Delete(keyBuffer.AsSpan(0, keyLength));
    }

    /// <summary>
    /// Writes everything staged plus the applied index <paramref name="appliedIndex"/> in one atomic
    /// WriteBatch (not synced: see <see cref="RocksLedgerDatabase"/>), then clears the batch for reuse.
    /// </summary>
    public void Commit(ulong appliedIndex)
    {
        Invariant.Check(appliedIndex > 0, "index 0 is before the first Raft entry");
        PutAppliedIndex(appliedIndex);
        try
        {
            using var native = batch.ToNative();
            shard.CommitBatch(native, appliedIndex);
        }
        finally
        {
            batch.Clear();
        }
    }

    /// <summary>
    /// Writes everything staged atomically but leaves the applied index as it is: for writes that do not come
    /// from the Raft log (the ledger's own snapshot restore). Raft-driven writes use <see cref="Commit"/>.
    /// </summary>
    public void CommitWithoutIndex()
    {
        try
        {
            using var native = batch.ToNative();
            shard.CommitBatch(native, newAppliedIndex: 0);
        }
        finally
        {
            batch.Clear();
        }
    }

    /// <summary>Drops everything staged.</summary>
    public void Clear() => batch.Clear();

    private void PutAppliedIndex(ulong appliedIndex)
    {
        Span<byte> value = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64BigEndian(value, appliedIndex);
        var keyLength = RocksKeys.Write(keyBuffer, shard.ShardId, RocksTable.Meta, [RocksKeys.MetaAppliedIndex]);
        batch.Put(keyBuffer.AsSpan(0, keyLength), value);
    }

    public void Dispose()
    {
        // Nothing native is held between commits: each commit's native batch is disposed when written.
    }
}
