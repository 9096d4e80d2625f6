using System.Text.RegularExpressions;
using RaftLedger.Cli;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Cluster;

/// <summary>`raftledger status` shows every shard's lag, taking each row from the node that leads the shard.</summary>
public sealed class StatusRowsTests
{
    private static readonly NodeInfo[] Nodes =
    [
        new(1, "127.0.0.1:17201", "127.0.0.1:17101", true),
        new(2, "127.0.0.1:17202", "127.0.0.1:17102", true),
    ];

    private static ShardInfo Row(uint shard, ulong leader, ulong term, ulong commit, params ReplicaProgress[] progress) =>
        new(shard, [1, 2], leader, term, commit, commit) { Progress = progress };

    [Fact]
    public void A_shard_led_by_another_node_shows_the_lag_that_node_reports()
    {
        var asked = new ClusterStatus(Nodes, [Row(0, 1, 3, 100, new(1, 100), new(2, 100)), Row(1, 2, 4, 200)]);
        var fromNode2 = new ClusterStatus(Nodes, [Row(0, 1, 3, 100), Row(1, 2, 4, 205, new(2, 205), new(1, 180))]);

        var merged = StatusCommand.WithLeaderRows(asked, [fromNode2]);

        Assert.Same(asked.Shards[0], merged.Shards[0]);
        Assert.Same(fromNode2.Shards[1], merged.Shards[1]);
        // shard 1: replicas 1,2, leader 2, term 4, commit and applied 205, lag 205 - 180 = 25.
        Assert.Matches(new Regex(@"^1\s+1,2\s+2\s+4\s+205\s+205\s+25\s*$", RegexOptions.Multiline), StatusCommand.Format(merged));
    }

    [Fact]
    public void A_deposed_leaders_stale_progress_loses_to_the_current_leaders()
    {
        var asked = new ClusterStatus(Nodes, [Row(0, 2, 6, 300)]);
        var deposed = new ClusterStatus(Nodes, [Row(0, 1, 5, 290, new(1, 290), new(2, 10))]);
        var current = new ClusterStatus(Nodes, [Row(0, 2, 6, 300, new(2, 300), new(1, 300))]);

        Assert.Same(current.Shards[0], StatusCommand.WithLeaderRows(asked, [deposed, current]).Shards[0]);
        Assert.Same(current.Shards[0], StatusCommand.WithLeaderRows(asked, [current, deposed]).Shards[0]);
    }

    [Fact]
    public void A_shard_no_view_has_progress_for_keeps_the_asked_row_and_no_lag()
    {
        var asked = new ClusterStatus(Nodes, [Row(0, 0, 7, 50)]);

        var merged = StatusCommand.WithLeaderRows(asked, [new ClusterStatus(Nodes, [Row(0, 0, 7, 50)])]);

        Assert.Same(asked.Shards[0], merged.Shards[0]);
        Assert.Contains("none", StatusCommand.Format(merged), StringComparison.Ordinal);
    }
}
