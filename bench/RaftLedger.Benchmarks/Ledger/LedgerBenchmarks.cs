using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using RaftLedger.Ledger;

namespace RaftLedger.Benchmarks.Ledger;

/// <summary>How account pairs are drawn.</summary>
public enum AccountSkew
{
    Uniform,

    /// <summary>Zipf with s = 1.0: account k is drawn with probability proportional to 1/k.</summary>
    Zipf,
}

/// <summary>What a batch holds.</summary>
public enum TransferMix
{
    /// <summary>Single-phase transfers only.</summary>
    SinglePhase,

    /// <summary>Half pending transfers, half posts/voids of the previous batch's pending transfers.</summary>
    TwoPhase,

    /// <summary>Chains of four linked transfers.</summary>
    Linked,
}

/// <summary>One benchmark case.</summary>
public sealed record LedgerScenario(int Accounts, AccountSkew Skew, TransferMix Mix, bool Encoded)
{
    public override string ToString() =>
        $"{(Accounts >= 1_000_000 ? $"{Accounts / 1_000_000}M" : $"{Accounts / 1000}k")}-{Skew}-{Mix}{(Encoded ? "-Apply" : string.Empty)}";
}

/// <summary>
/// Applies batches of 8189 transfers to the ledger on the in-memory store. Times are per transfer
/// (OperationsPerInvoke), so 1,000,000 transfers/s is 1,000 ns. The store is sized up front for
/// every transfer the run creates, so allocation figures show the ledger's own steady state.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortRunConfig))]
public class LedgerTransferBenchmarks
{
    private const int BatchSize = LedgerLimits.BatchEventsMax;
    private const int PairPoolBatches = 32;

    // Jitting (1) + warmup and measured iterations of the config, each InvocationsPerIteration batches.
    private const int BatchesPerRunMax = 1 + ((ShortRunConfig.WarmupIterations + ShortRunConfig.MeasuredIterations) * ShortRunConfig.InvocationsPerIteration);

    private readonly Transfer[] batch = new Transfer[BatchSize];
    private readonly CreateTransferResult[] results = new CreateTransferResult[BatchSize];
    private readonly byte[] rawResults = new byte[BatchSize];
    private readonly byte[] command = new byte[LedgerLimits.CommandBytesMax];
    private (UInt128 Debit, UInt128 Credit)[] pairs = [];
    private LedgerStateMachine ledger = null!;
    private UInt128 nextTransferId;
    private int pairCursor;
    private UInt128 previousPendingFirstId;
    private int previousPendingCount;

    [ParamsSource(nameof(Scenarios))]
    public LedgerScenario Scenario { get; set; } = null!;

    public static IEnumerable<LedgerScenario> Scenarios() =>
    [
        new(10_000, AccountSkew.Uniform, TransferMix.SinglePhase, Encoded: false),
        new(10_000, AccountSkew.Zipf, TransferMix.SinglePhase, Encoded: false),
        new(1_000_000, AccountSkew.Uniform, TransferMix.SinglePhase, Encoded: false),
        new(1_000_000, AccountSkew.Zipf, TransferMix.SinglePhase, Encoded: false),
        new(1_000_000, AccountSkew.Uniform, TransferMix.TwoPhase, Encoded: false),
        new(1_000_000, AccountSkew.Uniform, TransferMix.Linked, Encoded: false),
        new(1_000_000, AccountSkew.Uniform, TransferMix.SinglePhase, Encoded: true),
    ];

    [GlobalSetup]
    public void Setup()
    {
        // Twice the planned batches: BenchmarkDotNet runs a few more invocations than the job's
        // counts (jitting, pilot), and growing the store mid-run would show up as allocation.
        var store = new InMemoryLedgerStore(Scenario.Accounts, 2 * BatchesPerRunMax * BatchSize);
        ledger = new LedgerStateMachine(store);
        CreateAccounts(Scenario.Accounts);
        pairs = DrawPairs(Scenario.Accounts, Scenario.Skew, PairPoolBatches * BatchSize, seed: 42);
        nextTransferId = 1;
    }

    [Benchmark(OperationsPerInvoke = BatchSize)]
    public int ApplyBatch()
    {
        FillBatch();
        var timestamp = ledger.LastTimestamp + BatchSize;
        var cpuBefore = ThreadCpuNanoseconds();
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        int last;
        if (Scenario.Encoded)
        {
            var length = LedgerCommand.EncodeCreateTransfers(timestamp, batch, command);
            ledger.Apply(command.AsSpan(0, length), rawResults);
            last = rawResults[BatchSize - 1];
        }
        else
        {
            ledger.CreateTransfers(batch, timestamp, results);
            last = (int)results[BatchSize - 1];
        }

        ledgerAllocatedBytes += GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        cpuNanoseconds += ThreadCpuNanoseconds() - cpuBefore;
        measuredBatches++;
        return last;
    }

    // The machine is shared: wall time includes waiting for a core. Thread CPU time (Linux
    // CLOCK_THREAD_CPUTIME_ID) counts only the time this thread ran, which is what one thread
    // on an idle core would take. Reported by Check() into the run's log.
    private double cpuNanoseconds;
    private long ledgerAllocatedBytes;
    private long measuredBatches;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec time);

    private static double ThreadCpuNanoseconds()
    {
        const int threadCpuClock = 3;
        return OperatingSystem.IsLinux() && ClockGetTime(threadCpuClock, out var time) == 0 ? (time.Seconds * 1e9) + time.Nanoseconds : 0;
    }

    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [GlobalCleanup]
    public void Check()
    {
        // A benchmark that silently measured failures would be worthless.
        var created = Scenario.Encoded ? rawResults.Count(r => r == 0) : results.Count(r => r == CreateTransferResult.Created);
        if (created != BatchSize)
        {
            throw new InvalidOperationException($"Only {created} of {BatchSize} transfers of the last batch were created.");
        }

        Console.WriteLine(
            $"// LEDGER-CPU {Scenario}: {cpuNanoseconds / measuredBatches / BatchSize:F0} ns thread CPU per transfer " +
            $"({measuredBatches * BatchSize * 1e9 / cpuNanoseconds:N0} transfers/s of CPU), ledger allocated {ledgerAllocatedBytes / measuredBatches} bytes per batch " +
            $"over {measuredBatches} batches");
        ledger = null!; // In-process runs: let the next case reclaim this one's memory.
    }

    private void FillBatch()
    {
        switch (Scenario.Mix)
        {
            case TransferMix.SinglePhase:
                for (var i = 0; i < BatchSize; i++)
                {
                    batch[i] = Single(TransferFlags.None);
                }

                break;
            case TransferMix.Linked:
                for (var i = 0; i < BatchSize; i++)
                {
                    // Chains of four; the batch's last event closes whatever chain it is in.
                    var closes = i % 4 == 3 || i == BatchSize - 1;
                    batch[i] = Single(closes ? TransferFlags.None : TransferFlags.Linked);
                }

                break;
            default:
                FillTwoPhase();
                break;
        }
    }

    private void FillTwoPhase()
    {
        // Resolve the previous batch's pending transfers (posts and voids alternate), reserve as many
        // new ones, and fill the rest (all of the first batch's second half) with single-phase transfers.
        var resolved = 0;
        for (; resolved < previousPendingCount; resolved++)
        {
            batch[resolved] = new Transfer
            {
                Id = nextTransferId++,
                PendingId = previousPendingFirstId + (UInt128)resolved,
                Flags = resolved % 2 == 0 ? TransferFlags.PostPendingTransfer : TransferFlags.VoidPendingTransfer,
            };
        }

        previousPendingFirstId = nextTransferId;
        previousPendingCount = BatchSize / 2;
        for (var i = 0; i < previousPendingCount; i++)
        {
            batch[resolved + i] = Single(TransferFlags.Pending);
        }

        for (var i = resolved + previousPendingCount; i < BatchSize; i++)
        {
            batch[i] = Single(TransferFlags.None);
        }
    }

    private Transfer Single(TransferFlags flags)
    {
        var (debit, credit) = pairs[pairCursor];
        pairCursor = pairCursor + 1 == pairs.Length ? 0 : pairCursor + 1;
        return new Transfer { Id = nextTransferId++, DebitAccountId = debit, CreditAccountId = credit, Amount = 10, Ledger = 1, Code = 1, Flags = flags };
    }

    private void CreateAccounts(int count)
    {
        var accounts = new Account[BatchSize];
        var accountResults = new CreateAccountResult[BatchSize];
        for (var first = 1; first <= count; first += BatchSize)
        {
            var size = Math.Min(BatchSize, count - first + 1);
            for (var i = 0; i < size; i++)
            {
                accounts[i] = new Account { Id = (UInt128)(first + i), Ledger = 1, Code = 1 };
            }

            ledger.CreateAccounts(accounts.AsSpan(0, size), ledger.LastTimestamp + (ulong)size, accountResults);
        }
    }

    /// <summary>Draws distinct debit/credit pairs with a seeded PRNG (setup only, not measured).</summary>
    private static (UInt128, UInt128)[] DrawPairs(int accounts, AccountSkew skew, int count, ulong seed)
    {
        var random = new Random((int)seed);
        var cdf = skew == AccountSkew.Zipf ? ZipfCdf(accounts) : null;
        var drawn = new (UInt128, UInt128)[count];
        for (var i = 0; i < count; i++)
        {
            var debit = Draw(random, accounts, cdf);
            var credit = Draw(random, accounts, cdf);
            while (credit == debit)
            {
                credit = Draw(random, accounts, cdf);
            }

            drawn[i] = ((UInt128)debit, (UInt128)credit);
        }

        return drawn;
    }

    private static int Draw(Random random, int accounts, double[]? cdf)
    {
        if (cdf is null)
        {
            return 1 + random.Next(accounts);
        }

        var index = Array.BinarySearch(cdf, random.NextDouble());
        return 1 + Math.Min(index < 0 ? ~index : index, accounts - 1);
    }

    private static double[] ZipfCdf(int accounts)
    {
        var cdf = new double[accounts];
        var sum = 0.0;
        for (var k = 1; k <= accounts; k++)
        {
            sum += 1.0 / k;
            cdf[k - 1] = sum;
        }

        for (var k = 0; k < accounts; k++)
        {
            cdf[k] /= sum;
        }

        return cdf;
    }
}

/// <summary>A short, fixed-size job: the machine is shared and noisy, so few iterations, each many batches.</summary>
public sealed class ShortRunConfig : ManualConfig
{
    public const int WarmupIterations = 2;
    public const int MeasuredIterations = 6;
    public const int InvocationsPerIteration = 12;

    public ShortRunConfig()
    {
        AddJob(Job.Default
            .WithWarmupCount(WarmupIterations)
            .WithIterationCount(MeasuredIterations)
            .WithInvocationCount(InvocationsPerIteration)
            .WithUnrollFactor(1)
            .WithToolchain(InProcessEmitToolchain.Instance) // This busy machine times out BDN's per-benchmark rebuild.
            .WithId("ShortFixed"));
    }
}
