using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

public sealed class RocksDurabilityTests
{
    [Theory]
    [InlineData(RocksWalMode.Disabled)]
    [InlineData(RocksWalMode.Unsynced)]
    public void Durable_applied_index_advances_only_when_made_durable(RocksWalMode walMode)
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName, walMode: walMode);
        var shard = database.OpenShard(4);
        using var batch = shard.NewBatch();
        for (ulong index = 1; index <= 10; index++)
        {
            batch.Put(RocksTable.Accounts, Key(index), Value($"a{index}"));
            batch.Commit(index);
        }

        Assert.Equal(10UL, shard.AppliedIndex);
        Assert.Equal(0UL, database.DurableAppliedIndex(4));
        database.MakeDurable();
        Assert.Equal(10UL, database.DurableAppliedIndex(4));
        batch.Commit(11);
        Assert.Equal(10UL, shard.DurableAppliedIndex);
        Assert.Equal(11UL, shard.AppliedIndex);
    }

    [Fact]
    public void Crash_without_flush_reopens_at_the_durable_index_with_exactly_that_state()
    {
        using var directory = new TempDirectory();
        var live = directory.Sub("live");
        UInt128 fingerprintAtDurable;
        List<(RocksTable, string, string)> rowsAtDurable;
        using (var database = Open(live))
        {
            var shard = database.OpenShard(2);
            using var batch = shard.NewBatch();
            for (ulong index = 1; index <= 5; index++)
            {
                batch.Put(RocksTable.Accounts, Key(index % 3), Value($"balance after {index}"));
                batch.Commit(index);
            }

            database.MakeDurable();
            fingerprintAtDurable = Fingerprint(shard);
            rowsAtDurable = Dump(shard);
            for (ulong index = 6; index <= 9; index++)
            {
                batch.Put(RocksTable.Accounts, Key(index % 3), Value($"balance after {index}"));
                batch.Delete(RocksTable.Accounts, Key((index + 1) % 3));
                batch.Commit(index);
            }

            Assert.NotEqual(fingerprintAtDurable, Fingerprint(shard));
            TakeCrashImage(database, live, directory.Sub("crashed"));
        }

        using var restarted = Open(directory.Sub("crashed"));
        var restartedShard = restarted.OpenShard(2);
        Assert.Equal(5UL, restartedShard.AppliedIndex);
        Assert.Equal(5UL, restartedShard.DurableAppliedIndex);
        Assert.Equal(rowsAtDurable, Dump(restartedShard));
        Assert.Equal(fingerprintAtDurable, Fingerprint(restartedShard));
    }

    /// <summary>
    /// Tiny memtables make RocksDB flush on its own at arbitrary batch boundaries. Whatever a crash leaves,
    /// the applied index on disk must describe exactly the state on disk: replaying the log up to that index
    /// into a model gives the same rows.
    /// </summary>
    [Fact]
    public void Applied_index_on_disk_always_matches_the_state_on_disk_across_background_flushes()
    {
        const int seed = 20261126;
        var random = new Random(seed);
        using var directory = new TempDirectory();
        var live = directory.Sub("live");
        var log = new List<List<(ulong Key, string? Value)>>();
        var crashPoints = new List<(int AfterBatches, string Image)>();
        using (var database = Open(live, writeBufferBytes: 64 * 1024))
        {
            var shard = database.OpenShard(9);
            using var batch = shard.NewBatch();
            for (var index = 1; index <= 400; index++)
            {
                var writes = RandomWrites(random);
                log.Add(writes);
                foreach (var (key, value) in writes)
                {
                    if (value is null)
                    {
                        batch.Delete(RocksTable.Transfers, Key(key));
                    }
                    else
                    {
                        batch.Put(RocksTable.Transfers, Key(key), Value(value));
                    }
                }

                batch.Commit((ulong)index);
                if (index % 57 == 0)
                {
                    var image = directory.Sub($"crash-{index}");
                    TakeCrashImage(database, live, image);
                    crashPoints.Add((index, image));
                }
            }
        }

        var sawPartialState = false;
        foreach (var (afterBatches, image) in crashPoints)
        {
            using var restarted = Open(image);
            var shard = restarted.OpenShard(9);
            var applied = (int)shard.AppliedIndex;
            Assert.True(applied <= afterBatches, $"seed {seed}: applied {applied} beyond the crash point {afterBatches}");
            Assert.True(Dump(shard).SequenceEqual(Model(log, applied)), $"seed {seed}: state on disk differs from the log replayed to {applied}");
            sawPartialState |= applied > 0 && applied < afterBatches;
        }

        // The test only proves something if some crash image caught a flush between batches.
        Assert.True(sawPartialState, $"seed {seed}: no crash image had a partially flushed log");
    }

    private static List<(ulong, string?)> RandomWrites(Random random)
    {
        var writes = new List<(ulong, string?)>();
        var count = random.Next(1, 40);
        for (var i = 0; i < count; i++)
        {
            var key = (ulong)random.Next(0, 500);
            writes.Add((key, random.Next(10) == 0 ? null : new string('x', random.Next(10, 200)) + random.Next()));
        }

        return writes;
    }

    private static List<(RocksTable, string, string)> Model(List<List<(ulong Key, string? Value)>> log, int applied)
    {
        var model = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var writes in log.Take(applied))
        {
            foreach (var (key, value) in writes)
            {
                var hex = Convert.ToHexString(Key(key));
                if (value is null)
                {
                    model.Remove(hex);
                }
                else
                {
                    model[hex] = Convert.ToHexString(Value(value));
                }
            }
        }

        return model.Select(pair => (RocksTable.Transfers, pair.Key, pair.Value)).ToList();
    }
}
