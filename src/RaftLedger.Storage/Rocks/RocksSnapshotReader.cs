using System.Buffers.Binary;
using RaftLedger.Common;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// Reads a shard snapshot stream chunk by chunk and checks everything it can: magic, checksum, sequence, the
/// order of chunk kinds, record framing, key order, limits and the End totals. Every failure is a
/// <see cref="RocksSnapshotCorruptException"/> that names the chunk.
/// </summary>
internal sealed class RocksSnapshotReader
{
    private readonly Stream input;
    private readonly byte[] header = new byte[RocksSnapshotFormat.ChunkHeaderBytes];
    private readonly byte[] payload = new byte[RocksLedgerLimits.SnapshotChunkPayloadBytesMax];

    // The last record's table tag and key, to check that records arrive in strictly increasing order.
    private readonly byte[] lastKey = new byte[1 + RocksLedgerLimits.TableKeyBytesMax];
    private int lastKeyLength;
    private uint sequence;
    private int payloadLength;
    private bool ended;

    public RocksSnapshotReader(Stream input)
    {
        this.input = input;
    }

    public int DataChunkCount { get; private set; }

    public long RecordCount { get; private set; }

    /// <summary>Reads and checks the Begin chunk; returns (source shard, applied index).</summary>
    public (uint SourceShardId, ulong AppliedIndex) ReadBegin()
    {
        Invariant.Check(sequence == 0);
        var kind = ReadChunk();
        if (kind != RocksSnapshotChunkKind.Begin || payloadLength != RocksSnapshotFormat.BeginPayloadBytes)
        {
            throw Corrupt("the first chunk is not a well-formed Begin chunk");
        }

        var version = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        if (version != RocksSnapshotFormat.FormatVersion)
        {
            throw Corrupt($"format version {version} is not the supported version {RocksSnapshotFormat.FormatVersion}");
        }

        return (BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(4)), BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(8)));
    }

    /// <summary>
    /// Reads the next chunk. Returns true with a data chunk's records in <see cref="Payload"/>, or false after
    /// a checked End chunk (totals matched and nothing follows it).
    /// </summary>
    public bool ReadData()
    {
        Invariant.Check(sequence > 0 && !ended);
        var kind = ReadChunk();
        if (kind == RocksSnapshotChunkKind.Data)
        {
            CheckRecords();
            DataChunkCount++;
            return true;
        }

        if (kind != RocksSnapshotChunkKind.End || payloadLength != RocksSnapshotFormat.EndPayloadBytes)
        {
            throw Corrupt($"unexpected chunk kind {kind} after the Begin chunk");
        }

        CheckEnd();
        ended = true;
        return false;
    }

    /// <summary>The payload of the last data chunk read.</summary>
    public ReadOnlySpan<byte> Payload => payload.AsSpan(0, payloadLength);

    private RocksSnapshotChunkKind ReadChunk()
    {
        if (sequence >= RocksLedgerLimits.SnapshotChunksMax)
        {
            throw Corrupt($"more than {RocksLedgerLimits.SnapshotChunksMax} chunks");
        }

        ReadExactly(header, "chunk header");
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != RocksSnapshotFormat.ChunkMagic)
        {
            throw Corrupt("bad chunk magic (not a RaftLedger snapshot, or misaligned)");
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(12));
        if (length > RocksLedgerLimits.SnapshotChunkPayloadBytesMax)
        {
            throw Corrupt($"payload length {length} exceeds the limit {RocksLedgerLimits.SnapshotChunkPayloadBytesMax}");
        }

        payloadLength = (int)length;
        ReadExactly(payload.AsSpan(0, payloadLength), "chunk payload");
        var expected = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(16));
        var actual = RocksSnapshotFormat.Checksum(header.AsSpan(0, RocksSnapshotFormat.ChunkHeaderCheckedBytes), Payload);
        if (expected != actual)
        {
            throw Corrupt($"checksum mismatch (stored {expected:x16}, computed {actual:x16})");
        }

        // Checked only after the checksum: with a good checksum these fields are what the writer wrote.
        var chunkSequence = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
        if (chunkSequence != sequence)
        {
            throw Corrupt($"chunk sequence {chunkSequence} where {sequence} was expected (chunk lost or repeated)");
        }

        sequence++;
        return (RocksSnapshotChunkKind)header[4];
    }

    private void CheckRecords()
    {
        var offset = 0;
        while (offset < payloadLength)
        {
            offset = CheckRecord(offset);
            RecordCount++;
        }

        Invariant.Check(offset == payloadLength);
        if (payloadLength == 0)
        {
            throw Corrupt("empty data chunk");
        }
    }

    private int CheckRecord(int offset)
    {
        if (!RocksSnapshotRecords.TryRead(Payload, offset, out var table, out var key, out var value, out var next))
        {
            throw Corrupt($"malformed record at payload offset {offset}");
        }

        if (table == RocksTable.Meta || table > RocksKeys.TableMax || value.Length > RocksLedgerLimits.ValueBytesMax)
        {
            throw Corrupt($"record at payload offset {offset} has table {(byte)table} or value length {value.Length} out of range");
        }

        Span<byte> current = stackalloc byte[1 + RocksLedgerLimits.TableKeyBytesMax];
        current[0] = (byte)table;
        key.CopyTo(current[1..]);
        current = current[..(1 + key.Length)];
        if (RecordCount > 0 && current.SequenceCompareTo(lastKey.AsSpan(0, lastKeyLength)) <= 0)
        {
            throw Corrupt($"record at payload offset {offset} is out of key order");
        }

        current.CopyTo(lastKey);
        lastKeyLength = current.Length;
        return next;
    }

    private void CheckEnd()
    {
        var dataChunks = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        var records = BinaryPrimitives.ReadInt64LittleEndian(payload.AsSpan(4));
        if (dataChunks != DataChunkCount || records != RecordCount)
        {
            throw Corrupt($"End chunk counts {dataChunks} chunks / {records} records, but {DataChunkCount} / {RecordCount} arrived");
        }

        if (input.ReadByte() != -1)
        {
            throw Corrupt("bytes follow the End chunk");
        }
    }

    private void ReadExactly(Span<byte> destination, string what)
    {
        try
        {
            input.ReadExactly(destination);
        }
        catch (EndOfStreamException)
        {
            throw Corrupt($"stream ends inside a {what} (truncated snapshot)");
        }
    }

    private RocksSnapshotCorruptException Corrupt(string what) =>
        new($"Snapshot chunk {sequence} is corrupt: {what}.");
}

/// <summary>Parses the records of a data chunk payload.</summary>
public static class RocksSnapshotRecords
{
    /// <summary>Reads the record at <paramref name="offset"/>; false if it does not fit in the payload.</summary>
    public static bool TryRead(
        ReadOnlySpan<byte> payload,
        int offset,
        out RocksTable table,
        out ReadOnlySpan<byte> key,
        out ReadOnlySpan<byte> value,
        out int next)
    {
        table = default;
        key = default;
        value = default;
        next = offset;
        var rest = payload[offset..];
        if (rest.Length < RocksLedgerLimits.SnapshotRecordHeaderBytes)
        {
            return false;
        }

        var keyLength = BinaryPrimitives.ReadUInt16LittleEndian(rest[1..]);
        var valueLength = BinaryPrimitives.ReadInt32LittleEndian(rest[3..]);
        if (keyLength > RocksLedgerLimits.TableKeyBytesMax || valueLength < 0 ||
            (long)RocksLedgerLimits.SnapshotRecordHeaderBytes + keyLength + valueLength > rest.Length)
        {
            return false;
        }

        table = (RocksTable)rest[0];
        key = rest.Slice(RocksLedgerLimits.SnapshotRecordHeaderBytes, keyLength);
        value = rest.Slice(RocksLedgerLimits.SnapshotRecordHeaderBytes + keyLength, valueLength);
        next = offset + RocksSnapshotFormat.RecordBytes(keyLength, valueLength);
        return true;
    }
}
