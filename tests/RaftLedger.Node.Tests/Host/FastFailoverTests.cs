using System.Net;
using System.Net.Sockets;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Node.Host;
using RaftLedger.Node.Tests.Transport;

namespace RaftLedger.Node.Tests.Host;

/// <summary>
/// Fast failover: when a leader's node goes away, the survivors forget it and one campaigns at once instead of
/// waiting out the election timeout.
/// </summary>
public sealed class FastFailoverTests
{
    [Theory]
    [InlineData(new ulong[] { 1, 2, 3 }, 1UL, 2UL, 0)]
    [InlineData(new ulong[] { 1, 2, 3 }, 1UL, 3UL, 1)]
    [InlineData(new ulong[] { 1, 2, 3 }, 2UL, 1UL, 0)]
    [InlineData(new ulong[] { 1, 2, 3 }, 2UL, 3UL, 1)]
    [InlineData(new ulong[] { 3, 1, 2 }, 3UL, 2UL, 1)]
    [InlineData(new ulong[] { 5, 4, 3, 2, 1 }, 4UL, 1UL, 3)]
    public void Survivors_campaign_in_placement_order_without_the_dead_node(ulong[] replicas, ulong dead, ulong self, int rank) =>
        Assert.Equal(rank, MultiRaftHost.SurvivorRank(replicas, dead, self));

    [Fact]
    public void Survivor_ranks_are_distinct_so_two_survivors_never_campaign_together()
    {
        ulong[] replicas = [4, 2, 7, 1, 9];
        foreach (var dead in replicas)
        {
            var ranks = replicas.Where(r => r != dead).Select(r => MultiRaftHost.SurvivorRank(replicas, dead, r)).ToList();
            Assert.Equal(Enumerable.Range(0, replicas.Length - 1), ranks);
        }
    }

    [Theory]
    [InlineData(0, -1)]
    [InlineData(99, -1)]
    [InlineData(100, 0)]
    [InlineData(299, 0)]
    [InlineData(300, 1)]
    [InlineData(1100, 5)]
    public void Failover_slots_open_after_the_delay_one_per_stagger(int elapsedMilliseconds, int slot) =>
        Assert.Equal(slot, MultiRaftHost.FailoverSlot(TimeSpan.FromMilliseconds(elapsedMilliseconds), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200)));

    [Fact]
    public void Failover_delays_must_be_shorter_than_the_election_timeout()
    {
        var peers = new Dictionary<ulong, string> { [1] = "127.0.0.1:1" };
        HostOptions Options(int delay, int stagger) => new()
        {
            NodeId = 1,
            DataDirectory = "unused",
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Peers = peers,
            FailoverCampaignDelayTicks = delay,
            FailoverCampaignStaggerTicks = stagger,
        };

        Options(1, 2).Validate();
        Assert.Throws<ArgumentException>(() => Options(0, 2).Validate());
        Assert.Throws<ArgumentException>(() => Options(1, 0).Validate());
        Assert.Throws<ArgumentException>(() => Options(5, 5).Validate());
    }

    [Fact]
    public async Task Survivors_elect_a_new_leader_by_failover_campaign_when_the_leader_node_stops()
    {
        var cancel = TestContext.Current.CancellationToken;
        var root = Path.Combine(Path.GetTempPath(), "raftledger-failover-" + Guid.NewGuid().ToString("N"));
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
            var term = nodes[1].Scheduler.View(0).Term;
            Assert.NotEqual(0UL, leader);
            Assert.All(nodes.Values, n => Assert.Equal(0, n.Scheduler.FailoverCampaignsStarted));

            await nodes[leader].DisposeAsync();
            nodes.Remove(leader);
            var survivors = nodes.Values.ToArray();
            await Eventually.Until(
                () => survivors.All(n => n.Scheduler.View(0) is { Leader: not 0 } v && v.Leader != leader && v.Term > term),
                "shard 0 elects a new leader among the survivors");
            // The election came from a failover campaign (a natural one needs 20+ ticks of silence first).
            Assert.True(survivors.Sum(n => n.Scheduler.FailoverCampaignsStarted) >= 1);

            var (a, b) = (FirstAccountOn(0, 1), FirstAccountOn(0, 2));
            var accounts = await survivors[0].Service.CreateAccountsAsync(new[] { new Account { Id = a, Ledger = 1, Code = 1 }, new Account { Id = b, Ledger = 1, Code = 1 } }, cancel);
            Assert.True(accounts.IsOk, accounts.Detail);
            var transfer = await survivors[1].Service.CreateTransfersAsync(new[] { new Transfer { Id = 1, DebitAccountId = a, CreditAccountId = b, Amount = 5, Ledger = 1, Code = 1 } }, cancel);
            Assert.True(transfer.IsOk, transfer.Detail);
            Assert.Equal(CreateTransferResult.Created, transfer.Value![0].Status);
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

    private const int Shards = 2;

    private static HostOptions Options(string root, Dictionary<ulong, string> peers, ulong id) => new()
    {
        NodeId = id,
        DataDirectory = Path.Combine(root, $"n{id}"),
        Listen = IPEndPoint.Parse(peers[id]),
        Peers = peers,
        ShardCount = Shards,
        Replication = 3,
        Secret = "test-secret",
        TickInterval = TimeSpan.FromMilliseconds(50),
        ElectionTimeoutTicks = 20,
        RequestTimeout = TimeSpan.FromSeconds(10),
    };

    /// <summary>The <paramref name="nth"/> account id (from 1 up) that routes to <paramref name="shard"/>.</summary>
    private static UInt128 FirstAccountOn(int shard, int nth)
    {
        for (UInt128 id = 1; ; id++)
        {
            if (ShardRouter.ShardOf(id, Shards) == shard && --nth == 0)
            {
                return id;
            }
        }
    }

    [Theory]
    [InlineData(0, 2, 0, false)]
    [InlineData(0, 2, HostOptions.FailoverApplyBacklogEntriesMax, false)]
    [InlineData(0, 2, HostOptions.FailoverApplyBacklogEntriesMax + 1, true)]
    [InlineData(1, 2, 5000, true)]
    [InlineData(2, 2, 5000, false)]
    [InlineData(3, 2, 5000, false)]
    public void A_survivor_with_an_apply_backlog_passes_only_its_first_failover_turn(int slot, int survivors, ulong backlog, bool passes) =>
        Assert.Equal(passes, MultiRaftHost.PassesFailoverTurn(slot, survivors, backlog));
}
