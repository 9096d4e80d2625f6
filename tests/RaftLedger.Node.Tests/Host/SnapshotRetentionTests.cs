using RaftLedger.Node.Host;
using RaftLedger.Raft;

namespace RaftLedger.Node.Tests.Host;

/// <summary>
/// A leader keeps a shard's log after the snapshot it streams to a follower, so that the follower continues from the
/// log once installed instead of needing a second snapshot; bounded by the WAL's size and by the follower's progress.
/// </summary>
public sealed class SnapshotRetentionTests
{
    private const ulong Group = 3;
    private const long LogBytesMax = 1000;
    private const long StallTicks = 100;

    private readonly List<ulong> stalled = [];

    [Fact]
    public void Nothing_is_kept_for_a_group_no_snapshot_was_sent_for()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 0);

        Assert.False(retention.IsKeeping(Group + 1));
        Assert.Equal(ulong.MaxValue, retention.CompactionLimit(Group + 1, Leader(follower2Match: 0), LogBytesMax + 1, wanted: 900, now: 1, stalled, out var over));
        Assert.False(over); // Nothing was let go: nothing to warn about, even over the bound.
        Assert.Equal(1, retention.Count);
    }

    [Fact]
    public void While_the_follower_installs_the_log_after_the_snapshot_is_kept_then_after_what_it_acknowledged()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 0);

        Assert.Equal(500UL, retention.CompactionLimit(Group, Leader(follower2Match: 120), 10, wanted: 900, now: 1, stalled, out _));
        Assert.Equal(700UL, retention.CompactionLimit(Group, Leader(follower2Match: 700), 10, wanted: 900, now: 1, stalled, out _));
        Assert.Equal(1, retention.Count);
    }

    [Fact]
    public void A_follower_that_acknowledged_what_would_be_compacted_is_forgotten()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 0);

        Assert.Equal(ulong.MaxValue, retention.CompactionLimit(Group, Leader(follower2Match: 900), 10, wanted: 900, now: 1, stalled, out _));
        Assert.Equal(0, retention.Count);
        Assert.False(retention.IsKeeping(Group)); // A preferred replica may take the leadership again.
    }

    [Fact]
    public void The_lowest_of_several_followers_bounds_the_compaction()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 0);
        retention.Started(Group, to: 3, index: 400, now: 0);

        Assert.Equal(400UL, retention.CompactionLimit(Group, Leader(follower2Match: 0, follower3Match: 0), 10, wanted: 900, now: 1, stalled, out _));
    }

    [Fact]
    public void A_failed_stream_keeps_nothing()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 0);
        Assert.True(retention.IsKeeping(Group));
        retention.Failed(Group, to: 2);

        Assert.False(retention.IsKeeping(Group));
        Assert.Equal(ulong.MaxValue, retention.CompactionLimit(Group, Leader(follower2Match: 0), 10, wanted: 900, now: 1, stalled, out _));
        Assert.Equal(0, retention.Count);
    }

    [Fact]
    public void A_follower_found_down_after_its_install_no_longer_holds_the_log()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 0);
        retention.Started(Group + 1, to: 2, index: 300, now: 0);
        retention.Started(Group, to: 3, index: 450, now: 0);

        retention.NodeDown(2);

        Assert.False(retention.IsKeeping(Group + 1));
        Assert.Equal(450UL, retention.CompactionLimit(Group, Leader(follower2Match: 0, follower3Match: 0), 10, wanted: 900, now: 1, stalled, out _));
        Assert.Equal(1, retention.Count);
    }

    [Fact]
    public void A_node_that_lost_the_leadership_keeps_nothing()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 0);

        Assert.Equal(ulong.MaxValue, retention.CompactionLimit(Group, Leader(follower2Match: 0) with { Role = RaftRole.Follower, Progress = [] }, 10, wanted: 900, now: 1, stalled, out var over));
        Assert.False(over);
        Assert.Equal(0, retention.Count);
    }

    [Fact]
    public void Past_the_bound_on_the_log_disk_space_wins_and_the_caller_is_told()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 0);

        Assert.Equal(500UL, retention.CompactionLimit(Group, Leader(follower2Match: 0), LogBytesMax, wanted: 900, now: 1, stalled, out var atBound));
        Assert.False(atBound);
        Assert.Equal(ulong.MaxValue, retention.CompactionLimit(Group, Leader(follower2Match: 0), LogBytesMax + 1, wanted: 900, now: 1, stalled, out var overBound));
        Assert.True(overBound);
        Assert.Equal(0, retention.Count);
    }

    [Fact]
    public void A_follower_that_acknowledges_nothing_new_for_the_stall_bound_is_let_go_and_reported()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 0);
        retention.Started(Group, to: 3, index: 450, now: 0);
        retention.Finished(Group, to: 2, now: 40);
        retention.Finished(Group, to: 3, now: 40);

        // Node 3 installs and acknowledges at tick 90; node 2 never does.
        Assert.Equal(450UL, retention.CompactionLimit(Group, Leader(follower2Match: 120, follower3Match: 0), 10, wanted: 900, now: 50, stalled, out _));
        Assert.Equal(450UL, retention.CompactionLimit(Group, Leader(follower2Match: 120, follower3Match: 450), 10, wanted: 900, now: 90, stalled, out _));
        Assert.Equal(460UL, retention.CompactionLimit(Group, Leader(follower2Match: 120, follower3Match: 460), 10, wanted: 900, now: 140, stalled, out _));
        Assert.Empty(stalled); // Node 2: 100 ticks since its stream ended, not more.

        Assert.Equal(460UL, retention.CompactionLimit(Group, Leader(follower2Match: 120, follower3Match: 460), 10, wanted: 900, now: 141, stalled, out var over));
        Assert.Equal([2UL], stalled);
        Assert.False(over);
        Assert.Equal(1, retention.Count);

        // Node 3 moved last at tick 140: it is let go 100 ticks later, not counted from its stream.
        stalled.Clear();
        Assert.Equal(460UL, retention.CompactionLimit(Group, Leader(follower2Match: 120, follower3Match: 460), 10, wanted: 900, now: 240, stalled, out _));
        Assert.Empty(stalled);
        Assert.Equal(ulong.MaxValue, retention.CompactionLimit(Group, Leader(follower2Match: 120, follower3Match: 460), 10, wanted: 900, now: 241, stalled, out _));
        Assert.Equal([3UL], stalled);
        Assert.False(retention.IsKeeping(Group));
    }

    [Fact]
    public void A_stream_that_never_ends_stalls_from_its_start()
    {
        var retention = new SnapshotRetention(LogBytesMax, StallTicks);
        retention.Started(Group, to: 2, index: 500, now: 10);

        Assert.Equal(500UL, retention.CompactionLimit(Group, Leader(follower2Match: 120), 10, wanted: 900, now: 110, stalled, out _));
        Assert.Equal(ulong.MaxValue, retention.CompactionLimit(Group, Leader(follower2Match: 120), 10, wanted: 900, now: 111, stalled, out _));
        Assert.Equal([2UL], stalled);
    }

    private static RaftStatus Leader(ulong follower2Match, ulong follower3Match = 900) =>
        new(1, RaftRole.Leader, Term: 4, Vote: 1, Leader: 1, Commit: 900, Applied: 900, LastIndex: 900, LeadTransferee: 0,
            ConfState.OfVoters(1, 2, 3), [Peer(1, 900), Peer(2, follower2Match), Peer(3, follower3Match)]);

    private static PeerProgress Peer(ulong id, ulong match) =>
        new(id, match, match + 1, ProgressState.Replicate, IsLearner: false, RecentActive: true, InflightMessages: 0, PendingSnapshot: 0);
}
