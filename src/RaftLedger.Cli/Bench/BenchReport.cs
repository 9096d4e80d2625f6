using System.Globalization;
using System.Text;

namespace RaftLedger.Cli.Bench;

/// <summary>Latency percentiles in milliseconds (from a <see cref="LatencyHistogram"/>).</summary>
public sealed record LatencySummary(long Count, double P50, double P90, double P99, double P999, double Max)
{
    public static LatencySummary From(LatencyHistogram histogram)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        return new LatencySummary(
            histogram.Count,
            histogram.Percentile(0.50) / 1000.0,
            histogram.Percentile(0.90) / 1000.0,
            histogram.Percentile(0.99) / 1000.0,
            histogram.Percentile(0.999) / 1000.0,
            histogram.MaxMicroseconds / 1000.0);
    }
}

/// <summary>One bucket of the latency histogram, in milliseconds.</summary>
public readonly record struct HistogramBucket(double LowMilliseconds, double HighMilliseconds, long Count);

/// <summary>Everything a bench run found; printed as text, written as JSON and HTML.</summary>
public sealed record BenchReport
{
    public required BenchOptions Options { get; init; }

    /// <summary>"local" (started by the bench) or "api".</summary>
    public required string Cluster { get; init; }

    public required int Nodes { get; init; }

    public required int Shards { get; init; }

    /// <summary>"concurrency" (batches of --batch, --concurrency outstanding) or "clients".</summary>
    public required string Mode { get; init; }

    public required DateTime StartedUtc { get; init; }

    public required double Seconds { get; init; }

    /// <summary>New payments made (two-phase: the pending transfer; its post/void counts in <see cref="Events"/>).</summary>
    public required long Payments { get; init; }

    /// <summary>Transfers sent: payments plus posts and voids.</summary>
    public required long Events { get; init; }

    /// <summary>Transfers the cluster answered created (or exists on a retry).</summary>
    public required long Committed { get; init; }

    /// <summary>Transfers committed during the unmeasured warm-up (not in any other figure).</summary>
    public long WarmupCommitted { get; init; }

    public required long Requests { get; init; }

    public required long CrossShardPayments { get; init; }

    public required long PendingPayments { get; init; }

    public required long Posts { get; init; }

    public required long Voids { get; init; }

    public double TransfersPerSecond => Seconds > 0 ? Committed / Seconds : 0;

    /// <summary>Per transfer: from its creation by the caller to its final answer (retries included).</summary>
    public required LatencySummary Latency { get; init; }

    /// <summary>Per request attempt; empty (count 0) in --clients mode through the SDK.</summary>
    public required LatencySummary RequestLatency { get; init; }

    public required IReadOnlyList<FailoverEvent> Failovers { get; init; }

    public required double LongestGapAnyShardSeconds { get; init; }

    /// <summary>
    /// Stretches of at least <see cref="BenchLimits.ReportedGapSecondsMin"/> without a commit on one shard, whatever their
    /// cause (kills, catch-up stalls, pauses), ordered by start; at most <see cref="BenchLimits.ReportedGapsMax"/>.
    /// </summary>
    public IReadOnlyList<CommitGap> Gaps { get; init; } = [];

    /// <summary>The longest stretch without a commit on one shard over the measured run (null: none listed).</summary>
    public CommitGap? LongestShardGap => Gaps.Count == 0 ? null : Gaps.MaxBy(gap => gap.Seconds);

    public required IReadOnlyDictionary<string, long> Errors { get; init; }

    public required IReadOnlyDictionary<string, long> Retries { get; init; }

    public required IReadOnlyList<TimelineSample> Timeline { get; init; }

    public required IReadOnlyList<HistogramBucket> Histogram { get; init; }

    /// <summary>CPU seconds used while measuring, by the bench, the local nodes and everything else.</summary>
    public CpuUsage Cpu { get; init; }

    public required string LoadAverageBefore { get; init; }

    public required string LoadAverageAfter { get; init; }

    public int ProcessorCount { get; init; } = Environment.ProcessorCount;

    public long ErrorCount => Errors.Values.Sum();

    public double? MaxFailoverGapSeconds => Failovers.Count == 0 ? null : Failovers.Max(f => f.GapSeconds);

    /// <summary>The human-readable summary printed at the end of a run.</summary>
    public string ToText()
    {
        var text = new StringBuilder();
        text.AppendLine(Invariant($"RaftLedger bench: {Cluster} cluster, {Nodes} nodes, {Shards} shards, {Mode} mode, {Seconds:0.0} s measured after {Options.Warmup.TotalSeconds:0.#} s of warm-up"));
        text.AppendLine(Invariant($"  workload: {Payments:N0} payments ({CrossShardPayments:N0} cross-shard, {PendingPayments:N0} two-phase; {Posts:N0} posts, {Voids:N0} voids), {Events:N0} transfers sent in {Requests:N0} requests"));
        text.AppendLine(Invariant($"  throughput: {TransfersPerSecond:N0} transfers/s ({Committed:N0} committed)"));
        text.AppendLine(Line("  transfer latency", Latency));
        text.AppendLine(RequestLatency.Count > 0 ? Line("  request latency ", RequestLatency)
            : Mode == "clients" ? "  request latency:  not measured (the SDK batches the callers' transfers into its own requests)"
            : "  request latency:  no request was answered");
        foreach (var failover in Failovers)
        {
            var ready = failover.RestartedReadySeconds is { } seconds ? Invariant($", back and ready after {seconds:0.0} s") : "";
            ready += failover.RestartedCaughtUpSeconds is { } caughtUp ? Invariant($", caught up after {caughtUp:0.0} s") : "";
            text.AppendLine(Invariant($"  kill at {failover.AtSeconds:0.0} s: node {failover.Node} (led shard(s) {string.Join(",", failover.Shards)}), commit gap {failover.GapSeconds:0.000} s{ready}"));
        }

        if (MaxFailoverGapSeconds is { } max)
        {
            text.AppendLine(Invariant($"  failover: {Failovers.Count} kill(s), longest commit gap on the victim's shards {max:0.000} s"));
        }

        if (LongestShardGap is { } longest)
        {
            text.AppendLine(Invariant($"  commit gaps: {Gaps.Count} of {BenchLimits.ReportedGapSecondsMin:0.0} s or more on one shard; longest {longest.Seconds:0.000} s on shard {longest.Shard} ({longest.StartSeconds:0.0}-{longest.EndSeconds:0.0} s)"));
        }

        text.AppendLine("  errors (transfers): " + Counts(Errors));
        text.AppendLine("  retried attempts:   " + Counts(Retries));
        text.AppendLine(Invariant($"  load average before {LoadAverageBefore}, after {LoadAverageAfter} ({ProcessorCount} CPUs)"));
        if (Cpu.MachineSeconds > 0)
        {
            text.AppendLine(CpuLine());
        }
        return text.ToString();
    }

    /// <summary>
    /// Where the CPU went. The bench can only measure nodes it started (its children): with --api the nodes' time is in
    /// "other programs", so the line says that instead of showing them at 0 s.
    /// </summary>
    private string CpuLine()
    {
        var perThousand = Committed > 0 ? 1_000_000.0 / Committed : 0;
        var idle = Cpu.MachineSeconds - Cpu.MachineBusySeconds;
        return Cluster == "local"
            ? Invariant($"  CPU while measuring: nodes {Cpu.NodesSeconds:0.0} s, bench {Cpu.BenchSeconds:0.0} s, other programs {Cpu.OthersSeconds:0.0} s, idle {idle:0.0} s of {Cpu.MachineSeconds:0.0} s; per 1,000 committed transfers: nodes {Cpu.NodesSeconds * perThousand:0.0} ms, bench {Cpu.BenchSeconds * perThousand:0.0} ms")
            : Invariant($"  CPU while measuring: bench {Cpu.BenchSeconds:0.0} s, other programs (the nodes too, if on this machine) {Cpu.OthersSeconds:0.0} s, idle {idle:0.0} s of {Cpu.MachineSeconds:0.0} s; per 1,000 committed transfers: bench {Cpu.BenchSeconds * perThousand:0.0} ms (nodes not measured: the bench did not start them)");
    }

    private static string Line(string name, LatencySummary latency) => Invariant(
        $"{name}: p50 {latency.P50:0.000} ms  p90 {latency.P90:0.000} ms  p99 {latency.P99:0.000} ms  p99.9 {latency.P999:0.000} ms  max {latency.Max:0.000} ms");

    private static string Counts(IReadOnlyDictionary<string, long> counts) =>
        counts.Count == 0 ? "none" : string.Join(", ", counts.OrderByDescending(c => c.Value).Select(c => Invariant($"{c.Key} {c.Value:N0}")));

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
