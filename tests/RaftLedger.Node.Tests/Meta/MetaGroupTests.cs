using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using RaftLedger.Node.Host;
using RaftLedger.Node.Meta;
using RaftLedger.Node.Tests.Transport;
using RaftLedger.Raft;

namespace RaftLedger.Node.Tests.Meta;

/// <summary>The meta group (Raft group 0) in running nodes: in this process, over real loopback gRPC, durable storage.</summary>
public sealed class MetaGroupTests : IAsyncLifetime
{
    private readonly string root = Path.Combine(Path.GetTempPath(), "raftledger-meta-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<ulong, NodeHost> nodes = [];
    private Dictionary<ulong, string> peers = [];

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var node in nodes.Values)
        {
            await node.DisposeAsync();
        }

        Directory.Delete(root, recursive: true);
    }

    private async Task StartCluster(int count, int started = int.MaxValue)
    {
        peers = Enumerable.Range(1, count).ToDictionary(i => (ulong)i, _ => $"127.0.0.1:{LoopbackPorts.Free()}");
        foreach (var id in peers.Keys.Take(started))
        {
            nodes[id] = await NodeHost.StartAsync(Options(id), cancel: TestContext.Current.CancellationToken);
        }
    }

    private HostOptions Options(ulong id, string apiAddress = "") => new()
    {
        NodeId = id,
        DataDirectory = Path.Combine(root, $"n{id}"),
        Listen = IPEndPoint.Parse(peers[id]),
        Peers = peers,
        ApiAddress = apiAddress,
        ShardCount = 2,
        Replication = 3,
        Secret = "test-secret",
        TickInterval = TimeSpan.FromMilliseconds(50),
        RequestTimeout = TimeSpan.FromSeconds(10),
        // Compact the meta log at every apply, so a node that missed any meta entry catches up by snapshot.
        MetaSnapshotEntries = 1,
    };


    /// <summary>The meta leader every running voter agrees on, or 0.</summary>
    private ulong AgreedMetaLeader()
    {
        var voters = nodes.Values.Where(n => n.Scheduler.Meta!.Hosted).ToList();
        var leaders = voters.Select(n => n.Scheduler.Meta!.Leader).Distinct().ToList();
        return leaders.Count == 1 && leaders[0] != 0 && nodes.ContainsKey(leaders[0]) && nodes[leaders[0]].Scheduler.Meta!.Role == RaftRole.Leader ? leaders[0] : 0;
    }

    private string Describe() => string.Join("; ", nodes.Values.Select(n =>
        $"node {n.Options.NodeId}: meta {n.Scheduler.Meta}, applied {n.Scheduler.LatestMeta.AppliedIndex}, map {(n.Scheduler.LatestMeta.Map is null ? "none" : "set")}"));

    [Fact]
    public async Task Meta_group_of_five_voters_elects_a_leader_and_all_six_nodes_report_the_same_map()
    {
        await StartCluster(6);
        var voters = MetaState.Voters(peers.Keys);
        Assert.Equal(5, voters.Length);
        Assert.All(nodes.Values, n => Assert.Equal(voters.Contains(n.Options.NodeId), n.Scheduler.Meta!.Hosted));

        await Eventually.Until(() => AgreedMetaLeader() != 0 && nodes.Values.All(n => n.Scheduler.LatestMeta.Map is not null), Describe);
        Assert.Contains(AgreedMetaLeader(), voters);
        var reference = nodes[voters[0]].Scheduler.LatestMeta.Map!;
        Assert.All(nodes.Values, n => Assert.True(n.Map.SameAs(reference), $"node {n.Options.NodeId} has another map"));
        var outsider = nodes.Values.Single(n => !n.Scheduler.Meta!.Hosted);
        Assert.True(outsider.Scheduler.LatestMeta.AppliedIndex > 0, "the node outside the meta group learned the map from a member");

        // The cluster status carries the meta group next to the shards.
        var status = await outsider.Service.GetClusterStatusAsync(TestContext.Current.CancellationToken);
        Assert.NotNull(status.Meta);
        Assert.Equal(voters.Order(), status.Meta!.Members.Order());
    }

    [Fact]
    public async Task Killing_the_meta_leader_elects_another_and_an_address_registration_still_commits()
    {
        var cancel = TestContext.Current.CancellationToken;
        await StartCluster(3);
        await Eventually.Until(() => AgreedMetaLeader() != 0 && nodes.Values.All(n => n.Scheduler.LatestMeta.Map is not null), Describe);
        var leader = AgreedMetaLeader();
        var term = nodes[leader].Scheduler.Meta!.Term;

        await nodes[leader].DisposeAsync();
        nodes.Remove(leader);
        await Eventually.Until(() => AgreedMetaLeader() is var next && next != 0 && next != leader && nodes[next].Scheduler.Meta!.Term > term, Describe);

        // The old leader returns with a new API address: it registers it through the new meta leader.
        var address = $"127.0.0.1:{LoopbackPorts.Free()}";
        nodes[leader] = await NodeHost.StartAsync(Options(leader, apiAddress: address), cancel: cancel);
        await Eventually.Until(() => nodes.Values.All(n => n.Map.Node(leader)!.ApiAddress == address), Describe);
        Assert.All(nodes.Values, n => Assert.Equal(peers[leader], n.Map.Node(leader)!.PeerAddress));
    }

    [Fact]
    public async Task A_restarted_node_resumes_the_meta_state_from_disk_and_a_lagging_one_catches_up_by_snapshot()
    {
        var cancel = TestContext.Current.CancellationToken;
        await StartCluster(3);
        await Eventually.Until(() => nodes.Values.All(n => n.Scheduler.LatestMeta.Map is not null), Describe);

        // Node 3 stops; while it is away node 2 registers a new address, and the meta log is compacted past it.
        await nodes[3].DisposeAsync();
        nodes.Remove(3);
        await nodes[2].DisposeAsync();
        var address = $"127.0.0.1:{LoopbackPorts.Free()}";
        nodes[2] = await NodeHost.StartAsync(Options(2, apiAddress: address), cancel: cancel);
        await Eventually.Until(() => nodes.Values.All(n => n.Map.Node(2)!.ApiAddress == address), Describe);

        // Node 3 restarts: at once it has the meta state it saved (before any round ran)...
        var saved = File.ReadAllText(Path.Combine(root, "n3", "cluster.json"));
        Assert.Contains("\"MetaBootstrapped\": true", saved);
        nodes[3] = await NodeHost.StartAsync(Options(3), cancel: cancel);
        var resumed = nodes[3].Scheduler.LatestMeta;
        Assert.NotNull(resumed.Map);
        Assert.True(resumed.AppliedIndex > 0);
        Assert.NotEqual(address, resumed.Map!.Node(2)!.ApiAddress);

        // ...then gets what it missed from the leader as a snapshot (its log is behind the leader's compaction).
        await Eventually.Until(() => nodes[3].Map.Node(2)!.ApiAddress == address, Describe);
        Assert.True(nodes[3].Scheduler.SnapshotCounts.Installed >= 1, "node 3 installed a meta snapshot");
    }

    [Fact]
    public async Task A_node_started_with_other_shards_than_the_committed_map_stops_with_one_critical_line_and_the_others_serve_on()
    {
        var cancel = TestContext.Current.CancellationToken;
        await StartCluster(3, started: 2);
        await Eventually.Until(() => nodes.Values.All(n => n.Scheduler.LatestMeta.Map is { ShardCount: 2 } && n.Service.IsReady), Describe);

        // Node 3 joins with --shards 4: it learns the committed 2-shard map through the meta log and stops, as a process would.
        var log = new CapturedLog();
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        bounded.CancelAfter(Eventually.DefaultTimeout); // Were it never to stop, the runner returns 0 and the test fails.
        var exitCode = await NodeRunner.RunAsync(Options(3) with { ShardCount = 4 }, api: null, log, bounded.Token);

        Assert.Equal(1, exitCode);
        var (level, critical) = Assert.Single(log.Lines, l => l.Level >= LogLevel.Error);
        Assert.Equal(LogLevel.Critical, level);
        Assert.Contains("node 3 stops: the cluster map committed at meta index", critical, StringComparison.Ordinal);
        Assert.Contains("has 2 shards where this node runs 4 (--shards)", critical, StringComparison.Ordinal);
        Assert.Contains("stop all nodes, wipe their data folders and start them again with the same flags", critical, StringComparison.Ordinal);
        // It stopped before saving the cluster's map over its own (a restart with the same flags stops again).
        Assert.Contains("\"ShardCount\": 4", File.ReadAllText(Path.Combine(root, "n3", "cluster.json")), StringComparison.Ordinal);

        // The nodes that agree with the map serve on.
        await Eventually.Until(() => nodes.Values.All(n => n.Service.IsReady), Describe);
        Assert.All(nodes.Values, n => Assert.False(n.Scheduler.Completion.IsCompleted, $"node {n.Options.NodeId} still runs"));
    }
}
