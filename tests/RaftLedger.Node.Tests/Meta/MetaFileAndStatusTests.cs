using System.Text.Json;
using RaftLedger.Cli.Client;
using RaftLedger.Node.Api;
using RaftLedger.Node.Host;
using RaftLedger.Node.Meta;
using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Tests.Meta;

/// <summary>cluster.json as the saved meta state, and the meta group in the cluster status answers.</summary>
public sealed class MetaFileAndStatusTests : IDisposable
{
    private readonly string directory = Path.Combine(Path.GetTempPath(), "raftledger-metafile-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static ClusterMap Map(string peerPrefix = "127.0.0.1:71") => ClusterMap.Bootstrap(
        Enumerable.Range(1, 3).Select(i => new ClusterNode((ulong)i, $"{peerPrefix}{i:00}", $"127.0.0.1:81{i:00}", "")).ToList(), 4, 3);

    [Fact]
    public void A_new_data_folder_gets_the_bootstrap_map_and_an_empty_meta_state()
    {
        var (map, meta, created, ignored) = ClusterMapFile.LoadOrCreate(directory, Map());
        Assert.True(created);
        Assert.Empty(ignored);
        Assert.True(map.SameAs(Map()));
        Assert.Null(meta.Map);
        Assert.Equal(0UL, meta.AppliedIndex);
    }

    [Fact]
    public void A_saved_meta_state_is_resumed_with_its_applied_index_and_the_nodes_own_peer_addresses()
    {
        var local = Map();
        ClusterMapFile.LoadOrCreate(directory, local);
        // The meta group's map was bootstrapped by another node, which reaches the peers at other addresses.
        var state = new MetaState(null, 0, 0);
        state.Apply(1, 1, MetaCodec.Encode(MetaCommand.Bootstrap(Map(peerPrefix: "10.0.0.9:71"))));
        state.Apply(2, 1, MetaCodec.Encode(MetaCommand.SetNodeAddresses(new ClusterNode(2, "10.0.0.2:7000", "10.0.0.2:8000", "10.0.0.2:9000"))));
        ClusterMapFile.Save(directory, local, state);

        var (map, meta, created, ignored) = ClusterMapFile.LoadOrCreate(directory, Map());
        Assert.False(created);
        Assert.Empty(ignored); // The node's own --peers did not change.
        Assert.Equal((2UL, 1UL), (meta.AppliedIndex, meta.AppliedTerm));
        Assert.Equal("10.0.0.2:8000", meta.Map!.Node(2)!.ApiAddress);
        Assert.Equal("10.0.0.9:7101", meta.Map.Node(1)!.PeerAddress);
        Assert.Equal(local.Nodes.Select(n => n.PeerAddress), map.Nodes.Select(n => n.PeerAddress)); // What this node dials.
    }

    [Fact]
    public void A_file_from_before_the_meta_group_reads_as_an_empty_meta_state_and_flags_that_disagree_are_reported()
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, ClusterMapFile.FileName), JsonSerializer.Serialize(Map()));
        var (map, meta, created, ignored) = ClusterMapFile.LoadOrCreate(directory, ClusterMap.Bootstrap(Map().Nodes, 8, 3));
        Assert.False(created);
        Assert.True(map.SameAs(Map()));
        Assert.Null(meta.Map);
        Assert.Equal(0UL, meta.AppliedIndex);
        Assert.Contains(ignored, flag => flag.StartsWith("--shards 8", StringComparison.Ordinal));
    }

    [Fact]
    public void Cluster_status_carries_the_meta_group_in_json_and_grpc_and_reads_back()
    {
        var status = new ClusterStatus([new NodeInfo(1, "a:1", "p:1", true)], [new ShardInfo(0, [1], 1, 2, 3, 3)])
        {
            Meta = new MetaGroupInfo([3, 1, 2], 2, 7, 11, 10),
        };
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            JsonResponseWriter.WriteCluster(writer, status);
        }

        var read = StatusJson.ReadCluster(stream.ToArray());
        Assert.NotNull(read.Meta);
        Assert.Equal(status.Meta, read.Meta with { Members = status.Meta!.Members });
        Assert.Equal(status.Meta.Members, read.Meta!.Members);
        Assert.Equal(1UL, read.Shards[0].Leader); // The existing fields are unchanged.

        var grpc = GrpcConvert.FromCluster(status);
        Assert.Equal([3UL, 1UL, 2UL], grpc.Meta.Members);
        Assert.Equal((2UL, 7UL, 11UL, 10UL), (grpc.Meta.Leader, grpc.Meta.Term, grpc.Meta.CommitIndex, grpc.Meta.AppliedIndex));
        Assert.Null(GrpcConvert.FromCluster(status with { Meta = null }).Meta);
    }
}
