using System.Buffers;
using System.Buffers.Binary;
using RaftLedger.Node.Transport;

namespace RaftLedger.Node.Tests.Transport;

public sealed class PeerFramesTests
{
    private static readonly byte[] Secret = "s3cret"u8.ToArray();

    private static byte[] Hello(ulong nodeId, byte[] secret)
    {
        var output = new ArrayBufferWriter<byte>();
        PeerFrames.WriteHello(output, nodeId, secret);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Frame(List<PeerFrameMessage> batch)
    {
        var output = new ArrayBufferWriter<byte>();
        PeerFrames.WriteFrame(output, batch);
        return output.WrittenSpan.ToArray();
    }

    private static List<PeerFrameMessage> SampleBatch() =>
    [
        new(PeerMessageKind.Raft, 7, 0, new byte[] { 1, 2, 3 }),
        new(PeerMessageKind.Heartbeats, 0, 0, new byte[] { 4 }),
        new(PeerMessageKind.Shard, 9, 5, new byte[] { 5, 6 }),
        new(PeerMessageKind.Ping, 0, 0, ReadOnlyMemory<byte>.Empty),
    ];

    [Fact]
    public void A_hello_round_trips_and_is_sliced_off()
    {
        var bytes = Hello(3, Secret).Concat(new byte[] { 0xAA }).ToArray();
        var buffer = new ReadOnlySequence<byte>(bytes);

        Assert.Equal(PeerReadStatus.Complete, PeerFrames.TryReadHello(ref buffer, out var nodeId, out var secret));
        Assert.Equal(3UL, nodeId);
        Assert.Equal(Secret, secret);
        Assert.Equal(new byte[] { 0xAA }, buffer.ToArray());
    }

    [Fact]
    public void A_truncated_hello_needs_more_and_consumes_nothing()
    {
        var bytes = Hello(3, Secret);
        for (var length = 0; length < bytes.Length; length++)
        {
            var buffer = new ReadOnlySequence<byte>(bytes, 0, length);
            Assert.Equal(PeerReadStatus.NeedMore, PeerFrames.TryReadHello(ref buffer, out _, out _));
            Assert.Equal(length, buffer.Length);
        }
    }

    [Fact]
    public void A_wrong_preface_is_malformed_from_its_first_differing_byte()
    {
        var http2 = new ReadOnlySequence<byte>("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
        Assert.Equal(PeerReadStatus.Malformed, PeerFrames.TryReadHello(ref http2, out _, out _));

        var bytes = Hello(3, Secret);
        bytes[7] ^= 0xFF; // another version
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.Equal(PeerReadStatus.Malformed, PeerFrames.TryReadHello(ref buffer, out _, out _));
    }

    [Fact]
    public void A_hello_with_a_secret_longer_than_the_limit_is_malformed()
    {
        var bytes = Hello(3, Secret);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(PeerFrames.PrefaceBytes + 8), PeerFrames.SecretBytesMax + 1);
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.Equal(PeerReadStatus.Malformed, PeerFrames.TryReadHello(ref buffer, out _, out _));
    }

    [Fact]
    public void A_frame_round_trips_every_message_kind_in_order()
    {
        var batch = SampleBatch();
        var buffer = new ReadOnlySequence<byte>(Frame(batch));

        Assert.Equal(PeerReadStatus.Complete, PeerFrames.TryReadLength(ref buffer, out var frameBytes));
        Assert.Equal(PeerFrames.FrameBytes(batch), frameBytes);
        Assert.Equal(frameBytes, buffer.Length);
        var decoded = new List<PeerFrameMessage>();
        Assert.True(PeerFrames.TryDecodeFrame(buffer.ToArray(), decoded));
        Assert.Equal(batch.Select(m => (m.Kind, m.GroupId, m.FromShard, m.Payload.ToArray())), decoded.Select(m => (m.Kind, m.GroupId, m.FromShard, m.Payload.ToArray())));
    }

    [Fact]
    public void A_frame_cut_inside_a_message_does_not_decode()
    {
        var batch = SampleBatch();
        var frame = Frame(batch)[PeerFrames.LengthBytes..];
        var boundaries = new HashSet<int>();
        var offset = 0;
        foreach (var message in batch)
        {
            offset += message.EncodedBytes;
            boundaries.Add(offset);
        }

        for (var length = 1; length < frame.Length; length++)
        {
            // A prefix that ends between two messages is itself a valid (shorter) frame; any other cut is refused.
            Assert.Equal(boundaries.Contains(length), PeerFrames.TryDecodeFrame(frame.AsMemory(0, length), []));
        }

        var prefix = new ReadOnlySequence<byte>(new byte[PeerFrames.LengthBytes - 1]);
        Assert.Equal(PeerReadStatus.NeedMore, PeerFrames.TryReadLength(ref prefix, out _));
        Assert.Equal(PeerFrames.LengthBytes - 1, prefix.Length);
    }

    [Fact]
    public void A_frame_length_of_zero_or_beyond_the_limit_is_refused()
    {
        foreach (var length in new uint[] { 0, PeerFrames.FrameBytesMax + 1, uint.MaxValue })
        {
            var bytes = new byte[PeerFrames.LengthBytes];
            BinaryPrimitives.WriteUInt32BigEndian(bytes, length);
            var buffer = new ReadOnlySequence<byte>(bytes);
            Assert.Equal(PeerReadStatus.Malformed, PeerFrames.TryReadLength(ref buffer, out _));
        }
    }

    [Fact]
    public void A_message_whose_payload_runs_past_the_frame_or_whose_kind_is_unknown_is_refused()
    {
        var frame = Frame([new(PeerMessageKind.Raft, 7, 0, new byte[] { 1, 2, 3 })])[PeerFrames.LengthBytes..];
        var longer = (byte[])frame.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(longer.AsSpan(13), 4);
        Assert.False(PeerFrames.TryDecodeFrame(longer, []));

        var unknown = (byte[])frame.Clone();
        unknown[0] = 200;
        Assert.False(PeerFrames.TryDecodeFrame(unknown, []));
    }

    [Fact]
    public void The_largest_message_fits_one_frame()
    {
        Assert.True(TransportOptions.MessageBytesMax + PeerFrames.MessageHeaderBytes <= PeerFrames.FrameBytesMax);
        Assert.Equal(PeerFrames.PrefaceBytes, PeerFrames.Preface.Length);
        Assert.NotEqual((byte)'P', PeerFrames.Preface[0]); // HTTP/2's connection preface starts with "PRI".
    }
}
