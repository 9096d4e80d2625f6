using System.Buffers.Binary;
using RaftLedger.Common;
using RocksDbSharp;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// A snapshot stream turned into one SST file that replaces a shard's whole state in a single RocksDB ingest. The file
/// holds a range deletion of the shard's key range, the shard's applied index and every record of the snapshot, under
/// the target shard's prefix. An ingested file's keys all get one sequence number, newer than everything in the
/// database, and a range deletion hides only older keys: so the ingest removes the old state and adds the new one in
/// one atomic step, with no install marker to clean up after a crash. Dispose deletes the file if it is still there.
/// </summary>
public sealed class RocksPreparedInstall : IDisposable
{
    internal RocksPreparedInstall(string path, uint shardId, RocksSnapshotSummary summary)
    {
        Path = path;
        ShardId = shardId;
        Summary = summary;
    }

    /// <summary>The SST file.</summary>
    public string Path { get; }

    /// <summary>The shard whose key range the file covers.</summary>
    public uint ShardId { get; }

    /// <summary>What the snapshot held (source shard, applied index, chunks, records).</summary>
    public RocksSnapshotSummary Summary { get; }

    public void Dispose() => File.Delete(Path);
}

/// <summary>Builds and ingests <see cref="RocksPreparedInstall"/> files.</summary>
public static class RocksSnapshotIngest
{
    /// <summary>
    /// Reads and checks a whole snapshot stream and writes it to a new SST file at <paramref name="sstPath"/> for
    /// <paramref name="shardId"/>. Touches no shard, so it may run on any thread while the shard is being applied to:
    /// this is the slow part of an install (seconds for a shard of millions of transfers), kept off the thread that
    /// applies. Throws <see cref="RocksSnapshotCorruptException"/> (and deletes the file) when the stream is corrupt.
    /// </summary>
    public static RocksPreparedInstall PrepareInstall(this RocksLedgerDatabase database, uint shardId, Stream input, string sstPath)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(input);
        var reader = new RocksSnapshotReader(input);
        var writer = database.CreateSstWriter(sstPath);
        try
        {
            var (source, appliedIndex) = reader.ReadBegin();
            Invariant.Check(appliedIndex > 0, "a snapshot covers at least one applied entry");
            var start = RocksKeys.ShardStart(shardId);
            var end = RocksKeys.ShardEnd(shardId);
            Native.Instance.rocksdb_sstfilewriter_delete_range(writer, start, (UIntPtr)start.Length, end, (UIntPtr)end.Length);
            WriteAppliedIndex(writer, shardId, appliedIndex);
            var keyBuffer = new byte[RocksLedgerLimits.TablePrefixBytes + RocksLedgerLimits.TableKeyBytesMax];
            var valueBuffer = new byte[RocksLedgerLimits.SnapshotChunkPayloadBytesMax];
            while (reader.ReadData())
            {
                WriteChunk(writer, shardId, reader.Payload, keyBuffer, valueBuffer);
            }

            Native.Instance.rocksdb_sstfilewriter_finish(writer);
            return new RocksPreparedInstall(sstPath, shardId, new RocksSnapshotSummary(source, appliedIndex, reader.DataChunkCount, reader.RecordCount, -1));
        }
        catch (RocksSnapshotCorruptException error)
        {
            File.Delete(sstPath);
            throw new RocksSnapshotCorruptException(
                $"Refused a snapshot for shard {shardId}: {error.Message} The shard's previous state is unchanged; " +
                "discard this snapshot and request a new one from the leader.");
        }
        catch
        {
            File.Delete(sstPath);
            throw;
        }
        finally
        {
            Native.Instance.rocksdb_sstfilewriter_destroy(writer);
        }
    }

    /// <summary>
    /// Replaces the shard's state by a prepared file, durably: one ingest (RocksDB first flushes the memtable if it holds
    /// keys of the shard, then syncs the file and its manifest record). No flush after it: one here flushed every other
    /// shard's writes on the node's scheduler loop (up to ~1 s under load) for nothing this shard needs. Must not run
    /// concurrently with batches of the same shard.
    /// </summary>
    public static RocksSnapshotSummary InstallPrepared(this RocksShard shard, RocksPreparedInstall prepared)
    {
        ArgumentNullException.ThrowIfNull(shard);
        ArgumentNullException.ThrowIfNull(prepared);
        Invariant.Check(prepared.ShardId == shard.ShardId, "a prepared install covers the key range of the shard it was prepared for");
        shard.BeginInstall();
        shard.Database.Ingest(prepared.Path);
        shard.EndInstall(prepared.Summary.AppliedIndex);
        Invariant.Check(shard.DurableAppliedIndex == prepared.Summary.AppliedIndex && !shard.IsInstalling, "an ingested snapshot is the shard's durable state");
        return prepared.Summary;
    }

    // The meta table sorts before every data table, so the applied index is the file's first point key.
    private static void WriteAppliedIndex(IntPtr writer, uint shardId, ulong appliedIndex)
    {
        var key = new byte[RocksLedgerLimits.TablePrefixBytes + 1];
        var keyLength = RocksKeys.Write(key, shardId, RocksTable.Meta, [RocksKeys.MetaAppliedIndex]);
        var value = new byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64BigEndian(value, appliedIndex);
        Native.Instance.rocksdb_sstfilewriter_put(writer, key, (UIntPtr)keyLength, value, (UIntPtr)value.Length);
    }

    // Snapshot records come in key order (RocksShardSnapshot reads the shard's range in order), as the writer requires.
    // Keys and values are staged in arrays: this project has no unsafe code. A record fits in one chunk's payload.
    private static void WriteChunk(IntPtr writer, uint shardId, ReadOnlySpan<byte> payload, byte[] keyBuffer, byte[] valueBuffer)
    {
        var offset = 0;
        while (offset < payload.Length)
        {
            var ok = RocksSnapshotRecords.TryRead(payload, offset, out var table, out var key, out var value, out offset);
            Invariant.Check(ok, "the reader checked every record of the chunk");
            var keyLength = RocksKeys.Write(keyBuffer, shardId, table, key);
            value.CopyTo(valueBuffer);
            Native.Instance.rocksdb_sstfilewriter_put(writer, keyBuffer, (UIntPtr)keyLength, valueBuffer, (UIntPtr)value.Length);
        }
    }
}
