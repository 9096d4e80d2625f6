using System.Text;
using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

/// <summary>Linearizable reads with ReadIndex: thesis §6.4.</summary>
public class ReadIndexTests
{
    private static ReadOnlyMemory<byte> Ctx(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void Read_index_in_safe_mode_is_answered_only_after_a_quorum_confirms_leadership()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Cut(1, 2);
        cluster.Cut(1, 3);
        Assert.True(cluster[1].Raft.ReadIndex(Ctx("r1")).IsAccepted);
        cluster.Stabilize();
        Assert.Empty(cluster[1].ReadStates);
        cluster.Heal();
        cluster.Cut(1, 3);
        Assert.True(cluster[1].Raft.ReadIndex(Ctx("r2")).IsAccepted);
        cluster.Stabilize();
        // Node 2's acknowledgement of r2 makes a quorum with the leader; r1, registered earlier, is released too.
        Assert.Equal(["r1", "r2"], cluster[1].ReadStates.Select(r => Encoding.UTF8.GetString(r.Context.Span)));
        Assert.All(cluster[1].ReadStates, r => Assert.Equal(cluster[1].Raft.CommitIndex, r.Index));
    }

    [Fact]
    public void Read_index_waits_until_the_new_leader_has_committed_an_entry_of_its_term()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Propose(1, "x");
        cluster.Stabilize();
        // Node 2 wins term 3, but its no-op does not reach anyone yet.
        cluster.Drop = m => m.Type == MessageType.Append;
        cluster.Elect(2);
        Assert.True(cluster[2].Raft.ReadIndex(Ctx("early")).IsAccepted);
        cluster.Tick(2);
        cluster.Stabilize();
        Assert.Empty(cluster[2].ReadStates);
        cluster.Drop = null;
        cluster.Tick(2);
        cluster.Stabilize();
        var read = Assert.Single(cluster[2].ReadStates);
        // The read index covers the new leader's no-op, so the read sees everything committed before it.
        Assert.True(read.Index >= cluster[2].Raft.LastIndex);
        Assert.Equal(cluster[2].Raft.Term, cluster[2].Storage.Entries[(int)read.Index - 1].Term);
    }

    [Fact]
    public void Follower_read_index_is_forwarded_and_answered_with_the_leaders_commit_index()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Propose(1, "x");
        cluster.Stabilize();
        Assert.Equal(ProposalStatus.Forwarded, cluster[3].Raft.ReadIndex(Ctx("f")).Status);
        cluster.Stabilize();
        var read = Assert.Single(cluster[3].ReadStates);
        Assert.Equal(cluster[1].Raft.CommitIndex, read.Index);
        Assert.Equal("f", Encoding.UTF8.GetString(read.Context.Span));
    }

    [Fact]
    public void Lease_based_read_is_answered_without_a_heartbeat_round()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, checkQuorum: true, readOnly: ReadOnlyMode.LeaseBased));
        cluster.Elect(1);
        cluster.Isolate(1);
        cluster[1].Raft.ReadIndex(Ctx("lease"));
        cluster.Process(1);
        Assert.Single(cluster[1].ReadStates);
    }

    [Fact]
    public void Read_index_without_a_leader_is_refused()
    {
        var cluster = new TestCluster(3);
        Assert.Equal(ProposalStatus.NoLeader, cluster[1].Raft.ReadIndex(Ctx("x")).Status);
    }

    [Fact]
    public void Single_voter_answers_read_index_at_once()
    {
        var cluster = new TestCluster(1);
        cluster.Elect(1);
        cluster[1].Raft.ReadIndex(Ctx("solo"));
        cluster.Process(1);
        Assert.Equal(cluster[1].Raft.CommitIndex, Assert.Single(cluster[1].ReadStates).Index);
    }
}
