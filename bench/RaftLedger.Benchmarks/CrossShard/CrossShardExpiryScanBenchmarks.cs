using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using RaftLedger.Benchmarks.Ledger;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Storage.Rocks;

namespace RaftLedger.Benchmarks.CrossShard;

/// <summary>
/// What the cross-shard driver's periodic scan (every half abandonment timeout, on the node's scheduler thread) pays
/// for the pending transfers with a timeout held at a shard, in RocksDB: <see cref="WholeSideTable"/> is the scan
/// before the expiry order existed (every side record read, every Expiry record decoded to see whether it is due),
/// <see cref="DuePartOfExpiryOrder"/> the scan now (the time-ordered table read up to the tracking horizon).
/// <see cref="DueSoon"/> of the held pending transfers are due within the horizon, the rest an hour or more later.
/// <see cref="Reload"/> is the store's reload, which rebuilds the side mirror from the mirrored tags alone.
/// Time is per scan.
/// Run: <c>dotnet run -c Release --project bench/RaftLedger.Benchmarks -- --filter *CrossShardExpiryScan*</c>
/// </summary>
[Config(typeof(ShortRunConfig))]
public class CrossShardExpiryScanBenchmarks
{
    private const int DueSoon = 10;
    private const int CommitRecordsMax = 10_000;
    private const ulong NowNs = 1_000_000_000_000_000;
    private const ulong HorizonNs = 5_000_000_000; // CrossShardOptions.Default.AbandonTimeoutNs
    private const ulong HourNs = 3_600_000_000_000;

    private string directory = "";
    private RocksLedgerDatabase? database;
    private RocksLedgerStore? store;
    private LedgerStateMachine ledger = null!;

    /// <summary>Cross-shard pending transfers with a timeout held at the shard.</summary>
    [Params(10_000, 200_000)]
    public int Held { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var root = Environment.GetEnvironmentVariable("RAFTLEDGER_BENCH_DIR") ?? Path.GetTempPath();
        directory = Path.Combine(root, "raftledger-bench-expiry", Guid.NewGuid().ToString("N"));
        database = RocksLedgerDatabase.Open(new RocksLedgerOptions { DirectoryPath = directory, WalMode = RocksWalMode.Disabled });
        store = new RocksLedgerStore(database.OpenShard(1));
        ledger = new LedgerStateMachine(store);
        var writes = new LedgerWriteSet();
        var appliedIndex = 0UL;
        for (var i = 0; i < Held; i++)
        {
            var pendingId = new UInt128((ulong)i + 1, 0x9E37_79B9_7F4A_7C15 * ((ulong)i + 1));
            var expiresAtNs = i < DueSoon ? NowNs + (ulong)i : NowNs + HourNs + (ulong)i;
            var expiry = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(expiry, expiresAtNs);
            writes.AddSideRecord(new SideRecord(CrossShardTables.Expiry, pendingId, expiry));
            writes.AddSideRecord(new SideRecord(CrossShardTables.ExpiryOrder, CrossShardExpiry.OrderKey(expiresAtNs, pendingId), CrossShardExpiry.OrderWithId(null, pendingId)));
            if (writes.SideRecords.Length >= 2 * CommitRecordsMax || i == Held - 1)
            {
                writes.AppliedIndex = ++appliedIndex;
                writes.LastTimestamp = NowNs;
                store.Commit(writes);
                writes.Clear();
            }
        }

        ledger.CheckCrossShardExpiryOrder();
        if (WholeSideTable() != DueSoon || DuePartOfExpiryOrder() != DueSoon)
        {
            throw new InvalidOperationException("The two scans disagree on what is due; the figures would be meaningless.");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        store?.Dispose();
        database?.Dispose();
        if (directory.Length > 0)
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Benchmark(Baseline = true)]
    public int WholeSideTable()
    {
        var due = 0;
        foreach (var record in store!.EnumerateSideRecords())
        {
            if (record.Table == CrossShardTables.Expiry && BinaryPrimitives.ReadUInt64LittleEndian(record.Value) <= NowNs + HorizonNs)
            {
                due++;
            }
        }

        return due;
    }

    [Benchmark]
    public int DuePartOfExpiryOrder() => ledger.EnumerateCrossShardExpiries(NowNs + HorizonNs).Count();

    /// <summary>A reload (open, snapshot install) rebuilds the side mirror; it reads the mirrored tags only, not the held expiries.</summary>
    [Benchmark]
    public void Reload() => store!.Reload();
}
