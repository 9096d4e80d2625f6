using System.Buffers.Binary;
using System.IO.Hashing;
using RaftLedger.Common;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// A shard snapshot stream is a sequence of chunks, each <c>[header 24 bytes][payload]</c>. The header is
/// magic (u32), kind (u8), 3 zero bytes, sequence (u32), payload length (u32), and an XxHash3 checksum (u64) of
/// the first 16 header bytes and the payload, all little-endian. Chunk 0 is <see cref="RocksSnapshotChunkKind.Begin"/>,
/// the last is <see cref="RocksSnapshotChunkKind.End"/>, the ones between are data chunks of records
/// <c>[table u8][key length u16][value length u32][key][value]</c> in strictly increasing (table, key) order.
/// </summary>
public static class RocksSnapshotFormat
{
    /// <summary>"RLSC" little-endian: RaftLedger snapshot chunk.</summary>
    public const uint ChunkMagic = 0x43534C52;

    /// <summary>Records carry table keys as stored, so this moves with <see cref="RocksLedgerFormat.Version"/> (3: account key suffix; 4: the cross-shard expiry order).</summary>
    public const uint FormatVersion = 4;

    public const int ChunkHeaderBytes = 24;

    /// <summary>Bytes of the header covered by the checksum (everything before the checksum itself).</summary>
    public const int ChunkHeaderCheckedBytes = 16;

    /// <summary>Begin payload: format version (u32), source shard (u32), applied index (u64).</summary>
    public const int BeginPayloadBytes = 16;

    /// <summary>End payload: data chunk count (u32), record count (u64).</summary>
    public const int EndPayloadBytes = 12;

    /// <summary>Writes a chunk header for <paramref name="payload"/> into <paramref name="header"/>.</summary>
    public static void WriteChunkHeader(Span<byte> header, RocksSnapshotChunkKind kind, uint sequence, ReadOnlySpan<byte> payload)
    {
        Invariant.Check(header.Length == ChunkHeaderBytes);
        Invariant.Check(payload.Length <= RocksLedgerLimits.SnapshotChunkPayloadBytesMax);
        header.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(header, ChunkMagic);
        header[4] = (byte)kind;
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], (uint)payload.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], Checksum(header[..ChunkHeaderCheckedBytes], payload));
    }

    /// <summary>The checksum of a chunk: XxHash3 over the checked header bytes then the payload.</summary>
    public static ulong Checksum(ReadOnlySpan<byte> checkedHeader, ReadOnlySpan<byte> payload)
    {
        var hash = new XxHash3();
        hash.Append(checkedHeader);
        hash.Append(payload);
        return hash.GetCurrentHashAsUInt64();
    }

    /// <summary>Appends one record to <paramref name="payload"/> at <paramref name="offset"/>; returns the new offset.</summary>
    public static int WriteRecord(Span<byte> payload, int offset, RocksTable table, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        Invariant.Check(key.Length <= RocksLedgerLimits.TableKeyBytesMax);
        Invariant.Check(value.Length <= RocksLedgerLimits.ValueBytesMax);
        var record = payload[offset..];
        record[0] = (byte)table;
        BinaryPrimitives.WriteUInt16LittleEndian(record[1..], (ushort)key.Length);
        BinaryPrimitives.WriteInt32LittleEndian(record[3..], value.Length);
        key.CopyTo(record[RocksLedgerLimits.SnapshotRecordHeaderBytes..]);
        value.CopyTo(record[(RocksLedgerLimits.SnapshotRecordHeaderBytes + key.Length)..]);
        return offset + RocksLedgerLimits.SnapshotRecordHeaderBytes + key.Length + value.Length;
    }

    /// <summary>Bytes a record takes in a chunk.</summary>
    public static int RecordBytes(int keyLength, int valueLength) =>
        RocksLedgerLimits.SnapshotRecordHeaderBytes + keyLength + valueLength;
}

/// <summary>What a snapshot chunk holds.</summary>
public enum RocksSnapshotChunkKind : byte
{
    Begin = 1,
    Data = 2,
    End = 3,
}

/// <summary>What a written or installed snapshot contained.</summary>
public readonly record struct RocksSnapshotSummary(uint SourceShardId, ulong AppliedIndex, int DataChunkCount, long RecordCount, long Bytes);

/// <summary>
/// A snapshot stream failed verification (bad checksum, truncated, out of order, malformed). Infrastructure
/// failure: the snapshot must be discarded and fetched again.
/// </summary>
public sealed class RocksSnapshotCorruptException(string message) : Exception(message);
