namespace RaftLedger.Cli.Bench;

/// <summary>The bench's fixed limits, in one place (a test asserts how they relate).</summary>
public static class BenchLimits
{
    /// <summary>Events per request at most: the API's batch limit (TigerBeetle's 8189).</summary>
    public const int BatchEventsMax = 8189;

    /// <summary>Outstanding requests at most in <c>--concurrency</c> mode.</summary>
    public const int ConcurrencyMax = 4096;

    /// <summary>Independent single-transfer callers at most in <c>--clients</c> mode.</summary>
    public const int ClientsMax = 65536;

    /// <summary>Highest <c>--rate</c>, payments per second (far above what a cluster takes; a typo guard).</summary>
    public const double RateMax = 10_000_000;

    /// <summary>Accounts at most (their Zipf tables cost 16 bytes each).</summary>
    public const int AccountsMax = 10_000_000;

    /// <summary>Commit gaps on one shard at least this long are listed in the report (JSON <c>gaps</c>).</summary>
    public const double ReportedGapSecondsMin = 0.2;

    /// <summary>Listed commit gaps at most (the longest are kept), so a stalled run's report stays small.</summary>
    public const int ReportedGapsMax = 200;

    /// <summary>Accounts per shard at least, so a same-shard transfer always has two distinct accounts.</summary>
    public const int AccountsPerShardMin = 2;

    /// <summary>Acknowledged pending transfers waiting for their post/void, per generator and shard.</summary>
    public const int PendingQueueLengthMax = 65536;

    /// <summary>How long one transfer may be retried (same ids) before the caller sees an error.</summary>
    public static readonly TimeSpan RequestDeadline = TimeSpan.FromSeconds(10);

    /// <summary>Wait between retries of a request that failed with nothing applied or an unknown outcome.</summary>
    public static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(20);

    /// <summary>Progress line and throughput-timeline sample period (the issue: at most every second).</summary>
    public static readonly TimeSpan SampleInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long requests still in flight at the end may take to finish (then they count as unknown).</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Longest unmeasured warm-up before the measured run.</summary>
    public static readonly TimeSpan WarmupMax = TimeSpan.FromMinutes(10);

    /// <summary>Time allowed for a local cluster (or a restarted node) to become ready.</summary>
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
}

/// <summary>What <c>raftledger bench</c> runs (issue 7 §2). Validated by <see cref="Validate"/>.</summary>
public sealed record BenchOptions
{
    /// <summary>gRPC API addresses of a running cluster's nodes; empty = start a local 3-node cluster in a temp folder.</summary>
    public IReadOnlyList<BenchNode> Api { get; init; } = [];

    /// <summary>Shards of the local cluster (ignored with <see cref="Api"/>: the cluster's count is used).</summary>
    public int LocalShards { get; init; } = 8;

    public int Accounts { get; init; } = 10_000;

    /// <summary>Stop after this many payments (new transfers, not counting post/void); null = run for <see cref="Duration"/>.</summary>
    public long? Transfers { get; init; }

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Unmeasured run of the same callers before measuring, so that the figures are of warm processes (code
    /// compiled by the JIT's final tier, caches filled) rather than of start-up; zero = none.
    /// </summary>
    public TimeSpan Warmup { get; init; }

    /// <summary>Events per request in <c>--concurrency</c> mode.</summary>
    public int Batch { get; init; } = 8189;

    /// <summary>Outstanding requests, each carrying <see cref="Batch"/> transfers on one shard.</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>Independent single-transfer callers through the SDK's batching; 0 = <c>--concurrency</c> mode.</summary>
    public int Clients { get; init; }

    /// <summary>Zipf exponent of the account choice; 0 = uniform.</summary>
    public double Zipf { get; init; }

    /// <summary>
    /// Payments per second to aim for, across all callers (0: as fast as they go). Each caller waits between its
    /// requests (a timer, ~1 ms resolution), so latency can be measured at the rate a service sends.
    /// </summary>
    public double Rate { get; init; }

    /// <summary>Fraction of payments whose credit account is on another shard than the debit account.</summary>
    public double CrossShard { get; init; }

    /// <summary>Fraction of payments made as pending transfers, each posted or voided once acknowledged.</summary>
    public double TwoPhase { get; init; }

    /// <summary>Kill (SIGKILL) a shard leader's process this often and restart it; null = never.</summary>
    public TimeSpan? KillLeaderEvery { get; init; }

    /// <summary>When a restarted victim counts as back, so that the next kill may come (see <see cref="KillAfter"/>).</summary>
    public KillAfter KillAfter { get; init; } = KillAfter.CaughtUp;

    public ulong Seed { get; init; } = 1;

    public string? JsonPath { get; init; }

    public string? HtmlPath { get; init; }

    /// <summary>Keep the local cluster's data folder and node logs.</summary>
    public bool KeepData { get; init; }

    /// <summary>Extra flags for local nodes (tests use it for shorter timeouts); not a command-line option.</summary>
    public IReadOnlyList<string> LocalNodeArguments { get; init; } = [];

    /// <summary>Null when the options can run; otherwise what is wrong and how to fix it.</summary>
    public string? Validate()
    {
        if (Accounts < 2 || Accounts > BenchLimits.AccountsMax)
        {
            return $"--accounts must be between 2 and {BenchLimits.AccountsMax:N0}; got {Accounts}.";
        }

        if (Transfers is { } count && count < 1)
        {
            return $"--transfers must be at least 1; got {count}.";
        }

        if (Transfers is null && Duration <= TimeSpan.Zero)
        {
            return "--duration must be positive (seconds), or give --transfers.";
        }

        if (Warmup < TimeSpan.Zero || Warmup > BenchLimits.WarmupMax)
        {
            return $"--warmup must be between 0 and {BenchLimits.WarmupMax.TotalSeconds:0} seconds; got {Warmup.TotalSeconds}.";
        }

        if (Batch < 1 || Batch > BenchLimits.BatchEventsMax)
        {
            return $"--batch must be between 1 and {BenchLimits.BatchEventsMax}; got {Batch}.";
        }

        if (Concurrency < 1 || Concurrency > BenchLimits.ConcurrencyMax)
        {
            return $"--concurrency must be between 1 and {BenchLimits.ConcurrencyMax}; got {Concurrency}.";
        }

        if (Clients < 0 || Clients > BenchLimits.ClientsMax)
        {
            return $"--clients must be between 0 (off) and {BenchLimits.ClientsMax}; got {Clients}.";
        }

        return ValidateWorkload();
    }

    private string? ValidateWorkload()
    {
        if (double.IsNaN(Zipf) || Zipf < 0 || Zipf > 10)
        {
            return $"--zipf must be between 0 (uniform) and 10; got {Zipf}.";
        }

        if (!(CrossShard >= 0 && CrossShard <= 1) || !(TwoPhase >= 0 && TwoPhase <= 1))
        {
            return $"--cross-shard and --two-phase are fractions between 0 and 1; got {CrossShard} and {TwoPhase}.";
        }

        if (!(Rate >= 0 && Rate <= BenchLimits.RateMax))
        {
            return $"--rate must be between 0 (as fast as the callers go) and {BenchLimits.RateMax:N0} payments per second; got {Rate}.";
        }

        if (KillLeaderEvery is { } every && every < TimeSpan.FromSeconds(2))
        {
            return $"--kill-leader-every must be at least 2 s (the killed node must restart in between); got {every.TotalSeconds} s.";
        }

        if (KillLeaderEvery is not null && Api.Count > 0)
        {
            return "--kill-leader-every needs the local cluster (the bench can only kill processes it started): drop --api.";
        }

        if (Api.Count == 0 && (LocalShards < 1 || LocalShards > Common.Placement.ShardRouter.ShardCountMax))
        {
            return $"the local cluster needs 1 to {Common.Placement.ShardRouter.ShardCountMax} shards; got {LocalShards}.";
        }

        return null;
    }
}

/// <summary>When the bench counts a restarted node as back, so that the next leader kill may come.</summary>
public enum KillAfter
{
    /// <summary>
    /// Once it has applied what the leaders had committed when it became ready: the next kill then is the single
    /// failure three replicas are for (the default).
    /// </summary>
    CaughtUp,

    /// <summary>
    /// As soon as it answers /readyz (the rule before the eighth session, kept to measure the catch-up stall): the
    /// next kill may come while it still lacks entries, so its commit gap can include the catch-up.
    /// </summary>
    Ready,
}
