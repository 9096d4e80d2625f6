using BenchmarkDotNet.Attributes;
using RaftLedger.Ledger;
using RaftLedger.Storage.Rocks;

namespace RaftLedger.Benchmarks.Storage;

/// <summary>
/// Applying batches of 8189 plain transfers through the ledger state machine on one thread, with the ledger
/// state in RocksDB (no fsync: RocksDB's WAL off or unsynced, as the node runs it) and, as a baseline, in memory.
/// One operation is one transfer. Target (issue 4): at least 300,000 transfers/s on RocksDB.
/// Transfer ids are ascending (as time-based ids such as ULIDs are; the RocksDB store then knows each id is new
/// without a read) or random 128-bit values (every new id costs the store a RocksDB lookup).
/// The database lives under RAFTLEDGER_BENCH_DIR (default: the system temp directory, on /work's disk here).
/// Run: <c>dotnet run -c Release --project bench/RaftLedger.Benchmarks -- --filter *RocksLedgerApply* --job short</c>
/// </summary>
[MemoryDiagnoser]
public class RocksLedgerApplyBenchmarks
{
    private const int BatchEvents = LedgerLimits.BatchEventsMax;

    private readonly Transfer[] transfers = new Transfer[BatchEvents];
    private readonly CreateTransferResult[] results = new CreateTransferResult[BatchEvents];
    private string directory = "";
    private RocksLedgerDatabase? database;
    private RocksLedgerStore? store;
    private LedgerStateMachine ledger = null!;
    private ulong nextTransferId;
    private ulong appliedIndex;
    private ulong timestamp;
    private uint randomState;
    private ulong idRandomState;

    public enum StoreKind
    {
        RocksWalDisabled,
        RocksWalUnsynced,
        InMemory,
    }

    [Params(StoreKind.RocksWalDisabled, StoreKind.RocksWalUnsynced, StoreKind.InMemory)]
    public StoreKind Store { get; set; }

    public enum IdKind
    {
        Ascending,
        Random,
    }

    [Params(10_000, 1_000_000)]
    public int Accounts { get; set; }

    [Params(IdKind.Ascending, IdKind.Random)]
    public IdKind Ids { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        ILedgerStore ledgerStore;
        if (Store == StoreKind.InMemory)
        {
            ledgerStore = new InMemoryLedgerStore(Accounts, 1 << 20);
        }
        else
        {
            var root = Environment.GetEnvironmentVariable("RAFTLEDGER_BENCH_DIR") ?? Path.GetTempPath();
            directory = Path.Combine(root, "raftledger-bench-rocks", Guid.NewGuid().ToString("N"));
            database = RocksLedgerDatabase.Open(new RocksLedgerOptions
            {
                DirectoryPath = directory,
                WalMode = Store == StoreKind.RocksWalDisabled ? RocksWalMode.Disabled : RocksWalMode.Unsynced,
            });
            store = new RocksLedgerStore(database.OpenShard(1), accountCacheEntriesMax: Math.Max(Accounts, 1024));
            ledgerStore = store;
        }

        ledger = new LedgerStateMachine(ledgerStore);
        timestamp = 1_000_000_000_000;
        randomState = 2_463_534_242;
        idRandomState = 88_172_645_463_325_252;
        CreateAccounts();
    }

    private void CreateAccounts()
    {
        var accounts = new Account[BatchEvents];
        var accountResults = new CreateAccountResult[BatchEvents];
        for (var first = 1; first <= Accounts; first += BatchEvents)
        {
            var count = Math.Min(BatchEvents, Accounts - first + 1);
            for (var i = 0; i < count; i++)
            {
                accounts[i] = new Account { Id = (UInt128)(first + i), Ledger = 1, Code = 1 };
            }

            timestamp += (ulong)count;
            ledger.CreateAccounts(accounts.AsSpan(0, count), timestamp, accountResults, ++appliedIndex);
        }
    }

    /// <summary>One batch of 8189 transfers between uniformly chosen distinct accounts, each with a fresh id.</summary>
    [Benchmark(OperationsPerInvoke = BatchEvents)]
    public void ApplyTransferBatch()
    {
        for (var i = 0; i < BatchEvents; i++)
        {
            var debit = NextAccount();
            var credit = NextAccount();
            if (credit == debit)
            {
                credit = debit % (uint)Accounts + 1;
            }

            transfers[i] = new Transfer
            {
                Id = NextTransferId(),
                DebitAccountId = debit,
                CreditAccountId = credit,
                Amount = 1 + (UInt128)(i & 1023),
                Ledger = 1,
                Code = 1,
            };
        }

        timestamp += BatchEvents;
        ledger.CreateTransfers(transfers, timestamp, results, ++appliedIndex);
    }

    private UInt128 NextTransferId()
    {
        if (Ids == IdKind.Ascending)
        {
            return ++nextTransferId;
        }

        var high = NextRandom64();
        return new UInt128(high, NextRandom64());
    }

    // xorshift64: the random ids' bits (deterministic; 128-bit ids do not collide in practice).
    private ulong NextRandom64()
    {
        var x = idRandomState;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        idRandomState = x;
        return x;
    }

    // xorshift32: cheap, deterministic, allocation-free.
    private uint NextAccount()
    {
        var x = randomState;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        randomState = x;
        return x % (uint)Accounts + 1;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (results[0] != CreateTransferResult.Created)
        {
            throw new InvalidOperationException($"The benchmark's transfers failed ({results[0]}); the figures would be meaningless.");
        }

        store?.Dispose();
        database?.Dispose();
        if (directory.Length > 0)
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
