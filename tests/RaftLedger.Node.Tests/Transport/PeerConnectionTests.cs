using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using RaftLedger.Node.Transport;
using RaftLedger.Node.Transport.Protos;

namespace RaftLedger.Node.Tests.Transport;

/// <summary>The plain-TCP peer connection: its hello, its frames, its liveness, and gRPC on the same port.</summary>
public sealed class PeerConnectionTests
{
    private sealed class Inbox : IPeerMessageSink
    {
        public ConcurrentQueue<(ulong From, ulong Group, byte[] Raft)> Messages { get; } = new();

        public ConcurrentQueue<(ulong From, int FromShard, ulong Group, byte[] Message)> ShardMessages { get; } = new();

        public ConcurrentQueue<ulong> Down { get; } = new();

        public void OnMessage(ulong fromNode, ulong groupId, ReadOnlyMemory<byte> raft) =>
            Messages.Enqueue((fromNode, groupId, raft.ToArray()));

        public void OnShardMessage(ulong fromNode, int fromShard, ulong groupId, ReadOnlyMemory<byte> message) =>
            ShardMessages.Enqueue((fromNode, fromShard, groupId, message.ToArray()));

        public void OnPeerDown(ulong node) => Down.Enqueue(node);
    }

    private sealed class Echo : IForwardHandler
    {
        public Task<ForwardResponse> HandleAsync(ForwardRequest request, CancellationToken cancel) =>
            Task.FromResult(new ForwardResponse { Status = 0, Payload = request.Payload });
    }

    private static async Task<(PeerTransport Transport, Inbox Inbox)> Start(ulong nodeId, string secret = "s3cret", TimeSpan? pingInterval = null)
    {
        var inbox = new Inbox();
        var options = new TransportOptions { NodeId = nodeId, Secret = secret, PingInterval = pingInterval ?? TimeSpan.FromSeconds(1) };
        var transport = new PeerTransport(options, inbox);
        await transport.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), TestContext.Current.CancellationToken);
        return (transport, inbox);
    }

    private static string Address(PeerTransport t) => $"127.0.0.1:{t.Port}";

    private static async Task<Socket> Dial(int port)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port, TestContext.Current.CancellationToken);
        return socket;
    }

    private static byte[] Hello(ulong nodeId, string secret)
    {
        var output = new ArrayBufferWriter<byte>();
        PeerFrames.WriteHello(output, nodeId, System.Text.Encoding.UTF8.GetBytes(secret));
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Reads until the peer closes (or <paramref name="max"/> bytes); what arrived.</summary>
    private static async Task<byte[]> ReadUntilClosed(Socket socket, int max = 64)
    {
        var received = new List<byte>();
        var buffer = new byte[max];
        int read;
        try
        {
            while (received.Count < max && (read = await socket.ReceiveAsync(buffer, SocketFlags.None, TestContext.Current.CancellationToken)) > 0)
            {
                received.AddRange(buffer.AsSpan(0, read).ToArray());
            }
        }
        catch (SocketException)
        {
            // A reset instead of a close also ends the connection.
        }

        return [.. received];
    }

    [Fact]
    public async Task A_hello_with_the_wrong_secret_is_answered_refused_closed_and_counted()
    {
        var (two, inbox) = await Start(2);
        await using var _ = two;
        using var socket = await Dial(two.Port);

        await socket.SendAsync(Hello(1, "wrong"), SocketFlags.None, TestContext.Current.CancellationToken);

        Assert.Equal(new[] { (byte)PeerHelloAnswer.WrongSecret }, await ReadUntilClosed(socket));
        Assert.Equal(1, two.RejectedStreams);
        Assert.Empty(inbox.Messages);
        Assert.Equal(0, two.ReceivedBatches);
        Assert.False(two.IsConnected(1));
    }

    [Fact]
    public async Task A_hello_from_the_servers_own_node_id_is_refused()
    {
        var (two, _) = await Start(2);
        await using var _ = two;
        using var socket = await Dial(two.Port);

        await socket.SendAsync(Hello(2, "s3cret"), SocketFlags.None, TestContext.Current.CancellationToken);

        Assert.Equal(new[] { (byte)PeerHelloAnswer.BadNodeId }, await ReadUntilClosed(socket));
        Assert.Equal(1, two.RejectedStreams);
    }

    [Fact]
    public async Task A_frame_length_beyond_the_limit_closes_the_connection_and_delivers_nothing()
    {
        var (two, inbox) = await Start(2);
        await using var _ = two;
        using var socket = await Dial(two.Port);
        var length = new byte[PeerFrames.LengthBytes];
        BinaryPrimitives.WriteUInt32BigEndian(length, PeerFrames.FrameBytesMax + 1);

        // The bad length goes only after the answer arrived: a server that aborts the connection may drop an answer it
        // had not yet written to the socket, so sending both at once would make the answer's arrival a race.
        await socket.SendAsync(Hello(1, "s3cret"), SocketFlags.None, TestContext.Current.CancellationToken);
        Assert.Equal(new[] { (byte)PeerHelloAnswer.Accepted }, await ReadUntilClosed(socket, max: 1));
        await socket.SendAsync(length, SocketFlags.None, TestContext.Current.CancellationToken);

        Assert.Empty(await ReadUntilClosed(socket));
        Assert.Empty(inbox.Messages);
        await Eventually.Until(() => inbox.Down.Contains(1UL), "the server reports the broken peer down");
    }

    [Fact]
    public async Task Messages_larger_than_kestrels_input_buffer_travel_both_ways()
    {
        await using var pair = await PeerPair<Inbox>.StartAsync(id => Start(id));
        pair.Connect();
        var (one, inboxOne, two, inboxTwo) = pair;
        var large = new byte[3 * 1024 * 1024];
        new Random(7).NextBytes(large);

        Assert.True(one.Send(2, 4, large));
        Assert.True(two.Send(1, 5, large));

        await Eventually.Until(() => inboxOne.Messages.Count == 1 && inboxTwo.Messages.Count == 1, "both large messages delivered");
        Assert.Equal(large, Assert.Single(inboxTwo.Messages).Raft);
        Assert.Equal(large, Assert.Single(inboxOne.Messages).Raft);
    }

    [Fact]
    public async Task Cross_shard_messages_keep_their_shard_and_group()
    {
        await using var pair = await PeerPair<Inbox>.StartAsync(id => Start(id));
        pair.Connect();
        var (one, _, two, inboxTwo) = pair;

        Assert.True(one.SendShardMessage(2, 3, 6, new byte[] { 9, 8 }));
        Assert.True(one.Send(2, 6, new byte[] { 1 }));

        await Eventually.Until(() => inboxTwo.ShardMessages.Count == 1 && inboxTwo.Messages.Count == 1, "both delivered");
        var shard = Assert.Single(inboxTwo.ShardMessages);
        Assert.Equal((1UL, 3, 6UL), (shard.From, shard.FromShard, shard.Group));
        Assert.Equal(new byte[] { 9, 8 }, shard.Message);
        Assert.Equal(2, two.ReceivedMessages);
    }

    [Fact]
    public async Task A_peer_that_answers_the_hello_then_goes_silent_is_reported_down()
    {
        var (one, inbox) = await Start(1, pingInterval: TimeSpan.FromMilliseconds(100));
        await using var _ = one;
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        one.Send(2, 1, new byte[] { 1 });
        one.SetPeer(2, listener.LocalEndpoint.ToString()!);

        // The silent peer takes the hello and answers it, reads the first frame, then neither reads nor writes again.
        using var silent = await listener.AcceptSocketAsync(TestContext.Current.CancellationToken);
        var hello = Hello(1, "s3cret");
        Assert.Equal(hello, await ReceiveExactly(silent, hello.Length));
        await silent.SendAsync(new[] { (byte)PeerHelloAnswer.Accepted }, SocketFlags.None, TestContext.Current.CancellationToken);
        var length = BinaryPrimitives.ReadUInt32BigEndian(await ReceiveExactly(silent, PeerFrames.LengthBytes));
        Assert.Equal((uint)(PeerFrames.MessageHeaderBytes + 1), length);

        await Eventually.Until(() => inbox.Down.Contains(2UL), "the dialer declares the silent peer down");
        Assert.False(one.IsConnected(2));
    }

    [Fact]
    public async Task A_peer_that_accepts_and_never_answers_the_hello_is_reported_down()
    {
        var (one, inbox) = await Start(1, pingInterval: TimeSpan.FromMilliseconds(100));
        await using var _ = one;
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        one.SetPeer(2, listener.LocalEndpoint.ToString()!);

        using var silent = await listener.AcceptSocketAsync(TestContext.Current.CancellationToken);

        await Eventually.Until(() => inbox.Down.Contains(2UL), "the dialer gives up on the hello");
        Assert.False(one.IsConnected(2));
    }

    [Fact]
    public async Task Forwarded_requests_use_grpc_on_the_same_port_as_the_peer_connection()
    {
        var (one, _) = await Start(1);
        await using var a = one;
        var (two, inboxTwo) = await Start(2);
        await using var b = two;
        two.ForwardHandler = new Echo();
        one.SetPeer(2, Address(two));
        two.SetPeer(1, Address(one));
        one.Send(2, 1, new byte[] { 1 });
        await Eventually.Until(() => inboxTwo.Messages.Count == 1, "a peer message is delivered");

        var response = await one.ForwardAsync(2, new ForwardRequest { Shard = 1, Kind = 2, Payload = ByteString.CopyFrom(7, 7) }, TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(new byte[] { 7, 7 }, response.Payload.ToByteArray());
        Assert.True(one.IsConnected(2));
    }

    [Fact]
    public async Task The_dialer_follows_a_peer_to_its_new_address()
    {
        var (one, _) = await Start(1);
        await using var a = one;
        var (two, _) = await Start(2);
        one.SetPeer(2, Address(two));
        await Eventually.Until(() => one.IsConnected(2), "connected at the first address");
        var (moved, inboxMoved) = await Start(2);
        await using var b = moved;

        one.SetPeer(2, Address(moved));
        await two.DisposeAsync();
        // Node 1 only dials node 2, so once the moved peer sees it, node 1's one connection is the new one.
        await Eventually.Until(() => moved.IsConnected(1) && one.IsConnected(2), "redialed at the new address");
        Assert.True(one.Send(2, 4, new byte[] { 4 }));

        await Eventually.Until(() => inboxMoved.Messages.Any(m => m.Group == 4), "a message reaches the moved peer");
    }

    private static async Task<byte[]> ReceiveExactly(Socket socket, int bytes)
    {
        var buffer = new byte[bytes];
        var filled = 0;
        while (filled < bytes)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, TestContext.Current.CancellationToken);
            Assert.True(read > 0, "the transport closed the connection early");
            filled += read;
        }

        return buffer;
    }
}
