using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

public class WalCompactionTests
{
    private static readonly ConfState Members = ConfState.OfVoters(1, 2, 3);

    // Two sequential appends: the writer compacts after each flush, so once the second completes the
    // compaction triggered by everything before the first (including a checkpoint it queued) has run.
    private static async Task Barrier(WriteAheadLog wal)
    {
        await wal.Write(new WalGroupWrite(1, [], null, null));
        await wal.Write(new WalGroupWrite(1, [], null, null));
        await wal.Write(new WalGroupWrite(1, [], null, null));
    }

    private static async Task<ulong> WriteBusyGroup(WriteAheadLog wal, ulong from, int batches, bool snapshot)
    {
        var next = from;
        for (var b = 0; b < batches; b++)
        {
            await WalTestData.Append(wal, 1, next, next + 19, commit: next + 19);
            next += 20;
            if (snapshot)
            {
                wal.SetCompactableIndex(1, next - 1);
                await wal.Write(new WalGroupWrite(1, [], null, new SnapshotMetadata(next - 1, 1, Members)));
            }
        }

        return next - 1;
    }

    [Fact]
    public async Task Segments_whose_entries_are_all_covered_by_snapshots_are_deleted()
    {
        using var dir = new WalDirectory();
        ulong last;
        using (var wal = dir.Open())
        {
            last = await WriteBusyGroup(wal, 1, 100, snapshot: false);
            var before = wal.Statistics.Segments;
            Assert.True(before >= 4, $"expected the log to span several segments, got {before}");
            wal.SetCompactableIndex(1, last - 10);
            await wal.Write(new WalGroupWrite(1, [], null, new SnapshotMetadata(last - 10, 1, Members)));
            await Barrier(wal);
            Assert.True(wal.Statistics.Segments <= 2, $"{wal.Statistics.Segments} segments left");
            Assert.Contains(dir.LogLines, l => l.Contains("deleted", StringComparison.Ordinal));
            WalTestData.AssertLog(wal.GetGroup(1), 1, last - 9, last);
        }

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(1), 1, last - 9, last);
    }

    [Fact]
    public async Task An_idle_group_with_a_small_log_is_copied_forward_so_old_segments_go()
    {
        using var dir = new WalDirectory();
        using (var wal = dir.Open())
        {
            await wal.Write(new WalGroupWrite(2, WalTestData.Entries(2, 1, 5), new HardState(3, 2, 4), null));
            await WriteBusyGroup(wal, 1, 100, snapshot: true);
            await Barrier(wal);
            Assert.True(wal.Statistics.Segments <= 3, $"{wal.Statistics.Segments} segments left");
            Assert.DoesNotContain(WalFiles.SegmentName(1), string.Join(' ', dir.Segments()), StringComparison.Ordinal);
            WalTestData.AssertLog(wal.GetGroup(2), 2, 1, 5);
        }

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(2), 2, 1, 5);
        Assert.Equal(new HardState(3, 2, 4), reopened.GetGroup(2).HardState);
    }

    [Fact]
    public async Task A_lagging_group_with_a_large_log_is_reported_until_it_snapshots()
    {
        using var dir = new WalDirectory();
        using var wal = dir.Open();
        // 30 entries of 200 bytes: more than CompactionRewriteBytesMax (4096), so it is not copied.
        await wal.Write(new WalGroupWrite(3, WalTestData.Entries(3, 1, 30, length: 200), new HardState(1, 0, 30), null));
        var last = await WriteBusyGroup(wal, 1, 100, snapshot: true);
        await Barrier(wal);
        Assert.Contains(3UL, wal.Statistics.GroupsNeedingSnapshot);
        Assert.Contains(WalFiles.SegmentName(1), string.Join(' ', dir.Segments()), StringComparison.Ordinal);

        wal.SetCompactableIndex(3, 30);
        await wal.Write(new WalGroupWrite(3, [], null, new SnapshotMetadata(30, 1, Members)));
        await Barrier(wal);
        Assert.Empty(wal.Statistics.GroupsNeedingSnapshot);
        Assert.DoesNotContain(WalFiles.SegmentName(1), string.Join(' ', dir.Segments()), StringComparison.Ordinal);
        Assert.Equal(31UL, wal.GetGroup(3).FirstIndex);
        Assert.Equal(last, wal.GetGroup(1).LastIndex);
    }
}
