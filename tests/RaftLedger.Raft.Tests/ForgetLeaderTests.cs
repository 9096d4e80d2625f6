using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

/// <summary>
/// ForgetLeader: a follower that has evidence its leader is gone stops honouring the leader's lease (thesis §6.2),
/// so a survivor can be elected without waiting for an election timeout. Pre-vote (thesis §9.6) and check-quorum
/// must still keep one confused follower from deposing a live leader.
/// </summary>
public class ForgetLeaderTests
{
    private static TestCluster ThreeNodes(ReadOnlyMode readOnly = ReadOnlyMode.Safe)
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, preVote: true, checkQuorum: true, readOnly: readOnly));
        cluster.Elect(1);
        Assert.True(cluster.Propose(1, "a").IsAccepted);
        cluster.Stabilize();
        return cluster;
    }

    // The commit index reaches followers with the next append or heartbeat.
    private static void CommitEverywhere(TestCluster cluster, ulong leader)
    {
        cluster.Stabilize();
        cluster.Tick(leader);
        cluster.Stabilize();
    }

    [Fact]
    public void Follower_that_forgets_its_leader_reports_no_leader()
    {
        var cluster = ThreeNodes();
        Assert.True(cluster[2].Raft.ForgetLeader());
        Assert.Equal(0UL, cluster[2].Raft.Leader);
        Assert.Equal(RaftRole.Follower, cluster[2].Raft.Role);
        Assert.Equal(1UL, cluster[3].Raft.Leader);
    }

    [Fact]
    public void One_confused_follower_cannot_depose_a_live_leader()
    {
        var cluster = ThreeNodes();
        var term = cluster[1].Raft.Term;
        Assert.True(cluster[2].Raft.ForgetLeader());
        cluster[2].Raft.Campaign();
        cluster.Stabilize();
        // Node 3 still hears the leader and the leader leads: both ignore the pre-vote, so no term changes.
        Assert.Equal(RaftRole.Leader, cluster[1].Raft.Role);
        Assert.Equal(term, cluster[1].Raft.Term);
        Assert.Equal(term, cluster[3].Raft.Term);
        Assert.Equal(term, cluster[2].Raft.Term);
        // The next heartbeat brings the confused follower back to the leader.
        cluster.Tick(1);
        cluster.Stabilize();
        Assert.Equal(1UL, cluster[2].Raft.Leader);
        Assert.Equal(RaftRole.Follower, cluster[2].Raft.Role);
        Assert.True(cluster.Propose(1, "b").IsAccepted);
        CommitEverywhere(cluster, 1);
        Assert.Equal(["a", "b"], cluster.AppliedPayloads(2));
    }

    [Fact]
    public void Without_forgetting_a_survivor_cannot_win_while_the_other_still_honours_the_lease()
    {
        // The baseline that ForgetLeader improves on: the lease makes node 3 ignore node 2 until it times out too.
        var cluster = ThreeNodes();
        var term = cluster[1].Raft.Term;
        cluster.Isolate(1);
        cluster[2].Raft.Campaign();
        cluster.Stabilize();
        Assert.NotEqual(RaftRole.Leader, cluster[2].Raft.Role);
        Assert.Equal(term, cluster[3].Raft.Term);
    }

    [Fact]
    public void Quorum_of_followers_that_forget_a_dead_leader_elect_a_new_one_without_waiting_a_timeout()
    {
        var cluster = ThreeNodes();
        var term = cluster[1].Raft.Term;
        cluster.Isolate(1); // The leader's process is gone.
        Assert.True(cluster[2].Raft.ForgetLeader());
        Assert.True(cluster[3].Raft.ForgetLeader());
        cluster[2].Raft.Campaign();
        cluster.Stabilize();
        // No tick was needed: pre-vote and vote both succeed at once.
        Assert.Equal(RaftRole.Leader, cluster[2].Raft.Role);
        Assert.Equal(term + 1, cluster[2].Raft.Term);
        Assert.Equal(2UL, cluster[3].Raft.Leader);
        Assert.True(cluster.Propose(2, "b").IsAccepted);
        CommitEverywhere(cluster, 2);
        Assert.Equal(["a", "b"], cluster.AppliedPayloads(3));
        cluster.AssertAtMostOneLeaderPerTerm();
    }

    [Fact]
    public void Forgetting_the_leader_never_grants_a_vote_to_a_replica_that_is_behind()
    {
        // Paper §5.4.1 still holds: node 3 missed entry "b", so node 2 refuses it even after forgetting.
        var cluster = ThreeNodes();
        cluster.Isolate(3);
        Assert.True(cluster.Propose(1, "b").IsAccepted);
        cluster.Stabilize();
        cluster.Heal();
        cluster.Isolate(1);
        Assert.True(cluster[2].Raft.ForgetLeader());
        Assert.True(cluster[3].Raft.ForgetLeader());
        cluster[3].Raft.Campaign();
        cluster.Stabilize();
        Assert.NotEqual(RaftRole.Leader, cluster[3].Raft.Role);
        // The up-to-date survivor then wins at once: node 3 has forgotten the leader too and grants it.
        cluster[2].Raft.Campaign();
        cluster.Stabilize();
        Assert.Equal(RaftRole.Leader, cluster[2].Raft.Role);
        CommitEverywhere(cluster, 2);
        Assert.Equal(["a", "b"], cluster.AppliedPayloads(3));
    }

    [Fact]
    public void Leader_ignores_forget_leader()
    {
        var cluster = ThreeNodes();
        Assert.False(cluster[1].Raft.ForgetLeader());
        Assert.Equal(RaftRole.Leader, cluster[1].Raft.Role);
        Assert.Equal(1UL, cluster[1].Raft.Leader);
    }

    [Fact]
    public void Forget_leader_is_refused_with_lease_based_reads()
    {
        // A lease-based leader answers reads without a quorum round, trusting that no follower votes during its
        // lease; forgetting would break that promise.
        var cluster = ThreeNodes(ReadOnlyMode.LeaseBased);
        Assert.False(cluster[2].Raft.ForgetLeader());
        Assert.Equal(1UL, cluster[2].Raft.Leader);
    }
}
