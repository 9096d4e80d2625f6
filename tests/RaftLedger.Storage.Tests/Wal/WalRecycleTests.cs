using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

/// <summary>
/// Compacted segments are recycled, not zero-filled: the records of a file's earlier life stay on disk, sealed with
/// the earlier segment sequence, and recovery must never take them as new. Images are built record by record so that
/// the stale records are exactly the dangerous ones: a valid-looking continuation right after the new tail.
/// </summary>
public class WalRecycleTests
{
    private const long SegmentBytes = 64 * 1024; // WalDirectory.Options' default.

    /// <summary>Writes one append as one flush at <paramref name="at"/>: entries [from, to] of group 1 and a hard state.</summary>
    private static int PutAppend(byte[] image, int at, ulong segmentSequence, ulong flush, ulong from, ulong to, ulong term)
    {
        for (var index = from; index <= to; index++)
        {
            var header = new WalRecordHeader(WalRecordKind.Entry, 0, EntryType.Normal, flush, 1, term, index);
            at += WalRecord.Write(image.AsSpan(at), segmentSequence, header, WalTestData.Payload(1, index, term));
        }

        var state = new byte[WalRecord.HardStatePayloadBytes];
        WalRecord.WriteHardState(state, new HardState(term, 0, from - 1));
        var last = new WalRecordHeader(WalRecordKind.HardState, WalRecord.FlagEndOfAppend | WalRecord.FlagEndOfFlush, EntryType.Normal, flush, 1, term, 0);
        return at + WalRecord.Write(image.AsSpan(at), segmentSequence, last, state);
    }

    /// <summary>
    /// A recycled segment image: its new life (segment <paramref name="sequence"/>, entries 1..6 of term 1 in flushes
    /// 1 and 2), then, from the first byte after it, records of its earlier life (segment <paramref name="staleSequence"/>)
    /// that would chain on: entries 7.. of term 2 from flush <paramref name="staleFirstFlush"/>, up to the file's end.
    /// </summary>
    private static (byte[] Image, int NewEnd) RecycledImage(ulong sequence, ulong staleSequence, ulong staleFirstFlush)
    {
        var image = new byte[SegmentBytes];
        var at = PutAppend(image, 0, sequence, 1, 1, 3, term: 1);
        at = PutAppend(image, at, sequence, 2, 4, 6, term: 1);
        var newEnd = at;
        var index = 7UL;
        for (var flush = staleFirstFlush; at + 4096 < image.Length; flush++, index += 3)
        {
            at = PutAppend(image, at, staleSequence, flush, index, index + 2, term: 2);
        }

        return (image, newEnd);
    }

    private static string SegmentPath(WalDirectory dir, ulong sequence) => Path.Combine(dir.Path, WalFiles.SegmentName(sequence));

    public static TheoryData<ulong> StaleFlushes => new()
    {
        3, // the stale records continue the flush chain: an unsealed check would recover them as entries 7..
        40, // they look like later synced flushes: an unsealed check would refuse to start (false corruption)
    };

    [Theory]
    [MemberData(nameof(StaleFlushes))]
    public async Task Old_records_right_after_the_tail_of_a_recycled_segment_are_never_recovered(ulong staleFirstFlush)
    {
        using var dir = new WalDirectory();
        var (image, newEnd) = RecycledImage(7, 2, staleFirstFlush);
        Assert.True(WalTestData.Records(image.AsSpan(newEnd).ToArray(), SegmentPath(dir, 2)).Count > 10, "the stale records are valid for their own segment");
        await File.WriteAllBytesAsync(SegmentPath(dir, 7), image, TestContext.Current.CancellationToken);

        using (var wal = dir.Open())
        {
            WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 6);
            Assert.Equal(new HardState(1, 0, 3), wal.GetGroup(1).HardState);
            await WalTestData.Append(wal, 1, 7, 9, commit: 6);
        }

        // Writing resumed right at the old tail, over the stale records; the rest of them stay and still never count.
        var records = WalTestData.Records(await File.ReadAllBytesAsync(SegmentPath(dir, 7), TestContext.Current.CancellationToken), SegmentPath(dir, 7));
        Assert.Equal(newEnd, records.First(r => r.Header.Kind == WalRecordKind.Entry && r.Header.Index == 7).Offset);
        using (var reopened = dir.Open())
        {
            WalTestData.AssertLog(reopened.GetGroup(1), 1, 1, 9);
        }

        Assert.DoesNotContain(dir.LogLines, l => l.Contains("torn", StringComparison.Ordinal));
    }

    public static TheoryData<bool> TornFill => new() { false, true };

    [Theory]
    [MemberData(nameof(TornFill))]
    public async Task A_torn_last_record_in_a_recycled_segment_drops_its_append_and_no_old_record_returns(bool garbage)
    {
        using var source = new WalDirectory();
        var (image, newEnd) = RecycledImage(7, 2, staleFirstFlush: 3);
        var last = WalTestData.Records(image, SegmentPath(source, 7))[^1];
        Assert.Equal(newEnd, last.Offset + WalRecord.Align(last.Length));
        var random = new Random(4321);
        for (var cut = 0; cut < last.Length; cut++)
        {
            using var dir = new WalDirectory();
            var torn = WalTestData.TearRecord(image, last.Offset, last.Length, cut, garbage, random);

            await File.WriteAllBytesAsync(SegmentPath(dir, 7), torn, TestContext.Current.CancellationToken);
            using (var wal = dir.Open())
            {
                if (torn.AsSpan().SequenceEqual(image))
                {
                    WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 6); // The "torn" bytes were zeros already.
                    continue;
                }

                // The torn record is the hard state ending the second append: entries 4..6 go too.
                WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 3);
                Assert.Contains(dir.LogLines, l => l.Contains("torn tail", StringComparison.Ordinal));
                await WalTestData.Append(wal, 1, 4, 9, commit: 3);
            }

            using var reopened = dir.Open();
            WalTestData.AssertLog(reopened.GetGroup(1), 1, 1, 9);
        }
    }

    [Fact]
    public async Task A_crash_right_after_a_free_file_became_the_next_segment_recovers_the_log_and_reuses_the_file()
    {
        // The spare was renamed into place (wal-8.log, still holding its earlier life as segment 3) and nothing was
        // written to it yet. Its old records look like later synced flushes; they must neither count nor alarm.
        using var dir = new WalDirectory();
        var (live, _) = RecycledImage(7, 2, staleFirstFlush: 3);
        var (old, _) = RecycledImage(3, 1, staleFirstFlush: 9);
        await File.WriteAllBytesAsync(SegmentPath(dir, 7), live, TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(SegmentPath(dir, 8), old, TestContext.Current.CancellationToken);

        using (var wal = dir.Open())
        {
            WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 6);
            await FillSegments(wal, from: 7, rolls: 2);
        }

        // The empty wal-8 was kept and recycled as wal-9 (above every name seen), not left behind or zero-filled anew.
        Assert.DoesNotContain(WalFiles.ListSegments(dir.Path), s => s.Sequence == 8);
        Assert.Empty(WalFiles.ListFree(dir.Path));
        Assert.True(HasOldRecordsAfterItsTail(SegmentPath(dir, 9)), "wal-9 is not the recycled file");
        await AssertReopensWithWholeLog(dir);
    }

    [Fact]
    public async Task A_free_file_left_by_a_crash_is_recycled_and_its_old_records_never_return()
    {
        // Compaction renamed segment 2 to its free name and then the node crashed: the free file is ignored by the
        // scan, and later becomes a segment of a higher sequence, under which its records fail the check.
        using var dir = new WalDirectory();
        var (live, _) = RecycledImage(7, 2, staleFirstFlush: 3);
        var (old, _) = RecycledImage(2, 1, staleFirstFlush: 3);
        await File.WriteAllBytesAsync(SegmentPath(dir, 7), live, TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(Path.Combine(dir.Path, WalFiles.FreeName(2)), old, TestContext.Current.CancellationToken);

        using (var wal = dir.Open())
        {
            WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 6);
            await FillSegments(wal, from: 7, rolls: 2);
        }

        Assert.Empty(WalFiles.ListFree(dir.Path));
        Assert.True(HasOldRecordsAfterItsTail(SegmentPath(dir, 8)), "the free file did not become the spare wal-8");
        await AssertReopensWithWholeLog(dir);
    }

    [Fact]
    public async Task Compacted_segments_are_recycled_and_at_most_the_limit_of_free_files_is_kept()
    {
        using var dir = new WalDirectory();
        var members = ConfState.OfVoters(1, 2, 3);
        ulong last = 0;
        var sawRecycledTail = false;
        using (var wal = dir.Open())
        {
            for (var batch = 0; batch < 120; batch++)
            {
                await WalTestData.Append(wal, 1, last + 1, last + 20, commit: last);
                last += 20;
                wal.SetCompactableIndex(1, last - 10);
                await wal.Write(new WalGroupWrite(1, [], null, new SnapshotMetadata(last - 10, 1, members)));
                // Two queued writes: the compaction after the marker has run. Only the spare may still be in the making.
                await wal.Write(new WalGroupWrite(1, [], null, null));
                await wal.Write(new WalGroupWrite(1, [], null, null));
                var live = wal.Statistics.Segments;
                Assert.True(dir.Segments().Length <= live + 1, "more than the log and its spare");
                sawRecycledTail |= dir.Segments().Take(live).Any(HasOldRecordsAfterItsTail);
            }

            Assert.Contains(dir.LogLines, l => l.Contains("to be recycled", StringComparison.Ordinal));
            Assert.True(sawRecycledTail, "no segment was ever a recycled file");
            WalTestData.AssertLog(wal.GetGroup(1), 1, last - 9, last);
        }

        Assert.True(WalFiles.ListFree(dir.Path).Count <= WalOptions.FreeSegmentsMaxDefault, "more free files than the limit");

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(1), 1, last - 9, last);
    }

    [Fact]
    public async Task Segments_freed_together_are_all_kept_up_to_the_limit_and_each_becomes_a_later_segment()
    {
        const int Limit = 2;
        using var dir = new WalDirectory();
        var members = ConfState.OfVoters(1, 2, 3);
        ulong first;
        using (var wal = WriteAheadLog.Open(dir.Options() with { FreeSegmentsMax = Limit }))
        {
            // Five rolls with nothing compactable, then one marker frees every segment but the active one at once.
            await FillSegments(wal, 1, rolls: 5);
            var marked = wal.GetGroup(1).LastIndex;
            wal.SetCompactableIndex(1, marked);
            await wal.Write(new WalGroupWrite(1, [], null, new SnapshotMetadata(marked, 1, members)));
            await wal.Write(new WalGroupWrite(1, [], null, null));
            await wal.Write(new WalGroupWrite(1, [], null, null));
            Assert.Equal(Limit, WalFiles.ListFree(dir.Path).Count);
            Assert.Contains(dir.LogLines, l => l.Contains("deleted", StringComparison.Ordinal));

            // The spare made before the marker is used first; then every kept file becomes a segment in turn.
            var before = dir.Segments().Select(Path.GetFileName).ToHashSet();
            await FillSegments(wal, marked + 1, rolls: Limit + 1);
            var recycled = dir.Segments().Where(path => !before.Contains(Path.GetFileName(path))).Count(HasOldRecordsAfterItsTail);
            Assert.True(recycled >= Limit, $"{recycled} of the segments made after the marker were recycled files, {Limit} expected");
            first = marked + 1;
        }

        using var reopened = WriteAheadLog.Open(dir.Options() with { FreeSegmentsMax = Limit });
        WalTestData.AssertLog(reopened.GetGroup(1), 1, first, reopened.GetGroup(1).LastIndex);
    }

    [Fact]
    public void A_log_folder_of_the_first_format_is_refused_with_the_wipe_advice()
    {
        using var dir = new WalDirectory();
        File.Delete(Path.Combine(dir.Path, WalFormat.FileName));
        File.WriteAllBytes(SegmentPath(dir, 1), new byte[SegmentBytes]);

        var error = Assert.Throws<InvalidDataException>(dir.Open);
        Assert.Contains("format 1 (no format file)", error.Message, StringComparison.Ordinal);
        Assert.Contains(RecoveryAdvice.WipeAndRejoin, error.Message, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(dir.Path, WalFormat.FileName), "3");
        Assert.Contains("format 3", Assert.Throws<InvalidDataException>(dir.Open).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_new_folder_gets_the_current_format_file()
    {
        using var dir = new WalDirectory();
        var path = Path.Combine(dir.Path, "fresh");
        using (WriteAheadLog.Open(dir.Options() with { Directory = path }))
        {
        }

        Assert.Equal(WalFormat.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(path, WalFormat.FileName)));
    }

    // Appends 3-entry batches of term 1 to group 1 until the log has rolled into new segments `rolls` times.
    private static async Task FillSegments(WriteAheadLog wal, ulong from, int rolls)
    {
        var target = wal.Statistics.Segments + rolls;
        for (var next = from; wal.Statistics.Segments < target; next += 3)
        {
            await WalTestData.Append(wal, 1, next, next + 2, commit: next - 1);
        }
    }

    private static async Task AssertReopensWithWholeLog(WalDirectory dir)
    {
        ulong last;
        using (var wal = dir.Open())
        {
            last = wal.GetGroup(1).LastIndex;
            Assert.True(last > 6);
            WalTestData.AssertLog(wal.GetGroup(1), 1, 1, last);
            await WalTestData.Append(wal, 1, last + 1, last + 3, commit: last);
        }

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(1), 1, 1, last + 3);
    }

    // True when a segment holds records and bytes after its last record: a recycled file, not a zero-filled one.
    private static bool HasOldRecordsAfterItsTail(string path)
    {
        var image = File.ReadAllBytes(path);
        var records = WalTestData.Records(image, path);
        return records.Count > 0 && image.AsSpan(records[^1].Offset + WalRecord.Align(records[^1].Length)).IndexOfAnyExcept((byte)0) >= 0;
    }
}
