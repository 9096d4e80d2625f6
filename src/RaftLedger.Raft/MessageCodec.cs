using System.Buffers;
using RaftLedger.Common;

namespace RaftLedger.Raft;

/// <summary>
/// Binary encoding of <see cref="Message"/> for the transport. Layout (integers as LEB128 varints):
/// version, type, flags (reject, transfer, has-snapshot), from, to, term, logTerm, index, commit, rejectHint,
/// context length + bytes, entry count, then per entry term, index, type, length + payload, then the snapshot
/// (index, term, four id lists, auto-leave) when flagged. Decoding is bounds-checked and never trusts a length;
/// decoded payloads and context are slices of the input buffer (no copies).
/// </summary>
public static class MessageCodec
{
    /// <summary>Bumped on any layout change; decoders refuse versions they do not know.</summary>
    public const byte Version = 1;

    /// <summary>Upper bound on entries in one message, so a corrupt count cannot make the decoder allocate wildly.</summary>
    public const int EntriesPerMessageMax = 1 << 20;

    /// <summary>Upper bound on node ids in one membership list.</summary>
    public const int MembersMax = 1024;

    private const byte FlagReject = 1;
    private const byte FlagTransfer = 2;
    private const byte FlagSnapshot = 4;
    private const byte FlagLostState = 8;

    /// <summary>Exact encoded size of <paramref name="message"/> in bytes.</summary>
    public static int GetEncodedSize(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var size = 3 + VarSize(message.From) + VarSize(message.To) + VarSize(message.Term) + VarSize(message.LogTerm) +
            VarSize(message.Index) + VarSize(message.Commit) + VarSize(message.RejectHint) +
            VarSize((ulong)message.Context.Length) + message.Context.Length + VarSize((ulong)message.Entries.Count);
        for (var i = 0; i < message.Entries.Count; i++)
        {
            var entry = message.Entries[i];
            size += VarSize(entry.Term) + VarSize(entry.Index) + 1 + VarSize((ulong)entry.Data.Length) + entry.Data.Length;
        }

        if (message.Snapshot is { } snapshot)
        {
            size += VarSize(snapshot.Index) + VarSize(snapshot.Term) + 1;
            var conf = snapshot.ConfState;
            size += ListSize(conf.Voters) + ListSize(conf.Learners) + ListSize(conf.VotersOutgoing) + ListSize(conf.LearnersNext);
        }

        return size;
    }

    /// <summary>Encodes into <paramref name="writer"/> (one contiguous span of the exact size).</summary>
    public static void Encode(Message message, IBufferWriter<byte> writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var size = GetEncodedSize(message);
        var span = writer.GetSpan(size);
        var written = Encode(message, span);
        Invariant.Check(written == size);
        writer.Advance(size);
    }

    /// <summary>Encodes into a new array.</summary>
    public static byte[] Encode(Message message)
    {
        var bytes = new byte[GetEncodedSize(message)];
        Encode(message, bytes);
        return bytes;
    }

    /// <summary>Encodes into <paramref name="destination"/> (at least GetEncodedSize bytes); returns bytes written.</summary>
    public static int Encode(Message message, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(message);
        var pos = 0;
        destination[pos++] = Version;
        destination[pos++] = (byte)message.Type;
        destination[pos++] = (byte)((message.Reject ? FlagReject : 0) | (message.Transfer ? FlagTransfer : 0) |
            (message.Snapshot is not null ? FlagSnapshot : 0) | (message.LostState ? FlagLostState : 0));
        WriteVar(destination, ref pos, message.From);
        WriteVar(destination, ref pos, message.To);
        WriteVar(destination, ref pos, message.Term);
        WriteVar(destination, ref pos, message.LogTerm);
        WriteVar(destination, ref pos, message.Index);
        WriteVar(destination, ref pos, message.Commit);
        WriteVar(destination, ref pos, message.RejectHint);
        WriteBytes(destination, ref pos, message.Context.Span);
        WriteVar(destination, ref pos, (ulong)message.Entries.Count);
        for (var i = 0; i < message.Entries.Count; i++)
        {
            var entry = message.Entries[i];
            WriteVar(destination, ref pos, entry.Term);
            WriteVar(destination, ref pos, entry.Index);
            destination[pos++] = (byte)entry.Type;
            WriteBytes(destination, ref pos, entry.Data.Span);
        }

        if (message.Snapshot is { } snapshot)
        {
            WriteVar(destination, ref pos, snapshot.Index);
            WriteVar(destination, ref pos, snapshot.Term);
            var conf = snapshot.ConfState;
            WriteList(destination, ref pos, conf.Voters);
            WriteList(destination, ref pos, conf.Learners);
            WriteList(destination, ref pos, conf.VotersOutgoing);
            WriteList(destination, ref pos, conf.LearnersNext);
            destination[pos++] = conf.AutoLeave ? (byte)1 : (byte)0;
        }

        return pos;
    }

    /// <summary>
    /// Decodes one message occupying all of <paramref name="bytes"/>. Returns false with a reason for bytes that are
    /// not a valid encoding (truncated, trailing garbage, unknown version or type, out-of-range counts).
    /// </summary>
    public static bool TryDecode(ReadOnlyMemory<byte> bytes, out Message? message, out string error)
    {
        message = null;
        var reader = new Reader(bytes);
        if (!reader.TryByte(out var version) || version != Version)
        {
            error = $"message: unknown or missing version (expected {Version})";
            return false;
        }

        if (!reader.TryByte(out var typeByte) || typeByte is < (byte)MessageType.Append or > (byte)MessageType.TransferLeader ||
            !reader.TryByte(out var flags) || flags > (FlagReject | FlagTransfer | FlagSnapshot | FlagLostState))
        {
            error = "message: bad type or flags byte";
            return false;
        }

        if (!reader.TryVar(out var from) || !reader.TryVar(out var to) || !reader.TryVar(out var term) ||
            !reader.TryVar(out var logTerm) || !reader.TryVar(out var index) || !reader.TryVar(out var commit) ||
            !reader.TryVar(out var rejectHint) || !reader.TryBytes(out var context))
        {
            error = "message: truncated header";
            return false;
        }

        if (!TryDecodeEntries(ref reader, out var entries, out error))
        {
            return false;
        }

        SnapshotMetadata? snapshot = null;
        if ((flags & FlagSnapshot) != 0 && !TryDecodeSnapshot(ref reader, out snapshot, out error))
        {
            return false;
        }

        if (!reader.AtEnd)
        {
            error = $"message: {reader.Remaining} unexpected trailing bytes";
            return false;
        }

        message = new Message
        {
            Type = (MessageType)typeByte,
            From = from,
            To = to,
            Term = term,
            LogTerm = logTerm,
            Index = index,
            Commit = commit,
            RejectHint = rejectHint,
            Reject = (flags & FlagReject) != 0,
            Transfer = (flags & FlagTransfer) != 0,
            LostState = (flags & FlagLostState) != 0,
            Context = context,
            Entries = entries,
            Snapshot = snapshot,
        };
        error = "";
        return true;
    }

    private static bool TryDecodeEntries(ref Reader reader, out Entry[] entries, out string error)
    {
        entries = [];
        // Each entry takes at least 4 bytes, which bounds the count by the input before allocating.
        if (!reader.TryVar(out var count) || count > EntriesPerMessageMax || count > (ulong)reader.Remaining / 4)
        {
            error = "message: bad entry count";
            return false;
        }

        entries = count == 0 ? [] : new Entry[count];
        for (var i = 0; i < entries.Length; i++)
        {
            if (!reader.TryVar(out var term) || !reader.TryVar(out var index) || !reader.TryByte(out var type) ||
                type > (byte)EntryType.ConfChange || !reader.TryBytes(out var data))
            {
                error = $"message: bad entry {i}";
                return false;
            }

            entries[i] = new Entry(term, index, (EntryType)type, data);
        }

        error = "";
        return true;
    }

    private static bool TryDecodeSnapshot(ref Reader reader, out SnapshotMetadata? snapshot, out string error)
    {
        snapshot = null;
        if (!reader.TryVar(out var index) || !reader.TryVar(out var term) ||
            !reader.TryList(out var voters) || !reader.TryList(out var learners) ||
            !reader.TryList(out var outgoing) || !reader.TryList(out var learnersNext) ||
            !reader.TryByte(out var autoLeave) || autoLeave > 1)
        {
            error = "message: bad snapshot metadata";
            return false;
        }

        snapshot = new SnapshotMetadata(index, term, new ConfState(voters, learners, outgoing, learnersNext, autoLeave == 1));
        error = "";
        return true;
    }

    private static int VarSize(ulong value)
    {
        var size = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            size++;
        }

        return size;
    }

    private static int ListSize(IReadOnlyList<ulong> ids)
    {
        var size = VarSize((ulong)ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            size += VarSize(ids[i]);
        }

        return size;
    }

    private static void WriteVar(Span<byte> destination, ref int pos, ulong value)
    {
        while (value >= 0x80)
        {
            destination[pos++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[pos++] = (byte)value;
    }

    private static void WriteBytes(Span<byte> destination, ref int pos, ReadOnlySpan<byte> bytes)
    {
        WriteVar(destination, ref pos, (ulong)bytes.Length);
        bytes.CopyTo(destination[pos..]);
        pos += bytes.Length;
    }

    private static void WriteList(Span<byte> destination, ref int pos, IReadOnlyList<ulong> ids)
    {
        WriteVar(destination, ref pos, (ulong)ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            WriteVar(destination, ref pos, ids[i]);
        }
    }

    private struct Reader(ReadOnlyMemory<byte> bytes)
    {
        private readonly ReadOnlyMemory<byte> _bytes = bytes;
        private int _pos;

        public readonly int Remaining => _bytes.Length - _pos;

        public readonly bool AtEnd => _pos == _bytes.Length;

        public bool TryByte(out byte value)
        {
            value = 0;
            if (_pos >= _bytes.Length)
            {
                return false;
            }

            value = _bytes.Span[_pos++];
            return true;
        }

        public bool TryVar(out ulong value)
        {
            value = 0;
            var span = _bytes.Span;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= span.Length)
                {
                    return false;
                }

                var b = span[_pos++];
                // The tenth byte may only carry the top bit of a 64-bit value.
                if (shift == 63 && b > 1)
                {
                    return false;
                }

                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return true;
                }
            }

            return false;
        }

        public bool TryBytes(out ReadOnlyMemory<byte> value)
        {
            value = default;
            if (!TryVar(out var length) || length > (ulong)Remaining)
            {
                return false;
            }

            value = _bytes.Slice(_pos, (int)length);
            _pos += (int)length;
            return true;
        }

        public bool TryList(out ulong[] ids)
        {
            ids = [];
            if (!TryVar(out var count) || count > MembersMax || count > (ulong)Remaining)
            {
                return false;
            }

            ids = new ulong[count];
            for (var i = 0; i < ids.Length; i++)
            {
                if (!TryVar(out ids[i]) || ids[i] == 0)
                {
                    return false;
                }
            }

            return true;
        }
    }
}
