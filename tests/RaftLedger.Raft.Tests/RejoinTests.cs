namespace RaftLedger.Raft.Tests;

/// <summary>
/// A node whose data folder was wiped comes back under its own id with an empty log and no memory of its votes
/// (<see cref="RaftConfig.Rejoining"/>). The scenario: "x" is committed by nodes 1 and 3 while node 2 lags; node 3 is
/// wiped; node 1 goes down. Node 2, which lacks "x", must not be elected with the empty node's vote.
/// </summary>
public sealed class RejoinTests
{
    [Fact]
    public void Without_the_rejoin_rule_the_wiped_node_elects_a_replica_that_lacks_a_committed_entry()
    {
        var cluster = CommitWithNode2LaggingThenWipeNode3(rejoining: false);
        cluster.Isolate(1);

        var leader = cluster.TickUntilLeader();

        // The hazard the rule exists for: the new leader never had "x", although a majority acknowledged it.
        Assert.Equal(2ul, leader.Id);
        Assert.DoesNotContain("x", cluster.AppliedPayloads(2));
    }

    [Fact]
    public void A_rejoining_node_neither_votes_nor_campaigns_so_the_lagging_replica_cannot_be_elected()
    {
        var cluster = CommitWithNode2LaggingThenWipeNode3(rejoining: true);
        cluster.Isolate(1);

        cluster.TickAll(rounds: 100);

        Assert.All(cluster.Nodes.Where(n => n.Id != 1), n => Assert.NotEqual(RaftRole.Leader, n.Raft.Role));
        Assert.True(cluster[3].Raft.IsRejoining);
        Assert.NotEqual(RaftRole.Candidate, cluster[3].Raft.Role);
    }

    [Fact]
    public void A_rejoining_node_votes_again_once_it_holds_a_committed_entry_of_the_current_leaders_term()
    {
        var cluster = CommitWithNode2LaggingThenWipeNode3(rejoining: true);
        cluster.Isolate(1);
        cluster.TickAll(rounds: 30); // node 2 campaigns in vain and raises its term
        cluster.Heal();

        // Node 2's higher term deposes node 1; the election that follows can only be won by node 1, the one with "x".
        for (var round = 0; round < 200 && cluster[3].Raft.IsRejoining; round++)
        {
            cluster.TickAll();
        }

        Assert.False(cluster[3].Raft.IsRejoining);
        var leader = Assert.Single(cluster.Nodes, n => n.Raft.Role == RaftRole.Leader);
        Assert.Equal(1ul, leader.Id);
        Assert.Contains("x", cluster.AppliedPayloads(3));

        // From now on node 3 votes like any other: without node 1 the other two elect a leader that has "x".
        cluster.Isolate(1);
        var next = cluster.TickUntilLeader();
        Assert.NotEqual(1ul, next.Id);
        Assert.Contains("x", cluster.AppliedPayloads(next.Id));
        cluster.AssertAtMostOneLeaderPerTerm();
    }

    [Fact]
    public void A_wiped_node_catches_up_from_the_leader_that_counted_what_it_had_acknowledged()
    {
        var cluster = CommitWithNode2LaggingThenWipeNode3(rejoining: true);
        var term = cluster[1].Raft.Term;

        cluster.TickAll(rounds: 5);

        // Same leader, same term: it probed below the match it had recorded for node 3 because node 3 said it lost its state.
        Assert.Equal(RaftRole.Leader, cluster[1].Raft.Role);
        Assert.Equal(term, cluster[1].Raft.Term);
        Assert.Equal(cluster.AppliedPayloads(1), cluster.AppliedPayloads(3));
        Assert.Contains("x", cluster.AppliedPayloads(3));
        Assert.False(cluster[3].Raft.IsRejoining);
    }

    [Fact]
    public void Rejoining_is_off_unless_configured()
    {
        var cluster = new TestCluster(3);

        Assert.All(cluster.Nodes, n => Assert.False(n.Raft.IsRejoining));
    }

    /// <summary>
    /// Node 1 leads; "a" reaches everyone; "x" reaches nodes 1 and 3 only and commits; then node 3's storage is lost and
    /// it restarts empty (bootstrapped as at first start, as the node host does), rejoining as configured.
    /// </summary>
    private static TestCluster CommitWithNode2LaggingThenWipeNode3(bool rejoining)
    {
        var wiped = false;
        var cluster = new TestCluster(3, id => TestCluster.Config(id, rejoining: wiped && rejoining && id == 3));
        cluster.Elect(1);
        cluster.Propose(1, "a");
        cluster.Stabilize();
        cluster.Drop = m => m.To == 2;
        cluster.Propose(1, "x");
        cluster.Stabilize();
        Assert.Contains("x", cluster.AppliedPayloads(1));
        Assert.DoesNotContain("x", cluster.AppliedPayloads(2));
        cluster.Drop = null;

        wiped = true;
        cluster.Pending.RemoveAll(m => m.To == 3 || m.From == 3);
        var node3 = cluster.AddEmptyNode(3);
        node3.Raft.Bootstrap([1, 2, 3]);
        cluster.Process(3);
        Assert.Equal(rejoining, node3.Raft.IsRejoining);
        return cluster;
    }
}
