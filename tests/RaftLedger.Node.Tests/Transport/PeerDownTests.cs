using System.Collections.Concurrent;
using System.Net;
using RaftLedger.Node.Transport;

namespace RaftLedger.Node.Tests.Transport;

/// <summary>The transport reports a peer whose stream breaks or whose redials are refused, once per outage.</summary>
public sealed class PeerDownTests
{
    private sealed class Sink : IPeerMessageSink
    {
        public ConcurrentQueue<ulong> Down { get; } = new();

        public void OnMessage(ulong fromNode, ulong groupId, ReadOnlyMemory<byte> raft)
        {
        }

        public void OnPeerDown(ulong node) => Down.Enqueue(node);
    }

    private static async Task<(PeerTransport Transport, Sink Sink)> Start(ulong nodeId, int port = 0)
    {
        var sink = new Sink();
        var transport = new PeerTransport(new TransportOptions { NodeId = nodeId, Secret = "s3cret" }, sink);
        await transport.StartAsync(new IPEndPoint(IPAddress.Loopback, port), TestContext.Current.CancellationToken);
        return (transport, sink);
    }

    private static string Address(PeerTransport t) => $"127.0.0.1:{t.Port}";

    private static async Task Connect(PeerTransport one, PeerTransport two)
    {
        one.SetPeer(2, Address(two));
        two.SetPeer(1, Address(one));
        await Eventually.Until(() => one.IsConnected(2) && two.IsConnected(1), "both sides attach the stream");
    }

    [Fact]
    public async Task The_dialer_reports_a_peer_that_goes_away_once_and_again_after_it_returned()
    {
        var (one, sink) = await Start(1);
        await using var a = one;
        var (two, _) = await Start(2);
        var port = two.Port;
        await Connect(one, two);
        Assert.Empty(sink.Down);
        Assert.False(one.IsReportedDown(2));

        await two.DisposeAsync();
        await Eventually.Until(() => sink.Down.Count == 1, "node 1 reports node 2 down");
        Assert.Equal([2UL], sink.Down);
        Assert.True(one.IsReportedDown(2)); // The router forwards nothing to it now (ShardRequestRouter).

        // Redials are refused meanwhile; they do not report again. Once the peer is back and gone again, they do.
        var (again, _) = await Start(2, port);
        again.SetPeer(1, Address(one));
        await Eventually.Until(() => one.IsConnected(2), "node 1 redials node 2");
        Assert.Single(sink.Down);
        Assert.False(one.IsReportedDown(2));
        await again.DisposeAsync();
        await Eventually.Until(() => sink.Down.Count == 2, "node 1 reports node 2 down again");
    }

    [Fact]
    public async Task The_accepting_side_reports_a_dialer_that_goes_away()
    {
        var (one, _) = await Start(1);
        var (two, sink) = await Start(2);
        await using var b = two;
        await Connect(one, two);

        await one.DisposeAsync();
        await Eventually.Until(() => sink.Down.Count == 1, "node 2 reports node 1 down");
        Assert.Equal([1UL], sink.Down);
        Assert.True(two.IsReportedDown(1));
    }

    [Fact]
    public async Task A_node_that_stops_does_not_report_its_peers_down()
    {
        var (one, sinkOne) = await Start(1);
        var (two, sinkTwo) = await Start(2);
        await using var b = two;
        await Connect(one, two);

        await one.DisposeAsync();
        await Eventually.Until(() => sinkTwo.Down.Count == 1, "the survivor notices");
        Assert.Empty(sinkOne.Down);
    }
}
