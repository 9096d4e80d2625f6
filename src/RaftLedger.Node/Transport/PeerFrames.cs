using System.Buffers;
using System.Buffers.Binary;
using RaftLedger.Common;

namespace RaftLedger.Node.Transport;

/// <summary>What one message on a peer connection carries.</summary>
internal enum PeerMessageKind : byte
{
    /// <summary>A Raft message of one group, in the Raft core's own encoding (MessageCodec).</summary>
    Raft = 0,

    /// <summary>A heartbeat bundle (<see cref="HeartbeatBundle"/>); the group id is unused.</summary>
    Heartbeats = 1,

    /// <summary>A cross-shard protocol message from the leader of the sender's shard FromShard.</summary>
    Shard = 2,

    /// <summary>Nothing: sent when a connection has been idle, so the peer's reader sees it is alive.</summary>
    Ping = 3,
}

/// <summary>The answer to a connection's hello.</summary>
internal enum PeerHelloAnswer : byte
{
    Accepted = 0,
    WrongSecret = 1,
    BadNodeId = 2,
}

/// <summary>Outcome of parsing a piece of a peer connection's input.</summary>
internal enum PeerReadStatus
{
    /// <summary>The input ends inside the piece; read more and try again (nothing was consumed).</summary>
    NeedMore,

    /// <summary>The piece was parsed and consumed.</summary>
    Complete,

    /// <summary>The input cannot be ours (wrong preface, a length beyond its limit): close the connection.</summary>
    Malformed,
}

/// <summary>One message queued for or received from a peer. <see cref="FromShard"/> is used by shard messages only.</summary>
internal readonly record struct PeerFrameMessage(PeerMessageKind Kind, ulong GroupId, int FromShard, ReadOnlyMemory<byte> Payload)
{
    /// <summary>Bytes this message takes inside a frame.</summary>
    public int EncodedBytes => PeerFrames.MessageHeaderBytes + Payload.Length;
}

/// <summary>
/// The wire format of a peer connection (plain TCP, on the same port as the peer gRPC server). All integers are big-endian.
/// <para>Dialer → server, once: the preface "RLPEER" 0 1 (name and version; HTTP/2 starts with "PRI", so the first byte
/// tells the two apart), the dialer's node id (u64), the cluster secret's length (u16, at most
/// <see cref="SecretBytesMax"/>) and bytes. Server → dialer, once: one <see cref="PeerHelloAnswer"/> byte; on anything but
/// Accepted the server closes the connection.</para>
/// <para>Then both ways, frames: a length (u32, 1 to <see cref="FrameBytesMax"/>) and that many bytes of messages, each
/// a kind (u8), a group id (u64), a from-shard (u32), a payload length (u32) and the payload. One frame is one batch:
/// everything that was queued for the peer when the writer woke.</para>
/// Pure: no IO; the connection code feeds it bytes.
/// </summary>
internal static class PeerFrames
{
    /// <summary>Bytes of the preface.</summary>
    public const int PrefaceBytes = 8;

    /// <summary>Longest cluster secret a hello may carry.</summary>
    public const int SecretBytesMax = 1024;

    /// <summary>Bytes of a frame's length prefix.</summary>
    public const int LengthBytes = 4;

    /// <summary>Bytes of one message's header inside a frame: kind, group id, from-shard, payload length.</summary>
    public const int MessageHeaderBytes = 1 + 8 + 4 + 4;

    /// <summary>Largest frame (after its length prefix) either side writes or accepts: one batch.</summary>
    public const int FrameBytesMax = TransportOptions.BatchBytesMax;

    private const int HelloFixedBytes = PrefaceBytes + 8 + 2;

    /// <summary>"RLPEER", then version 1.</summary>
    public static ReadOnlySpan<byte> Preface => "RLPEER\0\u0001"u8;

    /// <summary>Writes the dialer's hello: preface, node id and secret.</summary>
    public static void WriteHello(IBufferWriter<byte> output, ulong nodeId, ReadOnlySpan<byte> secret)
    {
        Invariant.Check(nodeId != 0);
        Invariant.Check(secret.Length <= SecretBytesMax, "the cluster secret fits a hello");
        var span = output.GetSpan(HelloFixedBytes + secret.Length);
        Preface.CopyTo(span);
        BinaryPrimitives.WriteUInt64BigEndian(span[PrefaceBytes..], nodeId);
        BinaryPrimitives.WriteUInt16BigEndian(span[(PrefaceBytes + 8)..], (ushort)secret.Length);
        secret.CopyTo(span[HelloFixedBytes..]);
        output.Advance(HelloFixedBytes + secret.Length);
    }

    /// <summary>
    /// Parses a hello at the start of <paramref name="buffer"/>; on Complete, slices it off. Malformed as soon as the
    /// bytes seen differ from the preface, or when the secret is longer than <see cref="SecretBytesMax"/>.
    /// </summary>
    public static PeerReadStatus TryReadHello(ref ReadOnlySequence<byte> buffer, out ulong nodeId, out byte[] secret)
    {
        nodeId = 0;
        secret = [];
        Span<byte> fixedPart = stackalloc byte[HelloFixedBytes];
        var seen = (int)Math.Min(HelloFixedBytes, buffer.Length);
        buffer.Slice(0, seen).CopyTo(fixedPart);
        var prefaceSeen = Math.Min(PrefaceBytes, seen);
        if (!fixedPart[..prefaceSeen].SequenceEqual(Preface[..prefaceSeen]))
        {
            return PeerReadStatus.Malformed;
        }

        if (seen < HelloFixedBytes)
        {
            return PeerReadStatus.NeedMore;
        }

        var secretBytes = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[(PrefaceBytes + 8)..]);
        if (secretBytes > SecretBytesMax)
        {
            return PeerReadStatus.Malformed;
        }

        if (buffer.Length < HelloFixedBytes + secretBytes)
        {
            return PeerReadStatus.NeedMore;
        }

        nodeId = BinaryPrimitives.ReadUInt64BigEndian(fixedPart[PrefaceBytes..]);
        secret = buffer.Slice(HelloFixedBytes, secretBytes).ToArray();
        buffer = buffer.Slice(HelloFixedBytes + secretBytes);
        return PeerReadStatus.Complete;
    }

    /// <summary>Writes the server's answer to a hello.</summary>
    public static void WriteAnswer(IBufferWriter<byte> output, PeerHelloAnswer answer)
    {
        output.GetSpan(1)[0] = (byte)answer;
        output.Advance(1);
    }

    /// <summary>Parses the server's answer; false when the buffer is empty.</summary>
    public static bool TryReadAnswer(ref ReadOnlySequence<byte> buffer, out PeerHelloAnswer answer)
    {
        answer = PeerHelloAnswer.WrongSecret;
        if (buffer.IsEmpty)
        {
            return false;
        }

        answer = (PeerHelloAnswer)buffer.FirstSpan[0];
        buffer = buffer.Slice(1);
        return true;
    }

    /// <summary>Bytes <paramref name="batch"/> takes as one frame, after the length prefix.</summary>
    public static int FrameBytes(List<PeerFrameMessage> batch)
    {
        var bytes = 0;
        foreach (var message in batch)
        {
            bytes += message.EncodedBytes;
        }

        return bytes;
    }

    /// <summary>Writes <paramref name="batch"/> (not empty, at most <see cref="FrameBytesMax"/>) as one frame.</summary>
    public static void WriteFrame(IBufferWriter<byte> output, List<PeerFrameMessage> batch)
    {
        var frameBytes = FrameBytes(batch);
        Invariant.Check(frameBytes > 0);
        Invariant.Check(frameBytes <= FrameBytesMax, "a batch fits one frame");
        BinaryPrimitives.WriteUInt32BigEndian(output.GetSpan(LengthBytes), (uint)frameBytes);
        output.Advance(LengthBytes);
        foreach (var message in batch)
        {
            var header = output.GetSpan(MessageHeaderBytes);
            header[0] = (byte)message.Kind;
            BinaryPrimitives.WriteUInt64BigEndian(header[1..], message.GroupId);
            BinaryPrimitives.WriteUInt32BigEndian(header[9..], (uint)message.FromShard);
            BinaryPrimitives.WriteUInt32BigEndian(header[13..], (uint)message.Payload.Length);
            output.Advance(MessageHeaderBytes);
            output.Write(message.Payload.Span);
        }
    }

    /// <summary>
    /// Parses a frame's length prefix at the start of <paramref name="buffer"/>; on Complete, slices it off.
    /// Malformed when the length is 0 or above <see cref="FrameBytesMax"/>: the peer is not one of ours or is broken.
    /// </summary>
    public static PeerReadStatus TryReadLength(ref ReadOnlySequence<byte> buffer, out int frameBytes)
    {
        frameBytes = 0;
        if (buffer.Length < LengthBytes)
        {
            return PeerReadStatus.NeedMore;
        }

        Span<byte> prefix = stackalloc byte[LengthBytes];
        buffer.Slice(0, LengthBytes).CopyTo(prefix);
        var length = BinaryPrimitives.ReadUInt32BigEndian(prefix);
        if (length == 0 || length > FrameBytesMax)
        {
            return PeerReadStatus.Malformed;
        }

        frameBytes = (int)length;
        buffer = buffer.Slice(LengthBytes);
        return PeerReadStatus.Complete;
    }

    /// <summary>
    /// Decodes a whole frame into <paramref name="into"/>; the payloads are slices of <paramref name="frame"/>, which the
    /// caller must not reuse. False (and <paramref name="into"/> unspecified) when the frame is malformed.
    /// </summary>
    public static bool TryDecodeFrame(ReadOnlyMemory<byte> frame, List<PeerFrameMessage> into)
    {
        var rest = frame;
        while (!rest.IsEmpty)
        {
            if (rest.Length < MessageHeaderBytes)
            {
                return false;
            }

            var header = rest.Span;
            var kind = (PeerMessageKind)header[0];
            var groupId = BinaryPrimitives.ReadUInt64BigEndian(header[1..]);
            var fromShard = BinaryPrimitives.ReadUInt32BigEndian(header[9..]);
            var payloadBytes = BinaryPrimitives.ReadUInt32BigEndian(header[13..]);
            if (kind > PeerMessageKind.Ping || fromShard > int.MaxValue || payloadBytes > (uint)(rest.Length - MessageHeaderBytes))
            {
                return false;
            }

            into.Add(new PeerFrameMessage(kind, groupId, (int)fromShard, rest.Slice(MessageHeaderBytes, (int)payloadBytes)));
            rest = rest[(MessageHeaderBytes + (int)payloadBytes)..];
        }

        return true;
    }
}
