using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

/// <summary><see cref="WriteAheadLog.TryAppendNow"/>: the scheduler's append written on its own thread.</summary>
public class WalAppendNowTests
{
    private static WalGroupWrite Write(ulong groupId, ulong from, ulong to, ulong commit) =>
        new(groupId, WalTestData.Entries(groupId, from, to), new HardState(1, 0, commit), null);

    // A fresh log has compaction due, which only the writer thread runs: one queued append clears it.
    private static async Task<WriteAheadLog> OpenSettled(WalDirectory dir)
    {
        var wal = dir.Open();
        await WalTestData.Append(wal, 1, 1, 1);
        return wal;
    }

    [Fact]
    public async Task An_append_written_now_is_visible_when_it_returns_and_survives_a_restart()
    {
        using var dir = new WalDirectory();
        ulong last = 1;
        using (var wal = await OpenSettled(dir))
        {
            var flushes = wal.Statistics.Flushes;
            var now = 0;
            for (ulong from = 2; from < 200; from += 3)
            {
                if (wal.TryAppendNow([Write(1, from, from + 2, commit: from - 1)]))
                {
                    now++;
                    Assert.Equal(from + 2, wal.GetGroup(1).LastIndex); // Visible at return, not later.
                }
                else
                {
                    await wal.Write(Write(1, from, from + 2, commit: from - 1)); // Rolled: the writer compacts first.
                }

                last = from + 2;
            }

            Assert.True(now > 33, $"only {now} of 66 appends were written on the caller's thread");
            Assert.Equal(66, wal.Statistics.Flushes - flushes); // One fdatasync per append either way.
        }

        using var reopened = dir.Open();
        WalTestData.AssertLog(reopened.GetGroup(1), 1, 1, last);
    }

    [Fact]
    public async Task An_append_written_now_never_overtakes_a_queued_append()
    {
        using var dir = new WalDirectory();
        using var wal = await OpenSettled(dir);
        Task queued;
        using (wal.HoldFlushesForTest())
        {
            // The writer cannot take this append while the lock is held, so it stays queued. The flush lock is
            // re-entrant for this thread: only the queue check can refuse the next append, which would otherwise be
            // written first and refused for the gap it leaves.
            queued = wal.Write(Write(1, 2, 2, commit: 0));
            Assert.False(wal.TryAppendNow([Write(1, 3, 3, commit: 0)]));
        }

        await queued;
        await AppendNowOrQueued(wal, Write(1, 3, 3, commit: 0));
        WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 3);
    }

    [Fact]
    public async Task A_refused_append_fails_whichever_thread_writes_it_and_the_log_carries_on()
    {
        using var dir = new WalDirectory();
        using var wal = await OpenSettled(dir);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => AppendNowOrQueued(wal, Write(1, 5, 6, commit: 0)));
        Assert.Contains("gap", error.Message, StringComparison.Ordinal);
        await AppendNowOrQueued(wal, Write(1, 2, 3, commit: 1));
        WalTestData.AssertLog(wal.GetGroup(1), 1, 1, 3);
    }

    // What the node does: written now unless the writer thread is busy (e.g. still compacting after the last append).
    private static async Task AppendNowOrQueued(WriteAheadLog wal, WalGroupWrite write)
    {
        if (!wal.TryAppendNow([write]))
        {
            await wal.Write(write);
        }
    }
}
