using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

/// <summary>
/// The next segment cannot be made (a full disk while zero-filling it, a permission problem): the WAL must stop rather
/// than acknowledge anything it did not make durable, say so, and keep every append it did acknowledge. The failure is
/// made by a directory where the spare segment's temporary file goes, which fails the same creation step a full disk does.
/// </summary>
public class WalSegmentFailureTests
{
    private const int AppendsMax = 5_000; // Far more than a 64 KiB segment holds: the roll comes well before.

    [Fact]
    public async Task When_the_next_segment_cannot_be_made_the_append_that_needs_it_fails_and_the_acknowledged_ones_survive()
    {
        using var dir = new WalDirectory();
        var blocker = Path.Combine(dir.Path, WalFiles.SegmentName(2) + ".tmp");
        Directory.CreateDirectory(blocker);

        ulong acknowledged = 0;
        Exception? failure = null;
        using (var wal = dir.Open())
        {
            for (var index = 1UL; index <= AppendsMax && failure is null; index++)
            {
                try
                {
                    await WalTestData.Append(wal, 1, index, index);
                    acknowledged = index;
                }
                catch (IOException e)
                {
                    failure = e;
                }
            }

            Assert.NotNull(failure);
            Assert.True(acknowledged > 10, $"the first segment took {acknowledged} appends before the roll");
            Assert.Contains("restart the node", failure.Message);
            lock (dir.LogLines)
            {
                Assert.Contains(dir.LogLines, line => line.StartsWith("WAL writer stopped", StringComparison.Ordinal));
            }

            // Stopped for good: a later append fails at once instead of being acknowledged.
            await Assert.ThrowsAnyAsync<IOException>(() => WalTestData.Append(wal, 1, acknowledged + 1, acknowledged + 1));
        }

        // Once space is back, the node restarts with every append it acknowledged.
        Directory.Delete(blocker);
        using var reopened = dir.Open();
        var group = reopened.GetGroup(1);
        Assert.True(group.LastIndex >= acknowledged, $"recovered up to {group.LastIndex}, acknowledged {acknowledged}");
        WalTestData.AssertLog(group, 1, 1, group.LastIndex);
    }
}
