using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;
using RaftLedger.Node.Transport;

namespace RaftLedger.Node.Tests.Transport;

public sealed class PeerTransportTests
{
    private sealed class Inbox : IPeerMessageSink
    {
        public ConcurrentQueue<(ulong From, ulong Group, byte[] Raft)> Messages { get; } = new();

        public ConcurrentQueue<(ulong From, byte[] Bundle)> Bundles { get; } = new();

        public void OnMessage(ulong fromNode, ulong groupId, ReadOnlyMemory<byte> raft) =>
            Messages.Enqueue((fromNode, groupId, raft.ToArray()));

        public void OnHeartbeats(ulong fromNode, ReadOnlyMemory<byte> bundle) => Bundles.Enqueue((fromNode, bundle.ToArray()));
    }

    private static async Task<(PeerTransport Transport, Inbox Inbox)> Start(ulong nodeId, string secret = "s3cret", int port = 0, TimeProvider? time = null, ILogger? log = null, TimeSpan? pingInterval = null)
    {
        var inbox = new Inbox();
        var options = new TransportOptions { NodeId = nodeId, Secret = secret, Time = time ?? TimeProvider.System, PingInterval = pingInterval ?? TimeSpan.FromSeconds(1) };
        var transport = new PeerTransport(options, inbox, log);
        await transport.StartAsync(new IPEndPoint(IPAddress.Loopback, port), TestContext.Current.CancellationToken);
        return (transport, inbox);
    }

    private static string Address(PeerTransport t) => $"127.0.0.1:{t.Port}";

    [Fact]
    public async Task Messages_of_several_groups_travel_both_ways_over_one_stream()
    {
        await using var pair = await PeerPair<Inbox>.StartAsync(id => Start(id));
        pair.Connect();
        var (one, inboxOne, two, inboxTwo) = pair;

        Assert.True(one.Send(2, 7, new byte[] { 1, 2, 3 }));
        Assert.True(one.Send(2, 9, new byte[] { 4 }));
        Assert.True(two.Send(1, 7, new byte[] { 5, 6 }));

        await Eventually.Until(() => inboxTwo.Messages.Count == 2 && inboxOne.Messages.Count == 1, "messages delivered");
        Assert.Equal([(1UL, 7UL), (1UL, 9UL)], inboxTwo.Messages.Select(m => (m.From, m.Group)));
        Assert.Equal(new byte[] { 1, 2, 3 }, inboxTwo.Messages.First().Raft);
        var back = Assert.Single(inboxOne.Messages);
        Assert.Equal((2UL, 7UL), (back.From, back.Group));
        Assert.Equal(new byte[] { 5, 6 }, back.Raft);
    }

    [Fact]
    public async Task Messages_queued_for_a_peer_go_out_in_one_batch()
    {
        var (one, _) = await Start(1);
        await using var a = one;
        var (two, inboxTwo) = await Start(2);
        await using var b = two;
        const int messages = 300;
        for (var i = 0; i < messages; i++)
        {
            // Many groups' heartbeats to the same node: they must share a send.
            Assert.True(one.Send(2, (ulong)i, new byte[] { (byte)i }));
        }

        one.SetPeer(2, Address(two));
        two.SetPeer(1, Address(one));
        await Eventually.Until(() => inboxTwo.Messages.Count == messages, "all messages delivered");
        Assert.Equal(1, two.ReceivedBatches);
        Assert.Equal(Enumerable.Range(0, messages).Select(i => (ulong)i), inboxTwo.Messages.Select(m => m.Group));
    }

    // No pings during these tests: a ping's write also writes whatever is queued, which would hide a send left unwritten.
    private static readonly TimeSpan NoPings = TimeSpan.FromHours(1);

    [Fact]
    public async Task Held_sends_are_written_only_at_the_release_and_as_one_batch()
    {
        await using var pair = await PeerPair<Inbox>.StartAsync(id => Start(id, pingInterval: NoPings));
        pair.Connect();
        var (one, _, two, inboxTwo) = pair;
        await Eventually.Until(() => one.IsConnected(2) && two.IsConnected(1), "the pair connected");
        const int messages = 50;

        one.HoldSends();
        for (var i = 0; i < messages; i++)
        {
            Assert.True(one.Send(2, (ulong)i, new byte[] { (byte)i }));
        }

        Assert.Equal(0, one.SentBatches(2)); // Written synchronously when not held, so nothing may have gone yet.
        one.ReleaseSends();

        await Eventually.Until(() => inboxTwo.Messages.Count == messages, "all messages delivered");
        Assert.Equal(1, one.SentBatches(2));
        Assert.Equal(1, two.ReceivedBatches);
        Assert.Equal(Enumerable.Range(0, messages).Select(i => (ulong)i), inboxTwo.Messages.Select(m => m.Group));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Messages_sent_from_many_threads_at_once_all_arrive_in_each_senders_order(int seed)
    {
        await using var pair = await PeerPair<Inbox>.StartAsync(id => Start(id, pingInterval: NoPings));
        pair.Connect();
        var (one, _, two, inboxTwo) = pair;
        await Eventually.Until(() => one.IsConnected(2) && two.IsConnected(1), "the pair connected");
        const int senders = 8, perSender = 400;
        var random = new Random(seed);
        var pauses = Enumerable.Range(0, senders).Select(_ => random.Next(0, 50)).ToArray();

        // Each sender alternates bursts and holds at its own seeded rhythm, so sends race drains as they end.
        await Task.WhenAll(Enumerable.Range(0, senders).Select(s => Task.Run(() =>
        {
            for (var i = 0; i < perSender; i++)
            {
                Assert.True(one.Send(2, (ulong)s, BitConverter.GetBytes(i)));
                if ((i + pauses[s]) % 64 == 0)
                {
                    Thread.Yield();
                }
            }
        }, TestContext.Current.CancellationToken)));

        await Eventually.Until(() => inboxTwo.Messages.Count == senders * perSender,
            () => $"all {senders * perSender} messages delivered (seed {seed}; {inboxTwo.Messages.Count} arrived)");
        foreach (var group in inboxTwo.Messages.GroupBy(m => m.Group))
        {
            Assert.Equal(Enumerable.Range(0, perSender), group.Select(m => BitConverter.ToInt32(m.Raft)));
        }
    }

    [Fact]
    public async Task A_heartbeat_bundle_reaches_the_bundle_callback_not_the_message_one()
    {
        await using var pair = await PeerPair<Inbox>.StartAsync(id => Start(id));
        pair.Connect();
        var (one, _, two, inboxTwo) = pair;
        var bundle = HeartbeatBundle.Encode([new CoalescedHeartbeat(3, RaftLedger.Raft.MessageType.Heartbeat, 4, 5, ReadOnlyMemory<byte>.Empty)]);

        Assert.True(one.Send(2, 7, new byte[] { 1 }));
        Assert.True(one.SendHeartbeats(2, bundle));

        await Eventually.Until(() => inboxTwo.Messages.Count == 1 && inboxTwo.Bundles.Count == 1, "message and bundle delivered");
        var received = Assert.Single(inboxTwo.Bundles);
        Assert.Equal(1UL, received.From);
        Assert.Equal(bundle, received.Bundle);
        Assert.Equal(7UL, Assert.Single(inboxTwo.Messages).Group);
    }

    [Fact]
    public async Task A_peer_with_the_wrong_secret_is_refused_and_delivers_nothing()
    {
        var (intruder, _) = await Start(1, secret: "wrong");
        await using var a = intruder;
        var (two, inboxTwo) = await Start(2);
        await using var b = two;
        intruder.Send(2, 1, new byte[] { 42 });
        intruder.SetPeer(2, Address(two));

        await Eventually.Until(() => two.RejectedStreams >= 2, "the intruder's streams are refused (and redialed)");
        Assert.Empty(inboxTwo.Messages);
        Assert.False(two.IsConnected(1));
        Assert.Equal(0, two.ReceivedBatches);
    }

    [Fact]
    public async Task A_wrong_secret_is_warned_once_per_peer_and_interval_on_both_sides_however_often_it_redials()
    {
        var time = new SteppedTimestamps();
        var (intruderLog, twoLog) = (new CapturedLog(), new CapturedLog());
        var (intruder, _) = await Start(1, secret: "wrong", time: time, log: intruderLog);
        await using var a = intruder;
        var (two, _) = await Start(2, time: time, log: twoLog);
        await using var b = two;
        intruder.SetPeer(2, Address(two));

        // Several redials are refused while the clock stands still: one warning on each side.
        await Eventually.Until(() => two.RejectedStreams >= 3 && intruder.RefusedDials >= 3, "several of the intruder's redials refused");
        var dialerWarning = Assert.Single(intruderLog.At(LogLevel.Warning, "refused"));
        Assert.Contains($"peer node 2 at {Address(two)} refused", dialerWarning, StringComparison.Ordinal);
        Assert.Contains("start every node with the same --secret", dialerWarning, StringComparison.Ordinal);
        var acceptorWarning = Assert.Single(twoLog.At(LogLevel.Warning, "refused"));
        Assert.Contains("from 127.0.0.1:", acceptorWarning, StringComparison.Ordinal);
        Assert.Contains("claiming to be node 1", acceptorWarning, StringComparison.Ordinal);
        Assert.Contains("start every node with the same --secret", acceptorWarning, StringComparison.Ordinal);

        // Once the interval has passed, the next refusal is warned about again (once).
        time.Advance(TimeSpan.FromSeconds(RefusalWarnings.IntervalSeconds));
        var (refused, dials) = (two.RejectedStreams, intruder.RefusedDials);
        await Eventually.Until(() => two.RejectedStreams >= refused + 2 && intruder.RefusedDials >= dials + 2, "two more redials refused");
        Assert.Equal(2, intruderLog.At(LogLevel.Warning, "refused").Count);
        Assert.Equal(2, twoLog.At(LogLevel.Warning, "refused").Count);
    }

    [Fact]
    public async Task The_dialer_reconnects_after_the_peer_restarts()
    {
        var (one, _) = await Start(1);
        await using var a = one;
        var (two, inboxTwo) = await Start(2);
        var port = two.Port;
        one.SetPeer(2, Address(two));
        one.Send(2, 1, new byte[] { 1 });
        await Eventually.Until(() => inboxTwo.Messages.Count == 1, "first message delivered");

        await two.DisposeAsync();
        await Eventually.Until(() => !one.IsConnected(2), "the dialer notices the peer is gone");
        var (twoAgain, inboxAgain) = await Start(2, port: port);
        await using var b = twoAgain;
        await Eventually.Until(() => one.IsConnected(2), "the dialer reconnects");
        one.Send(2, 3, new byte[] { 3 });
        await Eventually.Until(() => inboxAgain.Messages.Any(m => m.Group == 3), "a message after reconnect is delivered");
    }

    [Fact]
    public async Task Oversized_messages_and_queue_overflow_are_dropped_and_counted()
    {
        var (one, _) = await Start(1);
        await using var a = one;
        Assert.False(one.Send(2, 1, new byte[TransportOptions.MessageBytesMax + 1]));
        Assert.Equal(1, one.DroppedMessages(2));
        for (var i = 0; i < TransportOptions.QueueMessagesMax; i++)
        {
            Assert.True(one.Send(2, 1, new byte[] { 1 }));
        }

        Assert.False(one.Send(2, 1, new byte[] { 1 }));
        Assert.Equal(2, one.DroppedMessages(2));
    }

    [Fact]
    public void Transport_limits_fit_inside_each_other()
    {
        Assert.True(TransportOptions.BatchBytesMax >= TransportOptions.MessageBytesMax);
        Assert.True(TransportOptions.GrpcMessageBytesMax > TransportOptions.BatchBytesMax);
        Assert.True(TransportOptions.QueueBytesMax >= TransportOptions.BatchBytesMax);
        Assert.True(TransportOptions.SnapshotChunkBytesMax <= TransportOptions.MessageBytesMax);
    }

    [Fact]
    public void Options_without_a_secret_or_with_node_zero_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new TransportOptions { NodeId = 0, Secret = "x" }.Validate());
        Assert.Throws<ArgumentException>(() => new TransportOptions { NodeId = 1, Secret = "" }.Validate());
    }
}
