using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Storage.Wal;

/// <summary>What a record says.</summary>
public enum WalRecordKind : byte
{
    /// <summary>One log entry of one group; a later record for the same index replaces it and everything after.</summary>
    Entry = 1,

    /// <summary>A group's hard state (term in the header, vote and commit in the payload).</summary>
    HardState = 2,

    /// <summary>A group's snapshot marker: entries up to the index are no longer in this log.</summary>
    Snapshot = 3,
}

/// <summary>
/// Record framing. Every record starts on an 8-byte boundary and is laid out little-endian as:
/// <code>
///  0 u32 crc32c of bytes [4, length)     16 u64 flush sequence number
///  4 u32 length (header + payload)       24 u64 group id
///  8 u16 magic "WL"                      32 u64 term
/// 10 u8  kind, 11 u8 flags               40 u64 index (0 for hard state)
/// 12 u8  entry type, 13..15 zero         48 payload
/// </code>
/// The flush sequence number increases by one per fdatasync; recovery uses it to tell a torn tail
/// (nothing from a later flush exists) from lost or corrupt data (a later flush exists after the damage).
/// Flags mark the last record of one append (appends are atomic) and of one flush.
/// <para>
/// The CRC also covers the sequence number of the segment the record is written to (as 8 little-endian bytes
/// before byte 4; they are not stored). Segment files are recycled under a higher sequence, so the records of a
/// file's earlier life fail the check and end a scan as zeros would. For two sequences below 2^32 the difference
/// is a burst of at most 32 bits, which CRC-32C always detects: a stale record can never pass, not just rarely.
/// </para>
/// </summary>
public static class WalRecord
{
    /// <summary>Size of the fixed header.</summary>
    public const int HeaderBytes = 48;

    /// <summary>Records start at multiples of this, so a scan can look for headers cheaply.</summary>
    public const int AlignmentBytes = 8;

    /// <summary>Marks a header; with the kind and length checks it rejects almost all garbage before the CRC.</summary>
    public const ushort Magic = 0x4C57;

    /// <summary>Set on the last record of one append: records of an append without it are discarded.</summary>
    public const byte FlagEndOfAppend = 1;

    /// <summary>Set on the last record of one flush (one fdatasync).</summary>
    public const byte FlagEndOfFlush = 2;

    /// <summary>Payload bytes of a hard-state record: vote and commit.</summary>
    public const int HardStatePayloadBytes = 16;

    /// <summary>Bytes a record of <paramref name="payloadBytes"/> occupies on disk, padding included.</summary>
    public static int StoredBytes(int payloadBytes) => Align(HeaderBytes + payloadBytes);

    /// <summary>Rounds up to the record alignment.</summary>
    public static int Align(int bytes) => (bytes + AlignmentBytes - 1) & ~(AlignmentBytes - 1);

    /// <summary>Payload size of a snapshot marker for this membership.</summary>
    public static int SnapshotPayloadBytes(ConfState conf) =>
        1 + (4 * 4) + (8 * (conf.Voters.Count + conf.Learners.Count + conf.VotersOutgoing.Count + conf.LearnersNext.Count));

    /// <summary>
    /// Writes a record for segment <paramref name="segmentSequence"/> into <paramref name="into"/> (which must hold
    /// <see cref="StoredBytes"/>) and returns its stored size.
    /// </summary>
    public static int Write(Span<byte> into, ulong segmentSequence, in WalRecordHeader header, ReadOnlySpan<byte> payload)
    {
        var length = HeaderBytes + payload.Length;
        var stored = Align(length);
        Invariant.Check(into.Length >= stored);
        Invariant.Check(header.Kind is WalRecordKind.Entry or WalRecordKind.HardState or WalRecordKind.Snapshot);
        BinaryPrimitives.WriteUInt32LittleEndian(into[4..], (uint)length);
        BinaryPrimitives.WriteUInt16LittleEndian(into[8..], Magic);
        into[10] = (byte)header.Kind;
        into[11] = header.Flags;
        into[12] = (byte)header.EntryType;
        into[13..16].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(into[16..], header.FlushSequence);
        BinaryPrimitives.WriteUInt64LittleEndian(into[24..], header.GroupId);
        BinaryPrimitives.WriteUInt64LittleEndian(into[32..], header.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(into[40..], header.Index);
        payload.CopyTo(into[HeaderBytes..]);
        into[length..stored].Clear();
        Seal(into[..length], segmentSequence);
        return stored;
    }

    /// <summary>Adds flags to a record written for segment <paramref name="segmentSequence"/> and recomputes its CRC.</summary>
    public static void AddFlags(Span<byte> record, ulong segmentSequence, byte flags)
    {
        var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(record[4..]);
        record[11] |= flags;
        Seal(record[..length], segmentSequence);
    }

    private static void Seal(Span<byte> record, ulong segmentSequence) =>
        BinaryPrimitives.WriteUInt32LittleEndian(record, Crc32C.Compute(segmentSequence, record[4..]));

    /// <summary>
    /// Parses the record at the start of <paramref name="data"/>, read from segment <paramref name="segmentSequence"/>.
    /// Returns false for anything that is not a whole record no longer than <paramref name="recordBytesMax"/> and
    /// checksummed for this segment (zeros, garbage, a torn write, a record of the file's earlier life).
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> data, ulong segmentSequence, int recordBytesMax, out WalRecordHeader header, out int length)
    {
        header = default;
        length = 0;
        if (data.Length < HeaderBytes || BinaryPrimitives.ReadUInt16LittleEndian(data[8..]) != Magic)
        {
            return false;
        }

        var declared = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
        var kind = (WalRecordKind)data[10];
        if (declared < HeaderBytes || declared > (uint)recordBytesMax || declared > (uint)data.Length ||
            kind is not (WalRecordKind.Entry or WalRecordKind.HardState or WalRecordKind.Snapshot))
        {
            return false;
        }

        length = (int)declared;
        if (Crc32C.Compute(segmentSequence, data[4..length]) != BinaryPrimitives.ReadUInt32LittleEndian(data))
        {
            length = 0;
            return false;
        }

        header = new WalRecordHeader(
            kind, data[11], (EntryType)data[12],
            BinaryPrimitives.ReadUInt64LittleEndian(data[16..]),
            BinaryPrimitives.ReadUInt64LittleEndian(data[24..]),
            BinaryPrimitives.ReadUInt64LittleEndian(data[32..]),
            BinaryPrimitives.ReadUInt64LittleEndian(data[40..]));
        return true;
    }

    /// <summary>Encodes vote and commit for a hard-state record (the term travels in the header).</summary>
    public static void WriteHardState(Span<byte> into, HardState state)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(into, state.Vote);
        BinaryPrimitives.WriteUInt64LittleEndian(into[8..], state.Commit);
    }

    /// <summary>Decodes a hard-state record's payload.</summary>
    public static HardState ReadHardState(ulong term, ReadOnlySpan<byte> payload) =>
        new(term, BinaryPrimitives.ReadUInt64LittleEndian(payload), BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]));

    /// <summary>Encodes a snapshot marker's membership; returns the bytes written.</summary>
    public static int WriteConfState(Span<byte> into, ConfState conf)
    {
        into[0] = conf.AutoLeave ? (byte)1 : (byte)0;
        var at = 1;
        foreach (var list in (ReadOnlySpan<IReadOnlyList<ulong>>)[conf.Voters, conf.Learners, conf.VotersOutgoing, conf.LearnersNext])
        {
            BinaryPrimitives.WriteUInt32LittleEndian(into[at..], (uint)list.Count);
            at += 4;
            for (var i = 0; i < list.Count; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(into[at..], list[i]);
                at += 8;
            }
        }

        Invariant.Check(at == SnapshotPayloadBytes(conf));
        return at;
    }

    /// <summary>Decodes a snapshot marker's membership; throws <see cref="FormatException"/> if it does not parse.</summary>
    public static ConfState ReadConfState(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 17)
        {
            throw new FormatException("snapshot marker payload too short");
        }

        var autoLeave = payload[0] == 1;
        var at = 1;
        var lists = new ulong[4][];
        for (var l = 0; l < 4; l++)
        {
            var count = (int)BinaryPrimitives.ReadUInt32LittleEndian(payload[at..]);
            at += 4;
            if (count < 0 || payload.Length - at < count * 8L)
            {
                throw new FormatException("snapshot marker membership list overruns the payload");
            }

            lists[l] = new ulong[count];
            for (var i = 0; i < count; i++, at += 8)
            {
                lists[l][i] = BinaryPrimitives.ReadUInt64LittleEndian(payload[at..]);
            }
        }

        return new ConfState(lists[0], lists[1], lists[2], lists[3], autoLeave);
    }
}

/// <summary>The fixed fields of a record.</summary>
public readonly record struct WalRecordHeader(
    WalRecordKind Kind, byte Flags, EntryType EntryType, ulong FlushSequence, ulong GroupId, ulong Term, ulong Index)
{
    /// <summary>True on the last record of an append.</summary>
    public bool EndsAppend => (Flags & WalRecord.FlagEndOfAppend) != 0;

    /// <summary>True on the last record of a flush.</summary>
    public bool EndsFlush => (Flags & WalRecord.FlagEndOfFlush) != 0;
}
