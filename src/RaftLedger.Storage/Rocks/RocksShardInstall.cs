using System.Buffers.Binary;
using RaftLedger.Common;
using RocksDbSharp;

namespace RaftLedger.Storage.Rocks;

/// <summary>Taking, checking and installing snapshots of one shard.</summary>
public static class RocksShardSnapshots
{
    /// <summary>Takes a consistent point-in-time view of the shard; applying may continue meanwhile.</summary>
    public static RocksShardSnapshot CreateSnapshot(this RocksShard shard)
    {
        ArgumentNullException.ThrowIfNull(shard);
        return new RocksShardSnapshot(shard);
    }

    /// <summary>Reads a whole snapshot stream and checks it, writing nothing.</summary>
    public static RocksSnapshotSummary Verify(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var reader = new RocksSnapshotReader(input);
        var (source, appliedIndex) = reader.ReadBegin();
        while (reader.ReadData())
        {
        }

        return new RocksSnapshotSummary(source, appliedIndex, reader.DataChunkCount, reader.RecordCount, -1);
    }

    /// <summary>
    /// Replaces the shard's whole state by the snapshot in <paramref name="input"/> (which may come from another
    /// shard id: records carry no shard prefix), and makes it durable before returning, so the host may then
    /// record the Raft snapshot and drop the log it covers.
    /// A seekable stream is verified completely first, so a corrupt one leaves the previous state untouched.
    /// A non-seekable stream is checked chunk by chunk as it is applied; a corrupt chunk then leaves the shard
    /// marked <see cref="RocksShard.IsInstalling"/> (unusable until a good snapshot is installed).
    /// Must not run concurrently with batches of the same shard.
    /// </summary>
    public static RocksSnapshotSummary InstallSnapshot(this RocksShard shard, Stream input)
    {
        ArgumentNullException.ThrowIfNull(shard);
        ArgumentNullException.ThrowIfNull(input);
        if (input.CanSeek)
        {
            var start = input.Position;
            try
            {
                Verify(input);
            }
            catch (RocksSnapshotCorruptException error)
            {
                throw new RocksSnapshotCorruptException(
                    $"Refused a snapshot for shard {shard.ShardId}: {error.Message} The shard's previous state is unchanged; " +
                    "discard this snapshot and request a new one from the leader.");
            }

            input.Position = start;
        }

        return Install(shard, input);
    }

    private static RocksSnapshotSummary Install(RocksShard shard, Stream input)
    {
        var reader = new RocksSnapshotReader(input);
        var started = false;
        try
        {
            var (source, appliedIndex) = reader.ReadBegin();
            Invariant.Check(appliedIndex > 0, "a snapshot covers at least one applied entry");
            using var batch = new WriteBatch();
            ClearAndMark(shard, batch);
            started = true;
            var keyBuffer = new byte[RocksLedgerLimits.TablePrefixBytes + RocksLedgerLimits.TableKeyBytesMax];
            while (reader.ReadData())
            {
                LoadChunk(shard, batch, reader.Payload, keyBuffer);
            }

            Finish(shard, batch, appliedIndex);
            return new RocksSnapshotSummary(source, appliedIndex, reader.DataChunkCount, reader.RecordCount, -1);
        }
        catch (RocksSnapshotCorruptException error) when (started)
        {
            throw new RocksSnapshotCorruptException(
                $"Refused a snapshot for shard {shard.ShardId}: {error.Message} The shard was partly overwritten and is " +
                "marked unusable (IsInstalling); install a good snapshot from the leader before serving it.");
        }
        catch (RocksSnapshotCorruptException error)
        {
            throw new RocksSnapshotCorruptException(
                $"Refused a snapshot for shard {shard.ShardId}: {error.Message} The shard's previous state is unchanged; " +
                "discard this snapshot and request a new one from the leader.");
        }
    }

    /// <summary>One batch: delete the shard's whole range and set the install marker, so a crash sees one or the other state.</summary>
    private static void ClearAndMark(RocksShard shard, WriteBatch batch)
    {
        shard.BeginInstall();
        var start = RocksKeys.ShardStart(shard.ShardId);
        var end = RocksKeys.ShardEnd(shard.ShardId);
        batch.DeleteRange(start, (ulong)start.Length, end, (ulong)end.Length);
        batch.Put(MetaKey(shard.ShardId, RocksKeys.MetaInstalling), new byte[] { 1 });
        shard.Database.Write(batch);
        batch.Clear();
    }

    private static void LoadChunk(RocksShard shard, WriteBatch batch, ReadOnlySpan<byte> payload, byte[] keyBuffer)
    {
        var offset = 0;
        while (offset < payload.Length)
        {
            var ok = RocksSnapshotRecords.TryRead(payload, offset, out var table, out var key, out var value, out offset);
            Invariant.Check(ok, "the reader checked every record of the chunk");
            var keyLength = RocksKeys.Write(keyBuffer, shard.ShardId, table, key);
            batch.Put(keyBuffer.AsSpan(0, keyLength), value);
        }

        shard.Database.Write(batch);
        batch.Clear();
    }

    private static void Finish(RocksShard shard, WriteBatch batch, ulong appliedIndex)
    {
        Span<byte> value = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64BigEndian(value, appliedIndex);
        batch.Put(MetaKey(shard.ShardId, RocksKeys.MetaAppliedIndex), value);
        batch.Delete(MetaKey(shard.ShardId, RocksKeys.MetaInstalling));
        shard.Database.Write(batch);
        batch.Clear();
        shard.EndInstall(appliedIndex);
        shard.Database.MakeDurable();
    }

    private static byte[] MetaKey(uint shardId, byte metaKey)
    {
        var key = new byte[RocksLedgerLimits.TablePrefixBytes + 1];
        RocksKeys.Write(key, shardId, RocksTable.Meta, [metaKey]);
        return key;
    }
}
