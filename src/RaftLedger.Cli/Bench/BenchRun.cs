using System.Diagnostics;
using System.Globalization;
using RaftLedger.Cli.Processes;

namespace RaftLedger.Cli.Bench;

/// <summary>
/// One <c>raftledger bench</c> run: connect to the cluster (or start a local one in a temp folder),
/// create the accounts, run the callers with a live progress line (and leader kills if asked),
/// let requests in flight finish, then build the report. Disposing stops the local cluster and
/// deletes its folder.
/// </summary>
public sealed partial class BenchRun : IAsyncDisposable
{
    private readonly BenchOptions options;
    private readonly TextWriter output;
    private readonly string dataRoot;
    private readonly List<FailoverEvent> failovers = [];
    private readonly WorkloadTotals totals = new();
    private LocalCluster? cluster;
    private GrpcBenchLedger? ledger;
    private BenchRecorder? recorder;
    private AccountChooser? chooser;
    private BenchIdSequence? ids;

    public BenchRun(BenchOptions options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        Common.Invariant.Check(options.Validate() is null);
        this.options = options;
        this.output = output;
        dataRoot = Path.Combine(Path.GetTempPath(), $"raftledger-bench-{Environment.ProcessId}-{Guid.NewGuid():N}"[..41]);
    }

    private GrpcBenchLedger Ledger => ledger!;

    private BenchRecorder Recorder => recorder!;

    /// <summary>Runs the benchmark and returns its report (also printed).</summary>
    public async Task<BenchReport> RunAsync(CancellationToken cancellationToken)
    {
        var startedUtc = DateTime.UtcNow;
        var loadBefore = LoadAverage();
        List<BenchNode> nodes = options.Api.Count > 0 ? [.. options.Api] : await StartLocalClusterAsync(cancellationToken);
        ledger = await GrpcBenchLedger.ConnectAsync(nodes, BenchLimits.ReadyTimeout, cancellationToken);
        var accounts = BenchAccounts.Create(options.Accounts, Ledger.ShardCount, options.Seed);
        chooser = new AccountChooser(accounts, options.Zipf);
        await CreateAccountsAsync(accounts, cancellationToken);
        if (options.Clients > 0)
        {
            sdk = await ConnectSdkAsync(nodes, cancellationToken);
        }

        // Ids must never repeat against the same cluster, even with the same seed: the run id is the start time.
        ids = new BenchIdSequence((ulong)startedUtc.Ticks / TimeSpan.TicksPerMillisecond);
        if (options.Warmup > TimeSpan.Zero)
        {
            await WarmUpAsync(cancellationToken);
        }

        var measured = await MeasureAsync(cancellationToken);
        return BuildReport(startedUtc, measured, loadBefore, nodes.Count);
    }

    private async Task<List<BenchNode>> StartLocalClusterAsync(CancellationToken cancellationToken)
    {
        output.WriteLine($"Starting a local cluster: 3 nodes, {options.LocalShards} shards, data in {dataRoot}");
        cluster = LocalCluster.Create(new LocalClusterOptions
        {
            DataRoot = dataRoot,
            NodeCount = 3,
            ShardCount = options.LocalShards,
            ExtraNodeArguments = options.LocalNodeArguments,
        });
        var started = Stopwatch.GetTimestamp();
        cluster.StartAll();
        await cluster.WaitAllReadyAsync(BenchLimits.ReadyTimeout, cancellationToken);
        output.WriteLine($"  ready in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s (gRPC: {string.Join(' ', cluster.Nodes.Select(n => n.Grpc))})");
        return [.. cluster.Nodes.Select(node => new BenchNode(node.Id, node.GrpcUrl))];
    }

    /// <summary>Creates the accounts (existing ones answer `exists`, fine for reruns with the same seed).</summary>
    private async Task CreateAccountsAsync(BenchAccounts accounts, CancellationToken cancellationToken)
    {
        var all = accounts.NewAccounts();
        var started = Stopwatch.GetTimestamp();
        for (var offset = 0; offset < all.Length; offset += BenchLimits.BatchEventsMax)
        {
            var part = all.AsMemory(offset, Math.Min(BenchLimits.BatchEventsMax, all.Length - offset));
            var deadline = DateTime.UtcNow + BenchLimits.ReadyTimeout;
            for (var attempt = 0; ; attempt++)
            {
                var outcome = await Ledger.CreateAccountsAsync(part, attempt, cancellationToken);
                if (outcome.IsAnswered)
                {
                    RequireCreated(outcome, offset);
                    break;
                }

                if (!outcome.Retryable || DateTime.UtcNow > deadline)
                {
                    throw new BenchException($"creating accounts failed: {outcome.FailureKind} {outcome.Detail}");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            }
        }

        output.WriteLine($"  {all.Length:N0} accounts on {Ledger.ShardCount} shards ready in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s");
    }

    private static void RequireCreated(CallOutcome outcome, int offset)
    {
        for (var i = 0; i < outcome.Results!.Results.Count; i++)
        {
            var status = outcome.Results.Results[i].Status;
            if (status is not ("created" or "exists"))
            {
                throw new BenchException($"account {offset + i} was refused with '{status}'; a rerun against the same cluster needs the same --accounts and --seed, or a new --seed.");
            }
        }
    }

    private BenchReport BuildReport(DateTime startedUtc, Measured measured, string loadBefore, int nodeCount)
    {
        List<FailoverEvent> kills;
        lock (failovers)
        {
            kills = [.. failovers];
        }

        foreach (var kill in kills)
        {
            var gaps = new List<CommitGap>();
            foreach (var shard in kill.Shards)
            {
                gaps.Add(Recorder.GapSpanning(shard, kill.AtSeconds, measured.Seconds));
            }

            kill.ShardGaps = gaps;
            kill.GapSeconds = gaps.Count == 0 ? 0 : gaps.Max(gap => gap.Seconds);
        }

        var buckets = Recorder.TransferLatency.Buckets();
        return new BenchReport
        {
            Options = options,
            Cluster = cluster is null ? "api" : "local",
            Nodes = nodeCount,
            Shards = Ledger.ShardCount,
            Mode = options.Clients > 0 ? "clients" : "concurrency",
            StartedUtc = startedUtc,
            Seconds = measured.Seconds,
            Payments = totals.Payments,
            Events = totals.Events,
            Committed = Recorder.Committed,
            WarmupCommitted = warmupCommitted,
            Requests = sdk is null ? Recorder.Requests : sdk.Statistics.CreateRequests - warmupSdkRequests,
            CrossShardPayments = totals.CrossShardPayments,
            PendingPayments = totals.PendingPayments,
            Posts = totals.Posts,
            Voids = totals.Voids,
            Latency = LatencySummary.From(Recorder.TransferLatency),
            RequestLatency = LatencySummary.From(Recorder.RequestLatency),
            Failovers = kills,
            LongestGapAnyShardSeconds = Recorder.LongestGapAnyShardSeconds,
            Gaps = ReportedGaps(measured.Seconds),
            Errors = Recorder.ErrorsSnapshot(),
            Retries = Retries(),
            Timeline = measured.Timeline,
            Histogram = [.. buckets.Select(b => new HistogramBucket(b.Low / 1000.0, b.High / 1000.0, b.Count))],
            Cpu = measured.Cpu,
            LoadAverageBefore = loadBefore,
            LoadAverageAfter = LoadAverage(),
        };
    }

    /// <summary>The run's commit gaps worth listing: the longest <see cref="BenchLimits.ReportedGapsMax"/>, by start.</summary>
    private List<CommitGap> ReportedGaps(double endSeconds)
    {
        var gaps = Recorder.GapsAtLeast(BenchLimits.ReportedGapSecondsMin, endSeconds);
        if (gaps.Count > BenchLimits.ReportedGapsMax)
        {
            gaps = [.. gaps.OrderByDescending(gap => gap.Seconds).Take(BenchLimits.ReportedGapsMax).OrderBy(gap => gap.StartSeconds)];
        }

        return gaps;
    }

    /// <summary>Retried attempts by kind; through the SDK only its total is known.</summary>
    private Dictionary<string, long> Retries()
    {
        var retries = Recorder.RetriesSnapshot();
        if (sdk is not null && sdk.Statistics.CreateRetries > 0)
        {
            retries["sdk_retried_requests"] = sdk.Statistics.CreateRetries;
        }

        return retries;
    }

    private static string LoadAverage()
    {
        try
        {
            var parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return $"{parts[0]} {parts[1]} {parts[2]}";
        }
        catch (IOException)
        {
            return "unknown";
        }
        catch (UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (sdk is not null)
        {
            await sdk.DisposeAsync();
        }

        if (ledger is not null)
        {
            await ledger.DisposeAsync();
        }

        if (cluster is not null)
        {
            await cluster.StopAllAsync();
            await cluster.DisposeAsync();
            if (options.KeepData)
            {
                output.WriteLine($"Data and node logs kept in {dataRoot}");
            }
            else if (Directory.Exists(dataRoot))
            {
                try
                {
                    Directory.Delete(dataRoot, recursive: true);
                }
                catch (IOException)
                {
                    // A file still held by a dying process: the OS temp cleaner takes it later.
                }
            }
        }
    }

    /// <summary>The generators' counters, added up once each caller ends.</summary>
    private sealed class WorkloadTotals
    {
        public long Payments;
        public long Events;
        public long CrossShardPayments;
        public long PendingPayments;
        public long Posts;
        public long Voids;

        private readonly Lock gate = new();

        public void Reset()
        {
            lock (gate)
            {
                Payments = Events = CrossShardPayments = PendingPayments = Posts = Voids = 0;
            }
        }

        public void Add(WorkloadGenerator generator, long events)
        {
            lock (gate)
            {
                Payments += generator.Payments;
                Events += events;
                CrossShardPayments += generator.CrossShardPayments;
                PendingPayments += generator.PendingPayments;
                Posts += generator.Posts;
                Voids += generator.Voids;
            }
        }
    }

    /// <summary>`exists` on a retry means an earlier attempt of this same request created the transfer.</summary>
    private static bool IsCreated(string status, int attempt) =>
        status == "created" || (attempt > 0 && status == "exists");
}
