using System.Net;
using RaftLedger.Cli;
using RaftLedger.Cli.Processes;

namespace RaftLedger.Node.Tests.Cluster;

/// <summary>The `raftledger node` flags and the local cluster's layout, without starting processes.</summary>
public sealed class NodeFlagsTests
{
    [Fact]
    public void Peers_flag_parses_ids_and_endpoints()
    {
        Assert.True(NodeCommand.TryPeers("1=127.0.0.1:7101, 2=localhost:7102", "--peers", out var peers, out var error), error);

        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 7101), peers![1]);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 7102), peers[2]);
    }

    [Fact]
    public void A_stop_requested_after_the_node_stopped_is_a_no_op()
    {
        var stop = new CancellationTokenSource();
        NodeCommand.RequestStop(stop);
        Assert.True(stop.IsCancellationRequested);

        stop.Dispose();
        // A late SIGTERM: before, Cancel threw ObjectDisposedException on the signal's thread and the node crashed.
        Assert.Null(Record.Exception(() => NodeCommand.RequestStop(stop)));
    }

    [Theory]
    [InlineData("1=127.0.0.1:7101,1=127.0.0.1:7102", "lists node 1 twice")]
    [InlineData("0=127.0.0.1:7101", "must look like 1=127.0.0.1:7101")]
    [InlineData("a=127.0.0.1:7101", "must look like 1=127.0.0.1:7101")]
    [InlineData("1=127.0.0.1", "must be an IP address and port")]
    [InlineData("", "is empty")]
    public void Bad_peers_flag_is_refused_with_a_message_naming_the_problem(string text, string expected)
    {
        Assert.False(NodeCommand.TryPeers(text, "--peers", out _, out var error));

        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0UL, 8, 3, "--id must be 1 or more")]
    [InlineData(4UL, 8, 3, "does not list this node's id 4")]
    [InlineData(1UL, 0, 3, "--shards must be from 1 to 4096")]
    [InlineData(1UL, 8, 4, "--replication must be from 1 to the number of peers (3)")]
    public void Impossible_node_options_are_refused(ulong id, int shards, int replication, string expected)
    {
        var options = Options(id, shards, replication);

        Assert.False(NodeCommand.Validate(options, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Valid_node_options_map_to_host_options()
    {
        var options = Options(2, 8, 3) with
        {
            Secret = "s3cret",
            Grpc = new IPEndPoint(IPAddress.Loopback, 9102),
            GrpcPeers = new Dictionary<ulong, IPEndPoint> { [3] = new(IPAddress.Loopback, 9103) },
        };

        Assert.True(NodeCommand.Validate(options, out var error), error);
        var host = NodeLauncher.ToHostOptions(options);
        Assert.Equal(2ul, host.NodeId);
        Assert.Equal("127.0.0.1:7103", host.Peers[3]);
        Assert.Equal("s3cret", host.Secret);
        Assert.Equal(8, host.ShardCount);
        Assert.Equal("127.0.0.1:9102", host.GrpcAddress);
        Assert.Equal("127.0.0.1:9103", host.GrpcAddresses[3]);
    }

    [Fact]
    public void Local_cluster_with_a_base_port_uses_the_documented_port_layout()
    {
        var root = Path.Combine(Path.GetTempPath(), $"raftledger-layout-{Guid.NewGuid():N}");
        try
        {
            var cluster = LocalCluster.Create(new LocalClusterOptions { DataRoot = root, NodeCount = 3, BasePort = 7100 });
            var node = cluster.Node(2);
            var arguments = cluster.NodeArguments(2);

            Assert.Equal(7102, node.Peer.Port);
            Assert.Equal(8102, node.Api.Port);
            Assert.Equal(9102, node.Grpc.Port);
            Assert.Equal("1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103", arguments[arguments.ToList().IndexOf("--peers") + 1]);
            Assert.Equal(File.ReadAllText(Path.Combine(root, "cluster-secret")), arguments[arguments.ToList().IndexOf("--secret") + 1]);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Local_cluster_on_a_folder_that_holds_a_cluster_keeps_its_ports_or_refuses_others()
    {
        var root = Path.Combine(Path.GetTempPath(), $"raftledger-layout-{Guid.NewGuid():N}");
        try
        {
            // As a first start with free ports left it: node 2's folder holds the map (node 1's folder may be gone).
            Directory.CreateDirectory(Path.Combine(root, "n2"));
            File.WriteAllText(Path.Combine(root, "n2", "cluster.json"), StoredMap(peer: 17301, api: 18301, grpc: 19301));

            var again = LocalCluster.Create(new LocalClusterOptions { DataRoot = root, NodeCount = 3 });
            Assert.Equal([17302, 18302, 19302], [again.Node(2).Peer.Port, again.Node(2).Api.Port, again.Node(2).Grpc.Port]);
            Assert.Equal(19303, again.Node(3).Grpc.Port);

            var sameBase = LocalCluster.Create(new LocalClusterOptions { DataRoot = root, NodeCount = 3, BasePort = 17300 });
            Assert.Equal(18301, sameBase.Node(1).Api.Port);

            var refused = Assert.Throws<LocalClusterException>(() => LocalCluster.Create(new LocalClusterOptions { DataRoot = root, NodeCount = 3, BasePort = 7100 }));
            Assert.Contains("--base-port 0", refused.Message, StringComparison.Ordinal);
            Assert.Throws<LocalClusterException>(() => LocalCluster.Create(new LocalClusterOptions { DataRoot = root, NodeCount = 2 }));

            File.WriteAllText(Path.Combine(root, "n2", "cluster.json"), "garbage{");
            var corrupt = Assert.Throws<LocalClusterException>(() => LocalCluster.Create(new LocalClusterOptions { DataRoot = root, NodeCount = 3 }));
            Assert.Contains("is not a readable cluster map", corrupt.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>A stored cluster map of nodes 1–3 in a node's cluster.json, with the base-port layout from the given bases.</summary>
    private static string StoredMap(int peer, int api, int grpc)
    {
        var nodes = string.Join(",", Enumerable.Range(1, 3).Select(i =>
            $$"""{"Id":{{i}},"PeerAddress":"127.0.0.1:{{peer + i - 1}}","ApiAddress":"127.0.0.1:{{api + i - 1}}","GrpcAddress":"127.0.0.1:{{grpc + i - 1}}"}"""));
        return $$"""{"Nodes":[{{nodes}}],"ShardCount":8,"Replication":3,"Shards":[]}""";
    }

    [Fact]
    public void Free_ports_are_distinct()
    {
        var ports = FreePorts.Take(9);

        Assert.Equal(9, ports.Distinct().Count());
        Assert.All(ports, port => Assert.InRange(port, 1, 65535));
    }

    private static NodeLaunchOptions Options(ulong id, int shards, int replication) => new()
    {
        NodeId = id,
        DataDirectory = "./data/n1",
        Listen = new IPEndPoint(IPAddress.Loopback, 7101),
        Api = new IPEndPoint(IPAddress.Loopback, 8101),
        Peers = new Dictionary<ulong, IPEndPoint>
        {
            [1] = new(IPAddress.Loopback, 7101),
            [2] = new(IPAddress.Loopback, 7102),
            [3] = new(IPAddress.Loopback, 7103),
        },
        ShardCount = shards,
        Replication = replication,
    };
}
