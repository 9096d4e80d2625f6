using CsCheck;
using RaftLedger.Ledger;
using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

public sealed class RocksLedgerStoreTests
{
    private const string ProjectPath = "tests/RaftLedger.Storage.Tests/RaftLedger.Storage.Tests.csproj";

    /// <summary>
    /// Property: random batches (valid and invalid events of every kind) replayed through the ledger state
    /// machine on the RocksDB store and on the in-memory store give the same per-event results, the same
    /// fingerprint after every batch (also across a reopen of the database), and the same query answers.
    /// </summary>
    [Fact]
    public void Rocks_store_and_in_memory_store_agree_on_results_fingerprints_and_queries()
    {
        RunProperty(nameof(Rocks_store_and_in_memory_store_agree_on_results_fingerprints_and_queries), iterations: 10, RunAgainstInMemory);
    }

    /// <summary>
    /// Property: a crash at any point (tiny memtables, so RocksDB flushes on its own between batches) leaves a
    /// state at some applied index k; replaying the log after k on it reaches the in-memory ledger's fingerprint.
    /// </summary>
    [Fact]
    public void Crash_then_replay_from_the_applied_index_reaches_the_fingerprint_of_the_whole_log()
    {
        RunProperty(nameof(Crash_then_replay_from_the_applied_index_reaches_the_fingerprint_of_the_whole_log), iterations: 4, RunCrashAndReplay);
    }

    private static void RunProperty(string testName, int iterations, Action<int> scenario)
    {
        try
        {
            Gen.Int[1, int.MaxValue].Sample(scenario, iter: iterations, threads: 1);
        }
        catch (Exception error)
        {
            throw new Xunit.Sdk.XunitException(
                $"{error.Message}\nReplay: CsCheck_Seed=<seed above> dotnet test {ProjectPath} -c Release --filter \"FullyQualifiedName~{testName}\"");
        }
    }

    private static void RunAgainstInMemory(int seed)
    {
        using var directory = new TempDirectory();
        var scenario = new LedgerScenario(seed);
        var memory = new LedgerStateMachine(new InMemoryLedgerStore());
        var database = Open(directory.PathName);
        try
        {
            var store = new RocksLedgerStore(database.OpenShard(1), accountCacheEntriesMax: 8);
            var rocks = new LedgerStateMachine(store);
            var reopenAt = new Random(seed).Next(2, 20);
            var batch = scenario.Accounts();
            for (var i = 0; i < 25; i++, batch = scenario.NextBatch())
            {
                var expected = batch.ApplyTo(memory);
                var actual = batch.ApplyTo(rocks);
                Check(expected.AsSpan().SequenceEqual(actual), seed, $"results differ at batch {batch.AppliedIndex}");
                Check(memory.Fingerprint() == rocks.Fingerprint(), seed, $"fingerprints differ after batch {batch.AppliedIndex}");
                Check(store.AppliedIndex == batch.AppliedIndex, seed, "applied index follows the batches");
                if (i == reopenAt)
                {
                    database.Dispose();
                    database = Open(directory.PathName);
                    store = new RocksLedgerStore(database.OpenShard(1));
                    rocks = new LedgerStateMachine(store);
                    Check(store.AppliedIndex == batch.AppliedIndex, seed, "applied index survives a reopen");
                }
            }

            CompareQueries(memory, rocks, seed);
        }
        finally
        {
            database.Dispose();
        }
    }

    private static void CompareQueries(LedgerStateMachine memory, LedgerStateMachine rocks, int seed)
    {
        var random = new Random(seed);
        var intoMemory = new Transfer[64];
        var intoRocks = new Transfer[64];
        var balancesMemory = new AccountBalance[64];
        var balancesRocks = new AccountBalance[64];
        for (var account = 1; account <= 40; account++)
        {
            for (var round = 0; round < 6; round++)
            {
                var filter = RandomFilter(random, (UInt128)account, memory.LastTimestamp);
                var count = memory.GetAccountTransfers(filter, intoMemory);
                Check(count == rocks.GetAccountTransfers(filter, intoRocks), seed, $"transfer count for account {account}");
                Check(intoMemory.AsSpan(0, count).SequenceEqual(intoRocks.AsSpan(0, count)), seed, $"transfers of account {account}");
                count = memory.GetAccountBalances(filter, balancesMemory);
                Check(count == rocks.GetAccountBalances(filter, balancesRocks), seed, $"balance count for account {account}");
                Check(balancesMemory.AsSpan(0, count).SequenceEqual(balancesRocks.AsSpan(0, count)), seed, $"balances of account {account}");
            }

            Check(memory.TryLookupAccount((UInt128)account, out var a) == rocks.TryLookupAccount((UInt128)account, out var b) && a.Equals(b), seed, "lookup");
        }
    }

    private static AccountFilter RandomFilter(Random random, UInt128 account, ulong lastTimestamp)
    {
        var first = lastTimestamp > 200_000_000_000 ? lastTimestamp - 200_000_000_000 : 1;
        var flags = (AccountFilterFlags)random.Next(1, 8);
        return new AccountFilter
        {
            AccountId = account,
            Flags = flags,
            Limit = (uint)(random.Next(2) == 0 ? 64 : random.Next(1, 10)),
            TimestampMin = random.Next(3) == 0 ? first + (ulong)random.NextInt64((long)(lastTimestamp - first)) : 0,
            TimestampMax = random.Next(3) == 0 ? lastTimestamp - (ulong)random.Next(1000) : 0,
        };
    }

    private static void RunCrashAndReplay(int seed)
    {
        using var directory = new TempDirectory();
        var live = directory.Sub("live");
        var scenario = new LedgerScenario(seed);
        var memory = new LedgerStateMachine(new InMemoryLedgerStore());
        var log = new List<LedgerBatch>();
        var fingerprints = new List<UInt128>();
        var images = new List<string>();
        using (var database = Open(live, writeBufferBytes: 64 * 1024))
        {
            var rocks = new LedgerStateMachine(new RocksLedgerStore(database.OpenShard(3)));
            var batch = scenario.Accounts();
            for (var i = 0; i < 40; i++, batch = scenario.NextBatch())
            {
                log.Add(batch);
                batch.ApplyTo(memory);
                batch.ApplyTo(rocks);
                fingerprints.Add(memory.Fingerprint());
                if (i % 13 == 12)
                {
                    images.Add(directory.Sub($"crash-{i}"));
                    TakeCrashImage(database, live, images[^1]);
                }
            }
        }

        foreach (var image in images)
        {
            using var restarted = Open(image);
            var store = new RocksLedgerStore(restarted.OpenShard(3));
            var rocks = new LedgerStateMachine(store);
            var applied = (int)store.AppliedIndex;
            Check(applied == 0 || rocks.Fingerprint() == fingerprints[applied - 1], seed, $"state on disk is not the state at its applied index {applied}");
            foreach (var batch in log.Skip(applied))
            {
                batch.ApplyTo(rocks);
            }

            Check(rocks.Fingerprint() == fingerprints[^1], seed, $"replay from {applied} did not reach the log's fingerprint");
        }
    }

    private static void Check(bool condition, int seed, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"Scenario seed {seed}: {what}.");
        }
    }
}
