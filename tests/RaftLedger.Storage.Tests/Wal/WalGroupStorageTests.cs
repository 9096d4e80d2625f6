using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

public class WalGroupStorageTests
{
    [Fact]
    public void Empty_group_starts_at_index_one_with_empty_state()
    {
        using var dir = new WalDirectory();
        using var wal = dir.Open();
        var group = wal.GetGroup(5);
        Assert.Equal(1UL, group.FirstIndex);
        Assert.Equal(0UL, group.LastIndex);
        Assert.True(group.HardState.IsEmpty);
        Assert.Equal(SnapshotMetadata.Empty, group.Snapshot);
        Assert.True(group.TryGetTerm(0, out var term));
        Assert.Equal(0UL, term);
        Assert.False(group.TryGetTerm(1, out _));
    }

    [Fact]
    public async Task Appended_entries_and_hard_state_are_visible_once_the_append_completes()
    {
        using var dir = new WalDirectory();
        using var wal = dir.Open();
        await wal.Write(new WalGroupWrite(1, WalTestData.Entries(1, 1, 5, term: 2), new HardState(2, 3, 4), null));
        var group = wal.GetGroup(1);
        WalTestData.AssertLog(group, 1, 1, 5, _ => 2);
        Assert.Equal(new HardState(2, 3, 4), group.HardState);
        Assert.True(group.TryGetTerm(5, out var term));
        Assert.Equal(2UL, term);
        Assert.False(group.TryGetTerm(6, out _));
    }

    [Fact]
    public async Task Get_entries_stops_at_max_bytes_but_returns_at_least_one()
    {
        using var dir = new WalDirectory();
        using var wal = dir.Open();
        await wal.Write(new WalGroupWrite(1, WalTestData.Entries(1, 1, 10, length: 100), null, null));
        var group = wal.GetGroup(1);
        var one = new List<Entry>();
        group.GetEntries(3, 9, 1, one);
        Assert.Single(one);
        Assert.Equal(3UL, one[0].Index);

        var three = new List<Entry>();
        group.GetEntries(3, 9, 3 * (Entry.OverheadBytes + 100), three);
        Assert.Equal([3UL, 4UL, 5UL], three.Select(e => e.Index));
    }

    [Fact]
    public async Task A_conflicting_suffix_is_replaced_and_stays_replaced_after_restart()
    {
        using var dir = new WalDirectory();
        using (var wal = dir.Open())
        {
            await WalTestData.Append(wal, 1, 1, 10, term: 1, commit: 4);
            await wal.Write(new WalGroupWrite(1, WalTestData.Entries(1, 6, 7, term: 2), new HardState(2, 0, 5), null));
            WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 7, i => i >= 6 ? 2UL : 1UL);
        }

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(1), 1, 1, 7, i => i >= 6 ? 2UL : 1UL);
        Assert.Equal(new HardState(2, 0, 5), reopened.GetGroup(1).HardState);
    }

    [Fact]
    public async Task Overwriting_a_committed_entry_is_refused()
    {
        using var dir = new WalDirectory();
        using var wal = dir.Open();
        await WalTestData.Append(wal, 1, 1, 10, commit: 6);
        var error = await Assert.ThrowsAsync<ArgumentException>(() =>
            wal.Write(new WalGroupWrite(1, WalTestData.Entries(1, 6, 6, term: 2), null, null)));
        Assert.Contains("committed", error.Message, StringComparison.Ordinal);
        WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 10);
    }

    [Fact]
    public async Task Entries_that_would_leave_a_gap_are_refused_and_later_appends_still_work()
    {
        using var dir = new WalDirectory();
        using var wal = dir.Open();
        await WalTestData.Append(wal, 1, 1, 3);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => WalTestData.Append(wal, 1, 5, 6));
        Assert.Contains("gap", error.Message, StringComparison.Ordinal);
        await WalTestData.Append(wal, 1, 4, 6);
        WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 6);
    }

    [Fact]
    public async Task Hard_state_going_backwards_is_refused()
    {
        using var dir = new WalDirectory();
        using var wal = dir.Open();
        await WalTestData.Append(wal, 1, 1, 3, term: 3, commit: 2);
        await Assert.ThrowsAsync<ArgumentException>(() =>
            wal.Write(new WalGroupWrite(1, [], new HardState(2, 0, 2), null)));
        await Assert.ThrowsAsync<ArgumentException>(() =>
            wal.Write(new WalGroupWrite(1, [], new HardState(3, 0, 9), null)));
        Assert.Equal(new HardState(3, 0, 2), wal.GetGroup(1).HardState);
    }

    [Fact]
    public async Task A_snapshot_marker_past_the_compactable_index_is_refused()
    {
        using var dir = new WalDirectory();
        using var wal = dir.Open();
        await WalTestData.Append(wal, 1, 1, 10);
        var marker = new SnapshotMetadata(8, 1, ConfState.OfVoters(1, 2, 3));
        var error = await Assert.ThrowsAsync<ArgumentException>(() => wal.Write(new WalGroupWrite(1, [], null, marker)));
        Assert.Contains("SetCompactableIndex", error.Message, StringComparison.Ordinal);
        Assert.Equal(1UL, wal.GetGroup(1).FirstIndex);

        wal.SetCompactableIndex(1, 8);
        await wal.Write(new WalGroupWrite(1, [], null, marker));
        Assert.Equal(9UL, wal.GetGroup(1).FirstIndex);
    }

    [Fact]
    public async Task Compacting_snapshot_keeps_later_entries_and_membership_survives_restart()
    {
        using var dir = new WalDirectory();
        var conf = ConfState.OfVoters(1, 2, 3);
        using (var wal = dir.Open())
        {
            await WalTestData.Append(wal, 1, 1, 10);
            wal.SetCompactableIndex(1, 6);
            await wal.Write(new WalGroupWrite(1, [], null, new SnapshotMetadata(6, 1, conf)));
            var group = wal.GetGroup(1);
            WalTestData.AssertLog(group, 1, 7, 10);
            Assert.True(group.TryGetTerm(6, out var term));
            Assert.Equal(1UL, term);
            Assert.False(group.TryGetTerm(5, out _));
        }

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(1), 1, 7, 10);
        Assert.True(conf.SameMembersAs(reopened.GetGroup(1).ConfState));
        Assert.Equal(6UL, reopened.GetGroup(1).CompactableIndex);
    }

    [Fact]
    public async Task Installed_snapshot_with_a_different_term_replaces_the_whole_log()
    {
        using var dir = new WalDirectory();
        using (var wal = dir.Open())
        {
            await WalTestData.Append(wal, 1, 1, 10);
            wal.SetCompactableIndex(1, 20);
            await wal.Write(new WalGroupWrite(1, WalTestData.Entries(1, 21, 22, term: 4), new HardState(4, 0, 20),
                new SnapshotMetadata(20, 3, ConfState.OfVoters(1))));
            WalTestData.AssertLog(wal.GetGroup(1), 1, 21, 22, _ => 4);
        }

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(1), 1, 21, 22, _ => 4);
        Assert.Equal(20UL, reopened.GetGroup(1).Snapshot.Index);
    }

    [Fact]
    public async Task Groups_are_independent_within_one_append()
    {
        using var dir = new WalDirectory();
        using (var wal = dir.Open())
        {
            await wal.Write(
                new WalGroupWrite(1, WalTestData.Entries(1, 1, 3), new HardState(1, 1, 0), null),
                new WalGroupWrite(2, WalTestData.Entries(2, 1, 5), null, null));
            await Assert.ThrowsAsync<ArgumentException>(() => wal.Write(
                new WalGroupWrite(3, WalTestData.Entries(3, 1, 1), null, null),
                new WalGroupWrite(3, WalTestData.Entries(3, 2, 2), null, null)));
        }

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(1), 1, 1, 3);
        WalTestData.AssertLog(reopened.GetGroup(2), 2, 1, 5);
        Assert.Equal(new HardState(1, 1, 0), reopened.GetGroup(1).HardState);
        Assert.Equal(0UL, reopened.GetGroup(3).LastIndex);
    }

    [Fact]
    public async Task Oversized_entries_and_appends_are_refused_before_queueing()
    {
        using var dir = new WalDirectory();
        using var wal = dir.Open();
        var big = new Entry(1, 1, EntryType.Normal, new byte[4096]);
        var error = Assert.Throws<ArgumentException>(() => { _ = wal.Write(new WalGroupWrite(1, [big], null, null)); });
        Assert.Contains("RecordBytesMax", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => { _ = wal.Write(new WalGroupWrite(1, WalTestData.Entries(1, 1, 100, length: 1000), null, null)); });
        await WalTestData.Append(wal, 1, 1, 1);
        Assert.Equal(1UL, wal.GetGroup(1).LastIndex);
    }

    [Fact]
    public async Task Cache_evicts_old_entries_which_are_then_read_back_from_segments()
    {
        using var dir = new WalDirectory();
        using var wal = WriteAheadLog.Open(dir.Options(groupCacheBytesMax: 2000));
        for (ulong i = 1; i <= 200; i += 10)
        {
            await WalTestData.Append(wal, 1, i, i + 9);
        }

        var group = wal.GetGroup(1);
        Assert.True(group.CachedBytes <= 2000, $"cache holds {group.CachedBytes} bytes");
        Assert.True(group.CacheFirstIndex > 150, $"cache starts at {group.CacheFirstIndex}");
        WalTestData.AssertLog(group, 1, 1, 200);
    }

    [Fact]
    public async Task A_lagging_read_is_served_in_bounded_sequential_pieces_and_returns_the_same_entries()
    {
        using var dir = new WalDirectory();
        var options = dir.Options(groupCacheBytesMax: 0) with { ReadBytesMax = 4096 };
        using (var wal = WriteAheadLog.Open(options))
        {
            for (ulong i = 1; i <= 200; i += 10)
            {
                // Another group's records lie between group 1's: a read covers them too and must skip them.
                await WalTestData.Append(wal, 1, i, i + 9);
                await WalTestData.Append(wal, 2, (i / 2) + 1, (i / 2) + 5);
            }

            AssertReadInPieces(wal, options.ReadBytesMax);
        }

        // After a restart the locations come from recovery; the same reads serve them.
        using var reopened = WriteAheadLog.Open(options);
        AssertReadInPieces(reopened, options.ReadBytesMax);
    }

    private static void AssertReadInPieces(WriteAheadLog wal, int readBytesMax)
    {
        var group = wal.GetGroup(1);
        Assert.Equal(201UL, group.CacheFirstIndex); // nothing cached: every entry comes from a segment
        var before = wal.Statistics.SegmentReads;
        WalTestData.AssertLog(group, 1, 1, 200);
        var reads = wal.Statistics.SegmentReads - before;
        long recordBytes = 0;
        for (ulong i = 1; i <= 200; i++)
        {
            recordBytes += WalRecord.HeaderBytes + WalTestData.Payload(1, i, 1).Length;
        }

        // Each read covers at most readBytesMax, so it takes at least recordBytes / readBytesMax of them, and it
        // takes far fewer than one per entry.
        Assert.True(reads * readBytesMax >= recordBytes, $"{reads} reads of at most {readBytesMax} bytes cannot cover {recordBytes} bytes");
        Assert.True(reads <= 200 / 4, $"{reads} reads for 200 entries");

        // A byte budget still cuts the answer at the same entry as before (always at least one entry).
        var limited = new List<Entry>();
        group.GetEntries(5, 201, 1000, limited);
        Assert.True(limited.Sum(e => e.SizeBytes) <= 1000);
        Assert.Equal(Enumerable.Range(5, limited.Count).Select(i => (ulong)i), limited.Select(e => e.Index));
        Assert.True(limited.Sum(e => e.SizeBytes) + Entry.OverheadBytes + WalTestData.Payload(1, 5 + (ulong)limited.Count, 1).Length > 1000,
            "the answer stops only when the next entry would not fit");
        var one = new List<Entry>();
        group.GetEntries(7, 201, 0, one);
        Assert.Equal(7UL, Assert.Single(one).Index);
        Assert.True(one[0].Data.Span.SequenceEqual(WalTestData.Payload(1, 7, 1)));
    }

    [Fact]
    public async Task Many_concurrent_appenders_all_become_durable()
    {
        using var dir = new WalDirectory();
        using (var wal = dir.Open())
        {
            var tasks = new List<Task>();
            for (ulong g = 1; g <= 16; g++)
            {
                var group = g;
                tasks.Add(Task.Run(async () =>
                {
                    for (ulong i = 1; i <= 50; i++)
                    {
                        await WalTestData.Append(wal, group, i, i);
                    }
                }, TestContext.Current.CancellationToken));
            }

            await Task.WhenAll(tasks);
            Assert.True(wal.Statistics.Flushes <= wal.Statistics.Appends);
            Assert.Equal(800, wal.Statistics.Appends);
        }

        using var reopened = dir.Open();
        for (ulong g = 1; g <= 16; g++)
        {
            WalTestData.AssertLog(reopened.GetGroup(g), g, 1, 50);
        }
    }
}
