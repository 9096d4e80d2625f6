using RaftLedger.Node.Host;
using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport.Protos;

namespace RaftLedger.Node.Tests.Host;

/// <summary>Operators think in shards: log lines and errors name a Raft group as "shard S" or "meta group".</summary>
public sealed class GroupWordingTests
{
    [Theory]
    [InlineData(0UL, "meta group")]
    [InlineData(1UL, "shard 0")]
    [InlineData(8UL, "shard 7")]
    [InlineData(ulong.MaxValue, "group 18446744073709551615")] // no shard has it: said as received
    public void A_group_is_named_as_its_shard_or_as_the_meta_group(ulong groupId, string expected) =>
        Assert.Equal(expected, ClusterMap.DescribeGroup(groupId));

    [Theory]
    [InlineData(true, false, "new cluster")]
    [InlineData(false, false, "existing cluster")]
    [InlineData(true, true, "rejoining")] // a wiped folder bootstrapped from the flags: not a new cluster
    [InlineData(false, true, "rejoining")] // restarted before the catch-up ended
    public void The_start_line_says_rejoining_for_a_rejoining_node(bool created, bool rejoining, string expected) =>
        Assert.Equal(expected, NodeHost.StartKind(created, rejoining));

    [Theory]
    [InlineData(0UL, "meta group: this node hosts no replica")]
    [InlineData(4UL, "shard 3: this node hosts no replica")]
    public async Task A_refused_snapshot_names_the_shard_not_the_group_id(ulong groupId, string expected)
    {
        var folder = Directory.CreateTempSubdirectory("raftledger-wording-").FullName;
        try
        {
            using var receiver = new SnapshotReceiver(folder, fromNode: 2);
            var chunks = new OneSnapshotChunk(new SnapshotChunk { GroupId = groupId, Index = 10, Term = 2, Last = true });

            var error = await receiver.ReceiveAsync(chunks, _ => false, TestContext.Current.CancellationToken);

            Assert.Equal(expected, error);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
