using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

/// <summary>Leadership transfer (thesis §3.10) and snapshots / InstallSnapshot (paper §7).</summary>
public class TransferAndSnapshotTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Leadership_transfer_to_an_up_to_date_follower_completes(bool preVoteAndCheckQuorum)
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, preVote: preVoteAndCheckQuorum, checkQuorum: preVoteAndCheckQuorum));
        cluster.Elect(1);
        Assert.True(cluster[1].Raft.TransferLeadership(2).IsAccepted);
        cluster.Stabilize();
        Assert.Equal(RaftRole.Leader, cluster[2].Raft.Role);
        Assert.Equal(RaftRole.Follower, cluster[1].Raft.Role);
    }

    [Fact]
    public void Leadership_transfer_to_a_slow_follower_catches_it_up_first()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Cut(1, 3);
        for (var i = 0; i < 5; i++)
        {
            cluster.Propose(1, $"e{i}");
        }

        cluster.Stabilize();
        cluster.Heal();
        Assert.True(cluster[1].Raft.TransferLeadership(3).IsAccepted);
        // No TimeoutNow is sent while node 3 lacks entries; it is sent once node 3 has caught up.
        Assert.DoesNotContain(cluster.Pending, m => m.Type == MessageType.TimeoutNow);
        cluster.Stabilize();
        Assert.Equal(RaftRole.Leader, cluster[3].Raft.Role);
        cluster.TickAll(1);
        Assert.Equal(["e0", "e1", "e2", "e3", "e4"], cluster.AppliedPayloads(3));
    }

    [Fact]
    public void Leadership_transfer_refuses_proposals_meanwhile_and_aborts_after_an_election_timeout()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Isolate(3);
        Assert.True(cluster[1].Raft.TransferLeadership(3).IsAccepted);
        var refused = cluster[1].Raft.Propose(new byte[] { 1 });
        Assert.Equal(ProposalStatus.LeadershipTransferInProgress, refused.Status);
        Assert.Equal(1UL, refused.LeaderHint);
        for (var i = 0; i < 10; i++)
        {
            cluster.Tick(1);
            cluster.Stabilize();
        }

        Assert.Equal(RaftRole.Leader, cluster[1].Raft.Role);
        Assert.Equal(0UL, cluster[1].Raft.Status().LeadTransferee);
        Assert.True(cluster.Propose(1, "after-abort").IsAccepted);
    }

    [Fact]
    public void Leadership_transfer_to_a_learner_or_unknown_node_is_refused()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        Assert.Equal(ProposalStatus.InvalidTransferTarget, cluster[1].Raft.TransferLeadership(9).Status);
        Assert.Equal(ProposalStatus.InvalidTransferTarget, cluster[1].Raft.TransferLeadership(1).Status);
    }

    [Fact]
    public void Follower_forwards_a_transfer_request_to_the_leader()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        Assert.Equal(ProposalStatus.Forwarded, cluster[2].Raft.TransferLeadership(2).Status);
        cluster.Stabilize();
        Assert.Equal(RaftRole.Leader, cluster[2].Raft.Role);
    }

    private static void Compact(TestCluster cluster, ulong id)
    {
        var node = cluster[id];
        node.Storage.CreateSnapshot(node.Raft.AppliedIndex, node.Raft.ConfState);
        node.Storage.Compact(node.Raft.AppliedIndex);
    }

    [Fact]
    public void Lagging_node_is_restored_by_snapshot_after_the_leader_compacted_its_log()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Isolate(3);
        for (var i = 0; i < 10; i++)
        {
            cluster.Propose(1, $"e{i}");
        }

        cluster.Stabilize();
        Compact(cluster, 1);
        var snapshotIndex = cluster[1].Storage.Snapshot.Index;
        Assert.True(cluster[1].Storage.FirstIndex > cluster[3].Raft.LastIndex + 1);
        cluster.Heal();
        cluster.Tick(1);
        cluster.Stabilize();
        Assert.Contains(cluster.Sent, m => m.Type == MessageType.Snapshot && m.To == 3);
        Assert.Equal(snapshotIndex, cluster[3].Storage.Snapshot.Index);
        Assert.Equal(snapshotIndex, cluster[3].Raft.AppliedIndex);
        cluster.Propose(1, "after-snapshot");
        cluster.Stabilize();
        cluster.TickAll(1);
        Assert.Equal(["after-snapshot"], cluster.AppliedPayloads(3));
        Assert.Equal(cluster[1].Raft.CommitIndex, cluster[3].Raft.CommitIndex);
        var progress = cluster[1].Raft.Status().Progress.Single(p => p.Id == 3);
        Assert.Equal(ProgressState.Replicate, progress.State);
    }

    [Fact]
    public void Failed_snapshot_stream_is_retried()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Isolate(3);
        cluster.Propose(1, "e");
        cluster.Stabilize();
        Compact(cluster, 1);
        cluster.Heal();
        cluster.Drop = m => m.Type == MessageType.Snapshot;
        cluster.Tick(1);
        cluster.Stabilize();
        Assert.Equal(ProgressState.Snapshot, cluster[1].Raft.Status().Progress.Single(p => p.Id == 3).State);
        cluster[1].Raft.ReportSnapshot(3, SnapshotStatus.Failed);
        Assert.Equal(ProgressState.Probe, cluster[1].Raft.Status().Progress.Single(p => p.Id == 3).State);
        cluster.Drop = null;
        cluster.TickAll(2);
        Assert.Equal(cluster[1].Storage.Snapshot.Index, cluster[3].Storage.Snapshot.Index);
    }

    [Fact]
    public void New_learner_joining_after_compaction_is_caught_up_by_snapshot_and_restarts_from_it()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Propose(1, "old");
        cluster.Stabilize();
        cluster.TickAll(1);
        Compact(cluster, 1);
        cluster.AddEmptyNode(4);
        Assert.True(cluster[1].Raft.ProposeConfChange(ConfChange.AddLearner(4)).IsAccepted);
        cluster.Stabilize();
        cluster.TickAll(2);
        Assert.True(cluster[4].Storage.Snapshot.Index > 0);
        Assert.Equal([1UL, 2UL, 3UL], cluster[4].Raft.ConfState.Voters);
        Assert.Equal([4UL], cluster[4].Raft.ConfState.Learners);
        cluster.Restart(4);
        cluster.Process(4);
        Assert.Equal([4UL], cluster[4].Raft.ConfState.Learners);
        cluster.Propose(1, "new");
        cluster.Stabilize();
        cluster.TickAll(1);
        Assert.Equal(["new"], cluster.AppliedPayloads(4));
    }

    [Fact]
    public void Restarted_node_recovers_term_vote_log_and_membership_from_storage()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Propose(1, "persisted");
        cluster.Stabilize();
        cluster.TickAll(1);
        var term = cluster[2].Raft.Term;
        var last = cluster[2].Raft.LastIndex;
        var applied = cluster[2].Raft.AppliedIndex;
        // A host that persisted its applied index gets membership back at once (replayed from the log)...
        cluster.Restart(2, applied);
        Assert.Equal(term, cluster[2].Raft.Term);
        Assert.Equal(last, cluster[2].Raft.LastIndex);
        Assert.Equal([1UL, 2UL, 3UL], cluster[2].Raft.ConfState.Voters);
        Assert.False(cluster[2].Raft.HasReady);
        // ...one that did not re-applies everything committed, membership included.
        cluster.Restart(2);
        Assert.Empty(cluster[2].Raft.ConfState.Voters);
        cluster.Process(2);
        Assert.Equal([1UL, 2UL, 3UL], cluster[2].Raft.ConfState.Voters);
        Assert.Equal(["persisted"], cluster.AppliedPayloads(2));
    }

    [Fact]
    public void Restarted_node_whose_commit_only_hard_state_was_lost_resumes_at_its_applied_index()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Propose(1, "a");
        cluster.Propose(1, "b");
        cluster.Stabilize();
        cluster.TickAll(1);
        var applied = cluster[2].Raft.AppliedIndex;
        var hardState = cluster[2].Storage.HardState;
        Assert.Equal(applied, hardState.Commit);
        // The host skipped the hard states that only moved the commit index (MustSync false) and crashed.
        cluster[2].Storage.SetHardState(new HardState(hardState.Term, hardState.Vote, 1));

        cluster.Restart(2, applied);

        Assert.Equal(applied, cluster[2].Raft.CommitIndex);
        var ready = cluster[2].Raft.GetReady();
        Assert.Empty(ready.CommittedEntries);
        Assert.Equal(applied, ready.HardState?.Commit);
        Assert.False(ready.MustSync);
    }

    [Fact]
    public void Restart_refuses_an_applied_index_beyond_the_stored_log()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Propose(1, "a");
        cluster.Stabilize();
        var beyond = cluster[2].Storage.LastIndex + 1;

        Assert.Throws<InvariantViolationException>(() => cluster.Restart(2, beyond));
    }
}
