using RaftLedger.Raft;
using RaftLedger.Simulation;
using static RaftLedger.Simulation.Tests.ClusterHarness;

namespace RaftLedger.Simulation.Tests;

/// <summary>Elections in the simulated cluster (after the MIT 6.5840 lab's 3A tests, our own code).</summary>
public sealed class ElectionScenarioTests
{
    [Theory]
    [InlineData(3, 1UL)]
    [InlineData(5, 2UL)]
    [InlineData(7, 3UL)]
    public void Initial_election_elects_one_leader_that_stays_while_the_network_is_healthy(int nodes, ulong seed)
    {
        var cluster = Create(nodes, seed);
        var leader = AwaitLeader(cluster);
        var term = cluster.Node(leader).RunningCore.Term;
        cluster.RunTicks(20 * ElectionTicks);
        Assert.Equal(leader, cluster.Leader());
        Assert.Equal(term, cluster.Node(leader).RunningCore.Term);
        Assert.Equal(1, LeaderCount(cluster));
        Assert.All(cluster.Nodes, n => Assert.Equal(term, n.RunningCore.Term));
    }

    [Theory]
    [InlineData(11UL)]
    [InlineData(12UL)]
    public void Re_election_after_leader_loss_and_no_leader_without_a_quorum(ulong seed)
    {
        var cluster = Create(3, seed);
        var leader1 = AwaitLeader(cluster);

        // The leader goes away: the other two elect a new one.
        cluster.Network.Isolate(leader1);
        var others = Enumerable.Range(1, 3).Where(id => id != leader1).ToArray();
        Assert.True(cluster.RunUntil(() => LeaderAmong(cluster, others) != 0, 20 * ElectionTicks), $"no new leader (seed {seed})");

        // The old leader comes back: it must not disturb the new leader (it learns the newer term).
        cluster.Network.Heal();
        cluster.RunTicks(5 * ElectionTicks);
        Assert.NotEqual(0, cluster.Leader());
        Assert.Equal(1, LeaderCount(cluster));

        // No quorum: nobody may lead (check-quorum makes the cut-off leader step down).
        var leader3 = cluster.Leader();
        var other = Enumerable.Range(1, 3).First(id => id != leader3);
        cluster.Network.Isolate(leader3);
        cluster.Network.Isolate(other);
        cluster.RunTicks(10 * ElectionTicks);
        Assert.Equal(0, LeaderCount(cluster));

        // A quorum again: a leader is elected.
        cluster.Network.Reconnect(other);
        AwaitLeader(cluster, 20 * ElectionTicks);
        cluster.Network.Heal();
        cluster.RunTicks(5 * ElectionTicks);
        Assert.Equal(1, LeaderCount(cluster));
        CheckAll(cluster);
    }

    [Theory]
    [InlineData(21UL)]
    [InlineData(22UL)]
    public void Seven_nodes_with_three_randomly_disconnected_elect_a_leader_in_each_of_ten_rounds(ulong seed)
    {
        var cluster = Create(7, seed);
        var random = new SimRandom(seed);
        AwaitLeader(cluster);
        for (var round = 0; round < 10; round++)
        {
            var ids = Enumerable.Range(1, 7).ToArray();
            random.Shuffle(ids);
            var cut = ids[..3];
            foreach (var id in cut)
            {
                cluster.Network.Isolate(id);
            }

            // The four connected nodes must have (or elect) exactly one leader among themselves.
            var connected = ids[3..];
            Assert.True(
                cluster.RunUntil(() => LeaderAmong(cluster, connected) != 0, 20 * ElectionTicks),
                $"round {round}: no leader among {string.Join(",", connected)} (seed {seed})");
            Assert.Equal(1, LeaderCount(cluster, connected));
            cluster.Network.Heal();
        }

        AwaitLeader(cluster);
        CheckAll(cluster);
    }
}
