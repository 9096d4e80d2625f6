using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Node.Transport;

/// <summary>One group's heartbeat (or heartbeat response) inside a bundle; sender and receiver are the bundle's node pair.</summary>
public readonly record struct CoalescedHeartbeat(ulong GroupId, MessageType Type, ulong Term, ulong Commit, ReadOnlyMemory<byte> Context)
{
    /// <summary>
    /// True for the message kinds a bundle carries (with a context short enough to ride along). A response of a
    /// rejoining node that lost its state (<see cref="Message.LostState"/>, with its last index) goes on its own: the
    /// bundle has no room for either, and it is rare.
    /// </summary>
    public static bool Fits(Message message) =>
        message.Type is MessageType.Heartbeat or MessageType.HeartbeatResponse &&
        message.Context.Length <= HeartbeatBundle.ContextBytesMax && !message.LostState;

    /// <summary>The heartbeat of <paramref name="groupId"/> carried by <paramref name="message"/>.</summary>
    public static CoalescedHeartbeat From(ulong groupId, Message message)
    {
        Invariant.Check(Fits(message));
        return new CoalescedHeartbeat(groupId, message.Type, message.Term, message.Commit, message.Context);
    }

    /// <summary>The Raft message this heartbeat stands for, between <paramref name="from"/> and <paramref name="to"/>.</summary>
    public Message ToMessage(ulong from, ulong to) =>
        new() { Type = Type, From = from, To = to, Term = Term, Commit = Commit, Context = Context };
}

/// <summary>
/// Heartbeats coalesced per node pair: every heartbeat (and every response) one node sends another in a
/// scheduler round travels as one bundle instead of one Raft message per group. With many groups per node
/// pair this is most of the idle traffic, so the bundle keeps it to one frame entry and ~27 bytes per group.
/// Layout (little-endian): u8 version, u32 count, then per heartbeat: u64 group, u8 type, u64 term,
/// u64 commit, u16 context length, context bytes. Decoding is bounds-checked and refuses anything else.
/// </summary>
public static class HeartbeatBundle
{
    /// <summary>The only layout version written and accepted.</summary>
    public const byte Version = 1;

    /// <summary>Heartbeats one bundle may carry (more groups than any node pair shares).</summary>
    public const int BeatsMax = 65_536;

    /// <summary>Longest context that rides in a bundle; a heartbeat with a longer one is sent on its own.</summary>
    public const int ContextBytesMax = 256;

    private const int HeaderBytes = 1 + 4;
    private const int FixedBeatBytes = 8 + 1 + 8 + 8 + 2;

    /// <summary>Encodes <paramref name="beats"/> (1..<see cref="BeatsMax"/> heartbeats).</summary>
    public static byte[] Encode(ReadOnlySpan<CoalescedHeartbeat> beats)
    {
        Invariant.Check(beats.Length is > 0 and <= BeatsMax);
        var size = HeaderBytes;
        foreach (var beat in beats)
        {
            Invariant.Check(beat.Context.Length <= ContextBytesMax);
            size += FixedBeatBytes + beat.Context.Length;
        }

        var bytes = new byte[size];
        bytes[0] = Version;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(1), (uint)beats.Length);
        var at = HeaderBytes;
        foreach (var beat in beats)
        {
            at = WriteBeat(bytes, at, beat);
        }

        Invariant.Check(at == size);
        return bytes;
    }

    /// <summary>
    /// Decodes a bundle into <paramref name="into"/> (contexts slice <paramref name="bundle"/>); returns null, or what
    /// was wrong (nothing is added then).
    /// </summary>
    public static string? TryDecode(ReadOnlyMemory<byte> bundle, List<CoalescedHeartbeat> into)
    {
        var bytes = bundle.Span;
        if (bytes.Length < HeaderBytes || bytes[0] != Version)
        {
            return "not a heartbeat bundle of version " + Version;
        }

        var count = BinaryPrimitives.ReadUInt32LittleEndian(bytes[1..]);
        if (count is 0 or > BeatsMax)
        {
            return $"bundle claims {count} heartbeats (1..{BeatsMax} allowed)";
        }

        var start = into.Count;
        var at = HeaderBytes;
        for (var i = 0; i < count; i++)
        {
            var error = TryReadBeat(bundle, ref at, out var beat);
            if (error is not null)
            {
                return Discard(into, start, $"heartbeat {i}: {error}");
            }

            into.Add(beat);
        }

        return at == bytes.Length ? null : Discard(into, start, $"{bytes.Length - at} bytes after the last heartbeat");
    }

    // A bad bundle adds nothing: heartbeats before the bad one are taken back.
    private static string Discard(List<CoalescedHeartbeat> into, int start, string error)
    {
        into.RemoveRange(start, into.Count - start);
        return error;
    }

    private static int WriteBeat(byte[] bytes, int at, in CoalescedHeartbeat beat)
    {
        var span = bytes.AsSpan(at);
        BinaryPrimitives.WriteUInt64LittleEndian(span, beat.GroupId);
        span[8] = (byte)beat.Type;
        BinaryPrimitives.WriteUInt64LittleEndian(span[9..], beat.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(span[17..], beat.Commit);
        BinaryPrimitives.WriteUInt16LittleEndian(span[25..], (ushort)beat.Context.Length);
        beat.Context.Span.CopyTo(span[FixedBeatBytes..]);
        return at + FixedBeatBytes + beat.Context.Length;
    }

    private static string? TryReadBeat(ReadOnlyMemory<byte> bundle, ref int at, out CoalescedHeartbeat beat)
    {
        beat = default;
        var span = bundle.Span[at..];
        if (span.Length < FixedBeatBytes)
        {
            return "truncated";
        }

        var type = (MessageType)span[8];
        if (type is not (MessageType.Heartbeat or MessageType.HeartbeatResponse))
        {
            return $"message type {(byte)type} is not a heartbeat";
        }

        int contextBytes = BinaryPrimitives.ReadUInt16LittleEndian(span[25..]);
        if (contextBytes > ContextBytesMax || span.Length < FixedBeatBytes + contextBytes)
        {
            return $"context of {contextBytes} bytes is too long or truncated";
        }

        var context = contextBytes == 0 ? ReadOnlyMemory<byte>.Empty : bundle.Slice(at + FixedBeatBytes, contextBytes);
        beat = new CoalescedHeartbeat(BinaryPrimitives.ReadUInt64LittleEndian(span), type,
            BinaryPrimitives.ReadUInt64LittleEndian(span[9..]), BinaryPrimitives.ReadUInt64LittleEndian(span[17..]), context);
        at += FixedBeatBytes + contextBytes;
        return null;
    }
}
