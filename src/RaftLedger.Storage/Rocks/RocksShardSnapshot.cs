using System.Buffers.Binary;
using System.IO.Hashing;
using RaftLedger.Common;
using RocksDbSharp;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// A consistent, non-blocking point-in-time view of one shard (a RocksDB snapshot): applying may go on while
/// it is streamed out. Dispose it to release the RocksDB snapshot (which pins old versions of keys).
/// </summary>
public sealed class RocksShardSnapshot : IDisposable
{
    private readonly RocksShard shard;
    private readonly Snapshot snapshot;
    private bool disposed;

    internal RocksShardSnapshot(RocksShard shard)
    {
        Invariant.Check(!shard.IsInstalling, "cannot snapshot a shard whose snapshot install is incomplete");
        this.shard = shard;
        snapshot = shard.Database.Db.CreateSnapshot();
        AppliedIndex = ReadAppliedIndex();
    }

    /// <summary>The applied index of the state this snapshot holds: the Raft snapshot's index.</summary>
    public ulong AppliedIndex { get; }

    public uint ShardId => shard.ShardId;

    private ulong ReadAppliedIndex()
    {
        var key = new byte[RocksLedgerLimits.TablePrefixBytes + 1];
        var length = RocksKeys.Write(key, shard.ShardId, RocksTable.Meta, [RocksKeys.MetaAppliedIndex]);
        var readOptions = new ReadOptions().SetSnapshot(snapshot);
        var value = shard.Database.Db.Get(key, length, cf: null, readOptions: readOptions);
        GC.KeepAlive(readOptions);
        return value is null ? 0 : BinaryPrimitives.ReadUInt64BigEndian(value);
    }

    /// <summary>A cursor over the shard's data tables (every table but meta) as of this snapshot.</summary>
    internal RocksShardCursor NewDataCursor()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return new RocksShardCursor(
            shard.Database.Db,
            RocksKeys.TableStart(shard.ShardId, RocksTable.Meta + 1),
            RocksKeys.ShardEnd(shard.ShardId),
            startKey: default,
            snapshot);
    }

    /// <summary>Writes the snapshot to <paramref name="output"/> as checksummed chunks of bounded size.</summary>
    public RocksSnapshotSummary WriteTo(Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var writer = new ChunkWriter(output);
        Span<byte> begin = stackalloc byte[RocksSnapshotFormat.BeginPayloadBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(begin, RocksSnapshotFormat.FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(begin[4..], shard.ShardId);
        BinaryPrimitives.WriteUInt64LittleEndian(begin[8..], AppliedIndex);
        writer.Write(RocksSnapshotChunkKind.Begin, begin);

        var payload = new byte[RocksLedgerLimits.SnapshotChunkPayloadBytesMax];
        var offset = 0;
        var dataChunks = 0;
        long records = 0;
        using (var cursor = NewDataCursor())
        {
            while (cursor.MoveNext())
            {
                var table = RocksKeys.TableOf(cursor.RawKey);
                var key = cursor.Key;
                var value = cursor.Value;
                if (offset + RocksSnapshotFormat.RecordBytes(key.Length, value.Length) > payload.Length)
                {
                    writer.Write(RocksSnapshotChunkKind.Data, payload.AsSpan(0, offset));
                    dataChunks++;
                    offset = 0;
                }

                offset = RocksSnapshotFormat.WriteRecord(payload, offset, table, key, value);
                records++;
            }
        }

        if (offset > 0)
        {
            writer.Write(RocksSnapshotChunkKind.Data, payload.AsSpan(0, offset));
            dataChunks++;
        }

        Span<byte> end = stackalloc byte[RocksSnapshotFormat.EndPayloadBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(end, (uint)dataChunks);
        BinaryPrimitives.WriteInt64LittleEndian(end[4..], records);
        writer.Write(RocksSnapshotChunkKind.End, end);
        return new RocksSnapshotSummary(shard.ShardId, AppliedIndex, dataChunks, records, writer.BytesWritten);
    }

    /// <summary>
    /// A 128-bit hash of every data record (table, key, value) of the shard as of this snapshot, in key order.
    /// Equal states give equal values on any machine; it says nothing about the applied index.
    /// </summary>
    public UInt128 ContentFingerprint()
    {
        var hash = new XxHash128();
        Span<byte> header = stackalloc byte[RocksLedgerLimits.SnapshotRecordHeaderBytes];
        using var cursor = NewDataCursor();
        while (cursor.MoveNext())
        {
            var key = cursor.Key;
            var value = cursor.Value;
            RocksSnapshotFormat.WriteRecord(header, 0, RocksKeys.TableOf(cursor.RawKey), [], []);
            BinaryPrimitives.WriteUInt16LittleEndian(header[1..], (ushort)key.Length);
            BinaryPrimitives.WriteInt32LittleEndian(header[3..], value.Length);
            hash.Append(header);
            hash.Append(key);
            hash.Append(value);
        }

        return hash.GetCurrentHashAsUInt128();
    }

    public void Dispose()
    {
        if (!disposed)
        {
            disposed = true;
            snapshot.Dispose();
        }
    }

    private sealed class ChunkWriter(Stream output)
    {
        private readonly byte[] header = new byte[RocksSnapshotFormat.ChunkHeaderBytes];
        private uint sequence;

        public long BytesWritten { get; private set; }

        public void Write(RocksSnapshotChunkKind kind, ReadOnlySpan<byte> payload)
        {
            RocksSnapshotFormat.WriteChunkHeader(header, kind, sequence, payload);
            output.Write(header);
            output.Write(payload);
            sequence++;
            BytesWritten += header.Length + payload.Length;
        }
    }
}
