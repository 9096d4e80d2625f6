using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

/// <summary>
/// The synced mark (a test instrument for verify's power-cut fault) says exactly what the log has fdatasync'd, and a log
/// cut at it (<see cref="WalPowerCut"/>) recovers exactly the acknowledged prefix.
/// </summary>
public class WalSyncedMarkTests
{
    private const int EntriesPerAppend = 20; // ~3 KiB: a 64 KiB test segment rolls after about 15 appends.

    private static string MarkPath(WalDirectory dir) => Path.Combine(dir.Path, "synced.mark");

    private static WalOptions MarkedOptions(WalDirectory dir, int lag = 0) =>
        dir.Options() with { SyncedMarkPath = MarkPath(dir), SyncedMarkLagMarks = lag, CompactionRewriteSegmentsMin = 100 };

    /// <summary>Appends entries [from, from + EntriesPerAppend) of group 1 as one append (one flush: nothing else is queued).</summary>
    private static async Task<ulong> AppendOne(WriteAheadLog wal, ulong from)
    {
        var to = from + EntriesPerAppend - 1;
        await WalTestData.Append(wal, 1, from, to, commit: from - 1);
        return to + 1;
    }

    /// <summary>Where the readable records end: the last segment that has any, and the offset after its last record.</summary>
    private static WalSyncedMark EndOfRecords(WalDirectory dir)
    {
        var end = new WalSyncedMark(0, 0);
        foreach (var (sequence, path) in WalFiles.ListSegments(dir.Path))
        {
            var records = WalTestData.Records(File.ReadAllBytes(path), path);
            if (records.Count > 0)
            {
                end = new WalSyncedMark(sequence, records[^1].Offset + WalRecord.Align(records[^1].Length));
            }
        }

        return end;
    }

    [Fact]
    public async Task Mark_follows_every_flush_across_segment_rolls_and_a_reopen()
    {
        using var dir = new WalDirectory();
        var next = 1UL;
        using (var wal = WriteAheadLog.Open(MarkedOptions(dir)))
        {
            Assert.Equal(new WalSyncedMark(1, 0), WalSyncedMark.Read(MarkPath(dir)));
            for (var i = 0; i < 40; i++)
            {
                next = await AppendOne(wal, next);
                Assert.Equal(EndOfRecords(dir), WalSyncedMark.Read(MarkPath(dir)));
            }

            Assert.True(WalFiles.ListSegments(dir.Path).Count >= 3, "the appends rolled over segments");
        }

        var before = WalSyncedMark.Read(MarkPath(dir));
        using (var reopened = WriteAheadLog.Open(MarkedOptions(dir)))
        {
            // Recovery synced what it kept; the writer resumes after the last record or in a fresh segment.
            var mark = WalSyncedMark.Read(MarkPath(dir))!.Value;
            Assert.True(mark == before || (mark.Segment > before!.Value.Segment && mark.OffsetBytes == 0), $"mark {mark} after reopening at {before}");
            await AppendOne(reopened, next);
            Assert.Equal(EndOfRecords(dir), WalSyncedMark.Read(MarkPath(dir)));
        }
    }

    [Fact]
    public async Task Without_a_mark_path_no_mark_file_is_written()
    {
        using var dir = new WalDirectory();
        Assert.Null(dir.Options().SyncedMarkPath);
        using (var wal = dir.Open())
        {
            await AppendOne(wal, 1);
        }

        // Only the log's own files: the format file and segments (the active one and the spare).
        Assert.All(Directory.GetFiles(dir.Path), path => Assert.True(
            Path.GetFileName(path) == WalFormat.FileName || WalFiles.ListSegments(dir.Path).Any(s => s.Path == path), $"unexpected file {path}"));
    }

    [Fact]
    public async Task A_lagging_mark_stays_that_many_updates_behind()
    {
        const int Lag = 3;
        using var dir = new WalDirectory();
        var truth = new List<WalSyncedMark> { new(1, 0) }; // The mark written at open.
        using var wal = WriteAheadLog.Open(MarkedOptions(dir, Lag));
        var next = 1UL;
        for (var i = 0; i < 8; i++)
        {
            next = await AppendOne(wal, next);
            truth.Add(EndOfRecords(dir));
            Assert.Equal(truth[Math.Max(0, truth.Count - 1 - Lag)], WalSyncedMark.Read(MarkPath(dir)));
        }

        Assert.Equal(1UL, truth[^1].Segment); // No roll: one update per flush.
    }

    public static TheoryData<int> UnsyncedAppends => new()
    {
        2, // the unsynced writes stay in the marked segment
        40, // they roll over several more segments
    };

    [Theory]
    [MemberData(nameof(UnsyncedAppends))]
    public async Task A_log_cut_at_its_mark_recovers_exactly_the_synced_prefix(int unsyncedAppends)
    {
        using var dir = new WalDirectory();
        var next = 1UL;
        using (var wal = WriteAheadLog.Open(MarkedOptions(dir)))
        {
            for (var i = 0; i < 25; i++)
            {
                next = await AppendOne(wal, next);
            }
        }

        var synced = next - 1;
        var mark = WalSyncedMark.Read(MarkPath(dir))!.Value;
        Assert.True(mark.Segment >= 2, "the synced prefix spans a roll");

        // Writes after the mark stand for what had reached the page cache but not the disk when the power went.
        using (var wal = WriteAheadLog.Open(dir.Options() with { CompactionRewriteSegmentsMin = 100 }))
        {
            for (var i = 0; i < unsyncedAppends; i++)
            {
                next = await AppendOne(wal, next);
            }
        }

        var segmentsBefore = WalFiles.ListSegments(dir.Path).Select(s => s.Sequence).ToList();
        var cut = WalPowerCut.Apply(dir.Path, mark);
        Assert.True(cut.BytesDropped > 0);
        Assert.True(unsyncedAppends > 15 ? cut.SegmentsTouched >= 2 : cut.SegmentsTouched == 1, $"{cut.SegmentsTouched} segments touched");
        Assert.Equal(segmentsBefore, WalFiles.ListSegments(dir.Path).Select(s => s.Sequence).ToList()); // Files stay, at their size.
        Assert.Equal(mark, EndOfRecords(dir));

        using (var recovered = dir.Open())
        {
            WalTestData.AssertLog(recovered.GetGroup(1), 1, 1, synced);
            Assert.Equal(new HardState(1, 0, synced - EntriesPerAppend), recovered.GetGroup(1).HardState);
            Assert.DoesNotContain(dir.LogLines, line => line.Contains("torn", StringComparison.Ordinal)); // Cut at a flush boundary.
            await AppendOne(recovered, synced + 1);
        }

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(1), 1, 1, synced + EntriesPerAppend);
    }
}
