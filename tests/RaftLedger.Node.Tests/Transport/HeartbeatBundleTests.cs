using System.Buffers.Binary;
using RaftLedger.Node.Transport;
using RaftLedger.Raft;

namespace RaftLedger.Node.Tests.Transport;

public sealed class HeartbeatBundleTests
{
    private static CoalescedHeartbeat Beat(ulong group, MessageType type = MessageType.Heartbeat, byte[]? context = null) =>
        new(group, type, Term: group * 3, Commit: group * 7, context ?? []);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_bundles_decode_to_what_was_encoded(int seed)
    {
        var random = new Random(seed);
        var beats = Enumerable.Range(0, random.Next(1, 200)).Select(_ => new CoalescedHeartbeat(
            (ulong)random.NextInt64(), random.Next(2) == 0 ? MessageType.Heartbeat : MessageType.HeartbeatResponse,
            (ulong)random.NextInt64(), (ulong)random.NextInt64(), RandomBytes(random, random.Next(0, HeartbeatBundle.ContextBytesMax + 1)))).ToArray();

        var decoded = new List<CoalescedHeartbeat>();
        var error = HeartbeatBundle.TryDecode(HeartbeatBundle.Encode(beats), decoded);

        Assert.True(error is null, $"seed {seed}: {error} (replay: dotnet test tests/RaftLedger.Node.Tests -c Release --filter Random_bundles_decode_to_what_was_encoded)");
        Assert.Equal(beats.Length, decoded.Count);
        for (var i = 0; i < beats.Length; i++)
        {
            Assert.Equal((beats[i].GroupId, beats[i].Type, beats[i].Term, beats[i].Commit), (decoded[i].GroupId, decoded[i].Type, decoded[i].Term, decoded[i].Commit));
            Assert.Equal(beats[i].Context.ToArray(), decoded[i].Context.ToArray());
        }
    }

    [Fact]
    public void A_beat_becomes_the_raft_message_between_the_bundles_nodes()
    {
        var message = Beat(5, MessageType.HeartbeatResponse, [9]).ToMessage(from: 2, to: 1);

        Assert.Equal((MessageType.HeartbeatResponse, 2UL, 1UL, 15UL, 35UL), (message.Type, message.From, message.To, message.Term, message.Commit));
        Assert.Equal(new byte[] { 9 }, message.Context.ToArray());
    }

    [Fact]
    public void Only_heartbeats_with_short_contexts_ride_in_a_bundle()
    {
        Assert.True(CoalescedHeartbeat.Fits(new Message { Type = MessageType.Heartbeat, From = 1, To = 2 }));
        Assert.False(CoalescedHeartbeat.Fits(new Message { Type = MessageType.Append, From = 1, To = 2 }));
        Assert.False(CoalescedHeartbeat.Fits(new Message
        {
            Type = MessageType.Heartbeat,
            From = 1,
            To = 2,
            Context = new byte[HeartbeatBundle.ContextBytesMax + 1],
        }));
    }

    public static TheoryData<string, byte[]> Malformed()
    {
        var good = HeartbeatBundle.Encode([Beat(1), Beat(2, MessageType.HeartbeatResponse, [1, 2, 3])]);
        var badVersion = (byte[])good.Clone();
        badVersion[0] = 2;
        var zeroCount = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(zeroCount.AsSpan(1), 0);
        var hugeCount = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(hugeCount.AsSpan(1), HeartbeatBundle.BeatsMax + 1);
        var extraCount = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(extraCount.AsSpan(1), 3);
        var appendType = (byte[])good.Clone();
        appendType[5 + 8] = (byte)MessageType.Append;
        var longContext = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(longContext.AsSpan(5 + 27 + 25), HeartbeatBundle.ContextBytesMax + 1);
        return new()
        {
            { "empty", [] },
            { "wrong version", badVersion },
            { "no heartbeats", zeroCount },
            { "too many heartbeats", hugeCount },
            { "count beyond the data", extraCount },
            { "not a heartbeat type", appendType },
            { "context over the limit", longContext },
            { "truncated", good[..^2] },
            { "trailing bytes", [.. good, 0] },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_bundles_are_refused_and_add_nothing(string what, byte[] bundle)
    {
        var decoded = new List<CoalescedHeartbeat> { Beat(42) };

        var error = HeartbeatBundle.TryDecode(bundle, decoded);

        Assert.True(error is not null, $"{what} was accepted");
        Assert.Equal(42UL, Assert.Single(decoded).GroupId);
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
