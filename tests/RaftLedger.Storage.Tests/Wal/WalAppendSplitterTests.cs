using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

public sealed class WalAppendSplitterTests
{
    private const int FlushBytesMax = 64 * 1024;

    [Fact]
    public void Writes_that_fit_stay_one_append()
    {
        WalGroupWrite[] writes = [Write(1, first: 1, count: 3, entryBytes: 1000), Write(2, first: 5, count: 2, entryBytes: 1000)];

        var appends = WalAppendSplitter.Split(writes, FlushBytesMax);

        Assert.Equal(writes, Assert.Single(appends));
    }

    [Fact]
    public void Groups_are_spread_over_appends_that_each_fit_in_one_flush()
    {
        var writes = Enumerable.Range(1, 6).Select(g => Write((ulong)g, first: 10, count: 3, entryBytes: 9_000)).ToArray();

        var appends = WalAppendSplitter.Split(writes, FlushBytesMax);

        Assert.True(appends.Count > 1);
        Assert.All(appends, append => Assert.True(append.Sum(w => w.StoredBytes()) <= FlushBytesMax));
        Assert.Equal(writes, appends.SelectMany(append => append)); // whole group writes, in order
    }

    [Fact]
    public void A_group_too_big_for_one_flush_is_split_with_its_snapshot_first_and_hard_state_last()
    {
        var big = Write(7, first: 100, count: 20, entryBytes: 12_000) with { Snapshot = new SnapshotMetadata(99, 3, ConfState.Empty) };

        var appends = WalAppendSplitter.Split([Write(1, first: 1, count: 1, entryBytes: 500), big], FlushBytesMax);

        Assert.All(appends, append => Assert.True(append.Sum(w => w.StoredBytes()) <= FlushBytesMax));
        var pieces = appends.SelectMany(append => append).Where(w => w.GroupId == 7).ToList();
        Assert.True(pieces.Count > 1);
        Assert.Equal(big.Entries.Select(e => e.Index), pieces.SelectMany(p => p.Entries).Select(e => e.Index));
        Assert.Equal(big.Snapshot, pieces[0].Snapshot);
        Assert.All(pieces.Skip(1), piece => Assert.Null(piece.Snapshot));
        Assert.Equal(big.HardState, pieces[^1].HardState);
        Assert.All(pieces.SkipLast(1), piece => Assert.Null(piece.HardState));
    }

    [Fact]
    public async Task Split_appends_are_accepted_by_the_log_and_recovered_in_full()
    {
        var cancel = TestContext.Current.CancellationToken;
        using var directory = new WalDirectory();
        var options = new WalOptions { Directory = directory.Path, FlushBytesMax = 1024 * 1024, RecordBytesMax = 256 * 1024 };
        var writes = Enumerable.Range(1, 5).Select(g => Write((ulong)g, first: 1, count: 4, entryBytes: 100_000)).ToArray();
        using (var wal = WriteAheadLog.Open(options))
        {
            await Assert.ThrowsAsync<ArgumentException>(() => wal.AppendAsync(writes, cancel));
            foreach (var append in WalAppendSplitter.Split(writes, options.FlushBytesMax))
            {
                await wal.AppendAsync(append, cancel);
            }
        }

        using var reopened = WriteAheadLog.Open(options);
        foreach (var write in writes)
        {
            var group = reopened.GetGroup(write.GroupId);
            Assert.Equal(4UL, group.LastIndex);
            Assert.Equal(write.HardState, group.HardState);
        }
    }

    private static WalGroupWrite Write(ulong group, ulong first, int count, int entryBytes)
    {
        var entries = new Entry[count];
        for (var i = 0; i < count; i++)
        {
            entries[i] = new Entry(3, first + (ulong)i, EntryType.Normal, new byte[entryBytes]);
        }

        return new WalGroupWrite(group, entries, new HardState(3, 1, first), null);
    }
}
