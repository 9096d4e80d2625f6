using RaftLedger.Simulation;
using static RaftLedger.Simulation.Tests.ClusterHarness;

namespace RaftLedger.Simulation.Tests;

/// <summary>Agreement, persistence and repair scenarios (after the MIT 6.5840 lab's 3B/3C tests, our own code).</summary>
public sealed class ReplicationScenarioTests
{
    [Theory]
    [InlineData(31UL)]
    [InlineData(32UL)]
    public void Concurrent_proposals_in_one_tick_all_commit_at_consecutive_indexes(ulong seed)
    {
        var cluster = Create(3, seed);
        var leader = AwaitLeader(cluster);
        var indexes = new List<ulong>();
        for (var v = 0; v < 5; v++)
        {
            var result = cluster.Propose(leader, Value(100 + v));
            Assert.True(result.IsAccepted, result.Describe());
            indexes.Add(result.LastIndex);
        }

        Assert.Equal(Enumerable.Range((int)indexes[0], 5).Select(i => (ulong)i), indexes);
        Assert.True(cluster.RunUntil(() => AppliedCount(cluster, indexes[^1]) == 3, AgreementTicksMax), $"seed {seed}");
        for (var v = 0; v < 5; v++)
        {
            Assert.True(cluster.Checker.TryGetCommitted(indexes[v], out _, out var data));
            Assert.Equal(Value(100 + v), data.ToArray());
        }

        CheckAll(cluster);
    }

    [Theory]
    [InlineData(41UL)]
    [InlineData(42UL)]
    public void Committed_entries_survive_restarts_of_all_nodes_of_the_leader_and_of_a_follower(ulong seed)
    {
        var cluster = Create(3, seed);
        var first = CommitOne(cluster, Value(11), 3);

        // All nodes lose power at once and come back.
        foreach (var node in cluster.Nodes)
        {
            cluster.Crash(node.Id);
        }

        foreach (var node in cluster.Nodes)
        {
            cluster.Restart(node.Id);
        }

        CommitOne(cluster, Value(12), 3);

        // The leader restarts.
        var leader = cluster.Leader();
        cluster.Crash(leader);
        cluster.Restart(leader);
        CommitOne(cluster, Value(13), 3);

        // The leader stays down for a while; the other two commit; it returns and catches up.
        leader = cluster.Leader();
        cluster.Crash(leader);
        CommitOne(cluster, Value(14), 2);
        cluster.Restart(leader);
        var index = CommitOne(cluster, Value(15), 3);

        // A follower restarts.
        var follower = Enumerable.Range(1, 3).First(id => id != cluster.Leader());
        cluster.Crash(follower);
        CommitOne(cluster, Value(16), 2);
        cluster.Restart(follower);
        index = CommitOne(cluster, Value(17), 3);

        Assert.True(cluster.Checker.TryGetCommitted(first, out _, out var data));
        Assert.Equal(Value(11), data.ToArray());
        Assert.True(cluster.RunUntil(() => AppliedCount(cluster, index) == 3, AgreementTicksMax));
        CheckAll(cluster);
    }

    [Theory]
    [InlineData(51UL)]
    [InlineData(52UL)]
    public void Deposed_leader_with_uncommitted_entries_rejoins_and_its_entries_are_replaced(ulong seed)
    {
        var cluster = Create(3, seed);
        CommitOne(cluster, Value(101), 3);

        // The leader is cut off and accepts entries that can never commit.
        var leader1 = cluster.Leader();
        cluster.Network.Isolate(leader1);
        foreach (var v in new long[] { 102, 103, 104 })
        {
            cluster.Propose(leader1, Value(v));
        }

        // The others elect a leader and commit.
        CommitOne(cluster, Value(103_1), 2);

        // That leader is cut off too; the old one returns and must be brought in line.
        var leader2 = cluster.Leader();
        cluster.Network.Heal();
        cluster.Network.Isolate(leader2);
        CommitOne(cluster, Value(104_1), 2);

        cluster.Network.Heal();
        var last = CommitOne(cluster, Value(105), 3);
        Assert.True(cluster.RunUntil(() => AppliedCount(cluster, last) == 3, AgreementTicksMax));
        for (var index = 1UL; index <= last; index++)
        {
            Assert.True(cluster.Checker.TryGetCommitted(index, out _, out var data));
            var committed = data.ToArray();
            Assert.DoesNotContain(new[] { Value(102), Value(103), Value(104) }, stale => stale.AsSpan().SequenceEqual(committed));
        }

        CheckAll(cluster);
    }

    [Theory]
    [InlineData(61UL)]
    [InlineData(62UL)]
    public void Backup_repairs_fifty_divergent_entries_on_each_side(ulong seed)
    {
        var cluster = Create(5, seed);
        long next = 1_000;
        CommitOne(cluster, Value(next++), 5);

        // The leader and one follower are cut off; the leader accepts 50 entries that cannot commit.
        var leader1 = cluster.Leader();
        var follower1 = (leader1 % 5) + 1;
        cluster.Network.Partition([leader1, follower1]);
        for (var i = 0; i < 50; i++)
        {
            cluster.Propose(leader1, Value(next++));
        }

        cluster.RunTicks(ElectionTicks / 2);

        // The other three commit 50 entries of their own.
        var majority = Enumerable.Range(1, 5).Where(id => id != leader1 && id != follower1).ToArray();
        for (var i = 0; i < 50; i++)
        {
            CommitOne(cluster, Value(next++), 3);
        }

        // Now their leader and one of them are cut off, and the leader accepts 50 more that cannot commit.
        var leader2 = cluster.Leader();
        var other = majority.First(id => id != leader2);
        cluster.Network.Partition([leader2, other]);
        for (var i = 0; i < 50; i++)
        {
            cluster.Propose(leader2, Value(next++));
        }

        cluster.RunTicks(ElectionTicks / 2);

        // The original leader's side plus one node form a majority; the stale 50 entries there lose.
        cluster.Network.Heal();
        var third = majority.First(id => id != leader2 && id != other);
        cluster.Network.Partition([leader1, follower1, third]);
        for (var i = 0; i < 50; i++)
        {
            CommitOne(cluster, Value(next++), 3);
        }

        // Everyone back: all five agree.
        cluster.Network.Heal();
        var last = CommitOne(cluster, Value(next++), 5);
        Assert.True(cluster.RunUntil(() => AppliedCount(cluster, last) == 5, AgreementTicksMax));
        CheckAll(cluster);
    }
}
