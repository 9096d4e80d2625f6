using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

/// <summary>Membership changes: learners, single-server changes, joint consensus (thesis §4.3).</summary>
public class MembershipTests
{
    private static void AssertVoters(TestCluster cluster, ulong id, params ulong[] voters)
    {
        var conf = cluster[id].Raft.ConfState;
        Assert.Equal(voters, conf.Voters.Order());
        Assert.False(conf.IsJoint);
    }

    [Fact]
    public void Removing_a_node_lets_pending_entries_commit_with_the_smaller_quorum()
    {
        // etcd TestCommitAfterRemoveNode: in {1, 2} an entry needs both; once the removal of 2 is applied, it
        // needs only node 1.
        var cluster = new TestCluster(2);
        cluster.Elect(1);
        var change = cluster[1].Raft.ProposeConfChange(ConfChange.RemoveNode(2));
        Assert.True(change.IsAccepted);
        cluster.Process(1);
        foreach (var append in cluster.Take(m => m.To == 2))
        {
            cluster.StepDirect(append);
        }

        var ack = cluster.Take(m => m.From == 2);
        var entry = cluster.Propose(1, "after-removal");
        cluster.Cut(1, 2);
        cluster.Stabilize();
        Assert.True(cluster[1].Raft.CommitIndex < entry.LastIndex);
        foreach (var message in ack)
        {
            cluster.StepDirect(message);
        }

        cluster.Stabilize();
        AssertVoters(cluster, 1, 1);
        Assert.Equal(entry.LastIndex, cluster[1].Raft.CommitIndex);
        Assert.Equal(["after-removal"], cluster.AppliedPayloads(1));
    }

    [Fact]
    public void Learner_catches_up_never_votes_never_campaigns_and_can_be_promoted()
    {
        var cluster = new TestCluster(2);
        cluster.Elect(1);
        cluster.Propose(1, "before-learner");
        cluster.Stabilize();
        var learner = cluster.AddEmptyNode(3);
        Assert.True(cluster[1].Raft.ProposeConfChange(ConfChange.AddLearner(3)).IsAccepted);
        cluster.Stabilize();
        cluster.TickAll(2);
        Assert.Equal(["before-learner"], cluster.AppliedPayloads(3));
        Assert.Equal([3UL], learner.Raft.ConfState.Learners);
        // A learner never campaigns.
        cluster.Isolate(3);
        cluster.Tick(3, 100);
        Assert.Equal(RaftRole.Follower, learner.Raft.Role);
        cluster.Heal();
        // Its vote does not count: with leader 1 gone, node 2 cannot win with only the learner's vote.
        cluster.Isolate(1);
        for (var i = 0; i < 5; i++)
        {
            cluster[2].Raft.Campaign();
            cluster.Stabilize();
            Assert.NotEqual(RaftRole.Leader, cluster[2].Raft.Role);
        }

        cluster.Heal();
        // Node 2's higher term deposes node 1; let the group settle on one leader again.
        cluster.TickAll(40);
        var leader = cluster.TickUntilLeader();
        Assert.True(leader.Raft.ProposeConfChange(ConfChange.AddVoter(3)).IsAccepted);
        cluster.Stabilize();
        cluster.TickAll(2);
        AssertVoters(cluster, 3, 1, 2, 3);
        // Promoted: now it can lead.
        cluster.Elect(3);
    }

    [Fact]
    public void Joint_consensus_is_entered_and_left_automatically_for_multiple_voter_changes()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.AddEmptyNode(4);
        cluster.AddEmptyNode(5);
        var change = new ConfChange([
            new ConfChangeSingle(ConfChangeKind.AddVoter, 4),
            new ConfChangeSingle(ConfChangeKind.AddVoter, 5),
            new ConfChangeSingle(ConfChangeKind.RemoveNode, 3)]);
        Assert.True(cluster[1].Raft.ProposeConfChange(change).IsAccepted);
        cluster.Stabilize();
        cluster.TickAll(3);
        foreach (var id in new ulong[] { 1, 2, 4, 5 })
        {
            AssertVoters(cluster, id, 1, 2, 4, 5);
        }

        // The log holds the joint entry followed by the leader's automatic leave entry.
        var confEntries = cluster[1].Storage.Entries.Where(e => e.Type == EntryType.ConfChange && e.Index > 3)
            .Select(e => ConfChangeCodec.Decode(e.Data.Span)).ToList();
        Assert.Equal(2, confEntries.Count);
        Assert.True(confEntries[1].IsLeaveJoint);
    }

    [Fact]
    public void Joint_configuration_needs_a_majority_of_both_old_and_new_voters()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.AddEmptyNode(4);
        cluster.AddEmptyNode(5);
        var change = new ConfChange([
            new ConfChangeSingle(ConfChangeKind.AddVoter, 4),
            new ConfChangeSingle(ConfChangeKind.AddVoter, 5),
            new ConfChangeSingle(ConfChangeKind.RemoveNode, 2),
            new ConfChangeSingle(ConfChangeKind.RemoveNode, 3)], ConfChangeTransition.JointExplicit);
        Assert.True(cluster[1].Raft.ProposeConfChange(change).IsAccepted);
        cluster.Stabilize();
        cluster.TickAll(2);
        Assert.True(cluster[1].Raft.ConfState.IsJoint);
        // Old voters {1,2,3} all ack, new voters {1,4,5} only 1: no commit.
        cluster.Cut(1, 4);
        cluster.Cut(1, 5);
        var first = cluster.Propose(1, "old-majority-only");
        cluster.Stabilize();
        Assert.True(cluster[1].Raft.CommitIndex < first.LastIndex);
        // New voters all ack, old only 1: still no commit.
        cluster.Heal();
        cluster.Cut(1, 2);
        cluster.Cut(1, 3);
        var second = cluster.Propose(1, "new-majority-only");
        cluster.Stabilize();
        Assert.True(cluster[1].Raft.CommitIndex < second.LastIndex);
        // Both majorities: commits.
        cluster.Heal();
        cluster.Tick(1);
        cluster.Stabilize();
        Assert.Equal(second.LastIndex, cluster[1].Raft.CommitIndex);
        // Explicit leave.
        Assert.True(cluster[1].Raft.ProposeConfChange(ConfChange.LeaveJoint).IsAccepted);
        cluster.Stabilize();
        cluster.TickAll(2);
        AssertVoters(cluster, 1, 1, 4, 5);
    }

    [Fact]
    public void Invalid_or_overlapping_conf_changes_are_refused_with_a_reason()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        var leave = cluster[1].Raft.ProposeConfChange(ConfChange.LeaveJoint);
        Assert.Equal(ProposalStatus.InvalidConfChange, leave.Status);
        Assert.Contains("not in a joint", leave.Describe(), StringComparison.Ordinal);
        Assert.True(cluster[1].Raft.ProposeConfChange(ConfChange.AddLearner(4)).IsAccepted);
        Assert.Equal(ProposalStatus.ConfChangePending, cluster[1].Raft.ProposeConfChange(ConfChange.AddLearner(5)).Status);
        cluster.Stabilize();
        var removeAll = new ConfChange([
            new ConfChangeSingle(ConfChangeKind.RemoveNode, 1),
            new ConfChangeSingle(ConfChangeKind.RemoveNode, 2),
            new ConfChangeSingle(ConfChangeKind.RemoveNode, 3)]);
        Assert.Equal(ProposalStatus.InvalidConfChange, cluster[1].Raft.ProposeConfChange(removeAll).Status);
    }

    [Fact]
    public void Removed_leader_steps_down_and_the_rest_elect_a_new_one()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        Assert.True(cluster[1].Raft.ProposeConfChange(ConfChange.RemoveNode(1)).IsAccepted);
        cluster.Stabilize();
        cluster.TickAll(1);
        Assert.NotEqual(RaftRole.Leader, cluster[1].Raft.Role);
        cluster.Isolate(1);
        var leader = cluster.TickUntilLeader();
        Assert.NotEqual(1UL, leader.Id);
        AssertVoters(cluster, leader.Id, 2, 3);
    }
}
