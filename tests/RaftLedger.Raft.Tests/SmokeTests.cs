using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

public class SmokeTests
{
    [Fact]
    public void Three_nodes_elect_a_leader_and_replicate_a_proposal()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        Assert.True(cluster.Propose(1, "hello").IsAccepted);
        cluster.Stabilize();
        cluster.TickAll(1);
        foreach (var node in cluster.Nodes)
        {
            Assert.Equal(["hello"], cluster.AppliedPayloads(node.Id));
        }
    }
}
