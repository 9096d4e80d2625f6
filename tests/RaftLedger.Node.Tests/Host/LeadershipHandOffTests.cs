using System.Net;
using System.Net.Sockets;
using RaftLedger.Node.Host;
using RaftLedger.Node.Tests.Transport;

namespace RaftLedger.Node.Tests.Host;

/// <summary>A node that stops on purpose hands its leaderships to followers first (thesis §3.10).</summary>
public sealed class LeadershipHandOffTests
{
    [Fact]
    public async Task A_stopping_node_hands_every_group_it_leads_to_a_follower()
    {
        var cancel = TestContext.Current.CancellationToken;
        var root = Path.Combine(Path.GetTempPath(), "raftledger-handoff-" + Guid.NewGuid().ToString("N"));
        var peers = Enumerable.Range(1, 3).ToDictionary(i => (ulong)i, _ => $"127.0.0.1:{LoopbackPorts.Free()}");
        var nodes = new Dictionary<ulong, NodeHost>();
        try
        {
            foreach (var id in peers.Keys)
            {
                nodes[id] = await NodeHost.StartAsync(Options(root, peers, id), cancel: cancel);
            }

            await Eventually.Until(() => nodes.Values.All(n => n.Service.IsReady), "every shard has a leader");
            var leader = nodes[1].Scheduler.View(0).Leader;
            Assert.NotEqual(0UL, leader);

            var stillLed = await nodes[leader].Scheduler.HandOffLeadershipAsync(TimeSpan.FromSeconds(10), cancel);

            Assert.Equal(0, stillLed);
            await Eventually.Until(
                () => Enumerable.Range(0, 2).All(shard => nodes.Values.All(n => n.Scheduler.View(shard).Leader is var l && l != 0 && l != leader)),
                "every node follows a new leader of every shard");
            Assert.All(nodes.Values, n => Assert.Equal(0, n.Scheduler.FailoverCampaignsStarted));
        }
        finally
        {
            foreach (var node in nodes.Values)
            {
                await node.DisposeAsync();
            }

            Directory.Delete(root, recursive: true);
        }
    }

    private static HostOptions Options(string root, Dictionary<ulong, string> peers, ulong id) => new()
    {
        NodeId = id,
        DataDirectory = Path.Combine(root, $"n{id}"),
        Listen = IPEndPoint.Parse(peers[id]),
        Peers = peers,
        ShardCount = 2,
        Replication = 3,
        Secret = "test-secret",
        TickInterval = TimeSpan.FromMilliseconds(50),
        RequestTimeout = TimeSpan.FromSeconds(10),
        // No rebalancing during the test: leadership moves only by the hand-off.
        LeaderBalanceTicks = 1_000_000,
    };

}
