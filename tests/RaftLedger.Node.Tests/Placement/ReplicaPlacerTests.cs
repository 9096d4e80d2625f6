using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Tests.Placement;

public sealed class ReplicaPlacerTests
{
    private static ulong[] Nodes(int count) => Enumerable.Range(1, count).Select(i => (ulong)i).ToArray();

    [Fact]
    public void Replicas_and_leaders_are_balanced_for_every_small_cluster_shape()
    {
        // Exhaustive over the shapes a real cluster uses, rather than random samples: every N ≤ 9, S ≤ 64, R ≤ min(N, 5).
        for (var nodes = 1; nodes <= 9; nodes++)
        {
            for (var shards = 1; shards <= 64; shards++)
            {
                for (var replication = 1; replication <= Math.Min(nodes, 5); replication++)
                {
                    AssertWellPlaced(Nodes(nodes), shards, replication);
                }
            }
        }
    }

    [Theory]
    [InlineData(new ulong[] { 7, 1000, 3, 99999, 42 }, 1024, 3)]
    [InlineData(new ulong[] { 1, 2, 3 }, 4096, 3)]
    [InlineData(new ulong[] { 5, 9, 11, 12, 100, 101, 102 }, 100, 5)]
    public void Large_and_sparse_clusters_are_balanced(ulong[] nodes, int shards, int replication) =>
        AssertWellPlaced(nodes, shards, replication);

    [Fact]
    public void Placement_is_deterministic_and_independent_of_node_order()
    {
        var forward = ReplicaPlacer.Place([1, 2, 3, 4, 5], 32, 3);
        var backward = ReplicaPlacer.Place([5, 4, 3, 2, 1], 32, 3);
        Assert.Equal(forward.Length, backward.Length);
        for (var s = 0; s < forward.Length; s++)
        {
            Assert.Equal(forward[s].Replicas, backward[s].Replicas);
        }
    }

    [Fact]
    public void Adding_a_node_moves_few_replicas()
    {
        // Rendezvous hashing's point: a new node takes about R/N of the replicas, the rest stay put.
        var before = ReplicaPlacer.Place(Nodes(6), 600, 3);
        var after = ReplicaPlacer.Place(Nodes(7), 600, 3);
        var kept = 0;
        for (var s = 0; s < 600; s++)
        {
            kept += before[s].Replicas.Intersect(after[s].Replicas).Count();
        }

        // 1800 replicas; the new node should take about 1800/7 ≈ 257; allow twice that.
        Assert.True(1800 - kept <= 520, $"moved {1800 - kept} replicas");
    }

    [Fact]
    public void Invalid_shapes_are_rejected_with_the_reason()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ReplicaPlacer.Place([1, 2], 8, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReplicaPlacer.Place([1, 2, 3], 0, 3));
        Assert.Throws<ArgumentException>(() => ReplicaPlacer.Place([1, 1, 2], 8, 2));
        Assert.Throws<ArgumentException>(() => ReplicaPlacer.Place([0, 1, 2], 8, 2));
    }

    [Fact]
    public void Three_nodes_three_replicas_puts_every_shard_on_every_node()
    {
        var placement = ReplicaPlacer.Place([1, 2, 3], 8, 3);
        Assert.All(placement, p => Assert.Equal(new ulong[] { 1, 2, 3 }, p.Replicas.Order().ToArray()));
        var leaders = placement.GroupBy(p => p.PreferredLeader).Select(g => g.Count()).Order().ToArray();
        Assert.Equal(new[] { 2, 3, 3 }, leaders);
    }

    private static void AssertWellPlaced(ulong[] nodes, int shards, int replication)
    {
        var shape = $"N={nodes.Length} S={shards} R={replication}";
        var placement = ReplicaPlacer.Place(nodes, shards, replication);
        Assert.Equal(shards, placement.Length);
        var replicaLoad = nodes.ToDictionary(n => n, _ => 0);
        var leaderLoad = nodes.ToDictionary(n => n, _ => 0);
        for (var s = 0; s < shards; s++)
        {
            Assert.Equal(s, placement[s].Shard);
            Assert.Equal(replication, placement[s].Replicas.Length);
            Assert.True(placement[s].Replicas.Distinct().Count() == replication, $"{shape}: shard {s} has two replicas on one node");
            foreach (var node in placement[s].Replicas)
            {
                replicaLoad[node]++;
            }

            leaderLoad[placement[s].PreferredLeader]++;
        }

        Assert.True(replicaLoad.Values.Max() - replicaLoad.Values.Min() <= 1, $"{shape}: replicas per node {string.Join(",", replicaLoad.Values)}");
        Assert.True(leaderLoad.Values.Max() - leaderLoad.Values.Min() <= 1, $"{shape}: leaders per node {string.Join(",", leaderLoad.Values)}");
    }
}
