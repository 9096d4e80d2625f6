using RaftLedger.Raft;
using RaftLedger.Storage.Wal;
using Xunit.Sdk;

namespace RaftLedger.Storage.Tests.Wal;

public class WalRecoveryTests
{
    // Writes `appends` appends of 3 entries + hard state to group 1, each awaited (so each is its own flush).
    private static async Task<string> WriteAppends(WalDirectory dir, int appends)
    {
        using var wal = dir.Open();
        for (var a = 0; a < appends; a++)
        {
            var from = (ulong)(a * 3) + 1;
            await WalTestData.Append(wal, 1, from, from + 2, commit: from - 1);
        }

        // Data is in the first segment; a second one is the empty spare made ahead of need.
        return dir.Segments()[0];
    }

    private static void AssertOnlyLog(WalDirectory dir, ulong last)
    {
        using var wal = dir.Open();
        WalTestData.AssertLog(wal.GetGroup(1), 1, 1, last);
    }

    [Fact]
    public async Task Reopening_restores_every_group_after_a_clean_shutdown_and_appending_continues()
    {
        using var dir = new WalDirectory();
        await WriteAppends(dir, 5);
        using (var wal = dir.Open())
        {
            WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 15);
            Assert.Equal(new HardState(1, 0, 12), wal.GetGroup(1).HardState);
            await WalTestData.Append(wal, 1, 16, 20, commit: 15);
        }

        AssertOnlyLog(dir, 20);
        Assert.DoesNotContain(dir.LogLines, l => l.Contains("torn", StringComparison.Ordinal));
    }

    public static TheoryData<bool> TornFill => new() { false, true };

    [Theory]
    [MemberData(nameof(TornFill))]
    public async Task A_last_record_torn_at_every_byte_is_truncated_and_its_whole_append_dropped(bool garbage)
    {
        using var source = new WalDirectory();
        var segment = await WriteAppends(source, 4);
        var image = await File.ReadAllBytesAsync(segment, TestContext.Current.CancellationToken);
        var records = WalTestData.Records(image, segment);
        var last = records[^1];
        Assert.Equal(WalRecordKind.HardState, last.Header.Kind);
        var random = new Random(1234);
        var tornCuts = 0;
        for (var cut = 0; cut < last.Length; cut++)
        {
            using var dir = new WalDirectory();
            var torn = WalTestData.TearRecord(image, last.Offset, last.Length, cut, garbage, random);

            await File.WriteAllBytesAsync(Path.Combine(dir.Path, Path.GetFileName(segment)), torn, TestContext.Current.CancellationToken);
            using var wal = dir.Open();
            if (torn.AsSpan().SequenceEqual(image))
            {
                // The "torn" bytes were zeros already (the vote field is 0): nothing was lost.
                WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 12);
                continue;
            }

            // The torn record is the hard state ending the 4th append: its three entries go too.
            WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 9);
            Assert.Equal(new HardState(1, 0, 6), wal.GetGroup(1).HardState);
            Assert.Contains(dir.LogLines, l => l.Contains("torn tail", StringComparison.Ordinal) && l.Contains(segment[^20..], StringComparison.Ordinal));
            tornCuts++;
        }

        Assert.True(tornCuts >= last.Length - 16, $"only {tornCuts} cuts changed the record");
    }

    [Fact]
    public async Task After_a_torn_tail_is_truncated_new_appends_survive_the_next_restart()
    {
        using var dir = new WalDirectory();
        var segment = await WriteAppends(dir, 3);
        var image = await File.ReadAllBytesAsync(segment, TestContext.Current.CancellationToken);
        var last = WalTestData.Records(image, segment)[^1];
        image.AsSpan(last.Offset + 5, 20).Fill(0xAB);
        await File.WriteAllBytesAsync(segment, image, TestContext.Current.CancellationToken);

        using (var wal = dir.Open())
        {
            WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 6);
            await WalTestData.Append(wal, 1, 7, 12, commit: 6);
        }

        AssertOnlyLog(dir, 12);
        AssertOnlyLog(dir, 12);
    }

    [Fact]
    public async Task A_flipped_bit_in_an_old_record_refuses_to_start_naming_file_and_offset()
    {
        using var source = new WalDirectory();
        var segment = await WriteAppends(source, 6);
        var image = await File.ReadAllBytesAsync(segment, TestContext.Current.CancellationToken);
        var records = WalTestData.Records(image, segment);
        var random = new Random(99);
        for (var trial = 0; trial < 30; trial++)
        {
            // Any record of the first four appends (12 entries + 4 hard states): two synced flushes follow.
            var victim = records[random.Next(0, 16)];
            var bit = random.Next(0, victim.Length * 8);
            using var dir = new WalDirectory();
            var damaged = (byte[])image.Clone();
            damaged[victim.Offset + (bit / 8)] ^= (byte)(1 << (bit % 8));
            var path = Path.Combine(dir.Path, Path.GetFileName(segment));
            await File.WriteAllBytesAsync(path, damaged, TestContext.Current.CancellationToken);

            var error = Assert.Throws<WalCorruptionException>(dir.Open);
            Assert.Equal(path, error.Path);
            Assert.Equal(victim.Offset, error.Offset);
            Assert.Contains(path, error.Message, StringComparison.Ordinal);
            Assert.Contains($"offset {victim.Offset}", error.Message, StringComparison.Ordinal);
            Assert.Contains(RecoveryAdvice.WipeAndRejoin, error.Message, StringComparison.Ordinal);
            // Refusing must not change the evidence.
            Assert.Equal(damaged, await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken));
        }
    }

    [Fact]
    public async Task A_lost_synced_flush_in_the_middle_refuses_to_start()
    {
        using var dir = new WalDirectory();
        var segment = await WriteAppends(dir, 5);
        var image = await File.ReadAllBytesAsync(segment, TestContext.Current.CancellationToken);
        var records = WalTestData.Records(image, segment);
        // Zero the whole second append (records 4..7): later appends were synced after it.
        var from = records[4].Offset;
        var to = records[8].Offset;
        image.AsSpan(from, to - from).Clear();
        await File.WriteAllBytesAsync(segment, image, TestContext.Current.CancellationToken);

        var error = Assert.Throws<WalCorruptionException>(dir.Open);
        Assert.Equal(from, error.Offset);
    }

    [Fact]
    public async Task Lost_unsynced_writes_never_lose_synced_appends_nor_keep_a_partial_append()
    {
        // The last flush holds several appends; a crash keeps an arbitrary subset of its 512-byte sectors.
        using var source = new WalDirectory();
        byte[] before;
        byte[] after;
        string segment;
        using (var wal = source.Open())
        {
            await WalTestData.Append(wal, 1, 1, 5);
            segment = source.Segments()[0];
        }

        before = await File.ReadAllBytesAsync(segment, TestContext.Current.CancellationToken);
        using (var wal = source.Open())
        {
            // Queue several appends at once so they share flushes.
            await Task.WhenAll(
                WalTestData.Append(wal, 1, 6, 20),
                WalTestData.Append(wal, 2, 1, 15),
                WalTestData.Append(wal, 3, 1, 10));
        }

        after = await File.ReadAllBytesAsync(segment, TestContext.Current.CancellationToken);
        // Only the last flush can be unsynced at a crash: earlier ones were synced before it was written.
        var records = WalTestData.Records(after, segment);
        var lastFlush = records[^1].Header.FlushSequence;
        var unsyncedFrom = records.First(r => r.Header.FlushSequence == lastFlush).Offset;
        var synced = (byte[])after.Clone();
        before.AsSpan(unsyncedFrom).CopyTo(synced.AsSpan(unsyncedFrom));
        var seed = Environment.GetEnvironmentVariable("WAL_TEST_SEED") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : 4242;
        var random = new Random(seed);
        for (var trial = 0; trial < 60; trial++)
        {
            using var dir = new WalDirectory();
            var crashed = (byte[])synced.Clone();
            var keep = random.NextDouble();
            for (var sector = unsyncedFrom / 512 * 512; sector < crashed.Length; sector += 512)
            {
                if (random.NextDouble() < keep)
                {
                    var from = Math.Max(sector, unsyncedFrom);
                    after.AsSpan(from, sector + 512 - from).CopyTo(crashed.AsSpan(from));
                }
            }

            await File.WriteAllBytesAsync(Path.Combine(dir.Path, Path.GetFileName(segment)), crashed, TestContext.Current.CancellationToken);
            try
            {
                using var wal = dir.Open();
                WalTestData.AssertLog(wal.GetGroup(1), 1, 1, wal.GetGroup(1).LastIndex);
                Assert.True(wal.GetGroup(1).LastIndex is 5 or 20, $"group 1 has a partial append: last {wal.GetGroup(1).LastIndex}");
                Assert.True(wal.GetGroup(2).LastIndex is 0 or 15, $"group 2 last {wal.GetGroup(2).LastIndex}");
                Assert.True(wal.GetGroup(3).LastIndex is 0 or 10, $"group 3 last {wal.GetGroup(3).LastIndex}");
                WalTestData.AssertLog(wal.GetGroup(2), 2, 1, wal.GetGroup(2).LastIndex);
                WalTestData.AssertLog(wal.GetGroup(3), 3, 1, wal.GetGroup(3).LastIndex);
            }
            catch (Exception e) when (e is not XunitException)
            {
                throw new XunitException($"trial {trial} failed; replay with WAL_TEST_SEED={seed} dotnet test tests/RaftLedger.Storage.Tests -c Release --filter Lost_unsynced: {e}");
            }
        }
    }

    [Fact]
    public async Task Damage_at_the_end_of_an_earlier_segment_refuses_to_start_naming_that_segment()
    {
        using var dir = new WalDirectory();
        using (var wal = dir.Open())
        {
            // About 100 appends of 3 entries roll the 64 KiB test segments several times.
            for (ulong from = 1; from < 300; from += 3)
            {
                await WalTestData.Append(wal, 1, from, from + 2, commit: from - 1);
            }
        }

        var first = dir.Segments()[0];
        var image = await File.ReadAllBytesAsync(first, TestContext.Current.CancellationToken);
        var last = WalTestData.Records(image, first)[^1];
        image[last.Offset + WalRecord.HeaderBytes] ^= 0x10;
        await File.WriteAllBytesAsync(first, image, TestContext.Current.CancellationToken);

        var error = Assert.Throws<WalCorruptionException>(dir.Open);
        Assert.Equal(first, error.Path);
        Assert.Equal(last.Offset, error.Offset);
        Assert.Contains(dir.Segments()[1], error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_entry_damaged_on_disk_after_startup_fails_the_read_naming_file_and_offset()
    {
        using var dir = new WalDirectory();
        using var wal = WriteAheadLog.Open(dir.Options(groupCacheBytesMax: 0));
        await WalTestData.Append(wal, 1, 1, 5);
        var segment = dir.Segments()[0];
        var records = WalTestData.Records(await File.ReadAllBytesAsync(segment, TestContext.Current.CancellationToken), segment);
        var third = records.First(r => r.Header.Kind == WalRecordKind.Entry && r.Header.Index == 3);
        using (var handle = File.OpenHandle(segment, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            RandomAccess.Write(handle, new byte[] { 0xFF }, third.Offset + WalRecord.HeaderBytes + 1);
        }

        var entries = new List<Raft.Entry>();
        wal.GetGroup(1).GetEntries(1, 3, long.MaxValue, entries);
        Assert.Equal(2, entries.Count);
        var error = Assert.Throws<WalCorruptionException>(() => wal.GetGroup(1).GetEntries(3, 4, long.MaxValue, entries));
        Assert.Equal(segment, error.Path);
        Assert.Equal(third.Offset, error.Offset);
    }
}
