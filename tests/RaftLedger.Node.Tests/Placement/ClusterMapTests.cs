using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Tests.Placement;

public sealed class ClusterMapTests
{
    private static ClusterMap Map(int shards = 8, int replication = 3, params ulong[] ids) =>
        ClusterMap.Bootstrap([.. (ids.Length > 0 ? ids : [1, 2, 3]).Select(id => new ClusterNode(id, $"127.0.0.1:{7000 + id}", ""))], shards, replication);

    [Fact]
    public void Maps_from_the_same_flags_agree_whatever_their_addresses()
    {
        var moved = Map() with { Nodes = [.. Map().Nodes.Select(n => n with { PeerAddress = "10.0.0.9:7000", ApiAddress = "10.0.0.9:8080" })] };

        Assert.Null(Map().ConfigurationDifference(Map()));
        Assert.Null(Map().ConfigurationDifference(moved));
    }

    [Fact]
    public void Another_shard_count_replication_or_membership_is_named_from_the_running_nodes_side()
    {
        Assert.Equal("4 shards where this node runs 8 (--shards)", Map().ConfigurationDifference(Map(shards: 4)));
        Assert.Equal("replication 2 where this node runs 3 (--replication)", Map().ConfigurationDifference(Map(replication: 2)));
        Assert.Equal("members 1,2,4 where this node has 1,2,3 (--peers)", Map().ConfigurationDifference(Map(8, 3, 1, 2, 4)));
    }

    [Fact]
    public void Another_placement_of_the_same_shards_is_a_difference()
    {
        var map = Map();
        var swapped = map with { Shards = [map.Shards[0] with { Replicas = [.. map.Shards[0].Replicas.Reverse()] }, .. map.Shards.Skip(1)] };

        Assert.StartsWith("shard 0 on nodes ", map.ConfigurationDifference(swapped), StringComparison.Ordinal);
    }
}
