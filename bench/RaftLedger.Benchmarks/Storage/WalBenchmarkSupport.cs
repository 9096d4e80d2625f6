using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace RaftLedger.Benchmarks.Storage;

/// <summary>
/// One job for the disk benchmarks: each iteration is one invocation of a fixed workload (Monitoring), run
/// in-process so the latency recorder can print its percentiles. BenchmarkDotNet's mean is per entry
/// (OperationsPerInvoke); our own recorder adds what BDN cannot see per call: p50/p99 and fsyncs/s.
/// </summary>
public sealed class WalBenchmarkConfig : ManualConfig
{
    public WalBenchmarkConfig()
    {
        AddJob(Job.Default
            .WithStrategy(RunStrategy.Monitoring)
            .WithLaunchCount(1)
            .WithWarmupCount(1)
            .WithIterationCount(5)
            .WithInvocationCount(1)
            .WithUnrollFactor(1)
            .WithToolchain(InProcessEmitToolchain.Instance));
    }
}

/// <summary>Where benchmark data goes: on the same disk as /work (WAL_BENCH_DIR overrides).</summary>
internal static class WalBenchmarkPaths
{
    public static string NewDirectory(string name)
    {
        var root = Environment.GetEnvironmentVariable("WAL_BENCH_DIR") ?? Path.Combine(Path.GetTempPath(), "raftledger-wal-bench");
        var path = Path.Combine(root, name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(path);
        return path;
    }

    public static string SummaryFile =>
        Path.Combine(Environment.GetEnvironmentVariable("WAL_BENCH_DIR") ?? Path.Combine(Path.GetTempPath(), "raftledger-wal-bench"), "summary.txt");
}

/// <summary>Collects per-call latencies and totals per invocation; reports over the measured invocations only.</summary>
internal sealed class LatencyRecorder
{
    // The first invocations are BDN's jitting and warmup runs.
    private const int SkippedInvocations = 2;
    private readonly List<long[]> _latencies = [];
    private readonly List<(double Seconds, long Entries, long Bytes, long Syncs)> _totals = [];
    private readonly List<long[]> _baseline = [];
    private double _baselineSeconds;
    private long _baselineSyncs;

    /// <summary>Raw write+fdatasync latencies measured just before an invocation, for a same-moment comparison.</summary>
    public void AddBaseline(long[] latencyTicks, double seconds)
    {
        _baseline.Add(latencyTicks);
        if (_baseline.Count > SkippedInvocations)
        {
            _baselineSeconds += seconds;
            _baselineSyncs += latencyTicks.Length;
        }
    }

    public void AddInvocation(long[] latencyTicks, double seconds, long entries, long bytes, long syncs)
    {
        _latencies.Add(latencyTicks);
        _totals.Add((seconds, entries, bytes, syncs));
    }

    public void Report(string name)
    {
        var measured = Math.Max(0, _totals.Count - SkippedInvocations);
        if (measured == 0)
        {
            return;
        }

        var all = _latencies.Skip(SkippedInvocations).SelectMany(l => l).Order().ToArray();
        double seconds = 0, entries = 0, bytes = 0, syncs = 0;
        foreach (var (s, e, b, f) in _totals.Skip(SkippedInvocations))
        {
            seconds += s;
            entries += e;
            bytes += b;
            syncs += f;
        }

        var line = string.Create(CultureInfo.InvariantCulture,
            $"WAL-RESULT {name}: entries/s={entries / seconds:F0} MiB/s={bytes / seconds / (1 << 20):F1} fsyncs/s={syncs / seconds:F0} " +
            $"p50={Micros(all, 0.50):F0}us p99={Micros(all, 0.99):F0}us calls={all.Length} invocations={measured}");
        if (_baselineSyncs > 0)
        {
            var raw = _baseline.Skip(SkippedInvocations).SelectMany(l => l).Order().ToArray();
            var rawRate = _baselineSyncs / _baselineSeconds;
            line += string.Create(CultureInfo.InvariantCulture,
                $" | raw fdatasync meanwhile: {rawRate:F0}/s p50={Micros(raw, 0.50):F0}us p99={Micros(raw, 0.99):F0}us" +
                $" | entries/s per raw fsync/s={entries / seconds / rawRate:F1} p50 latency/raw p50={Micros(all, 0.50) / Micros(raw, 0.50):F2}");
        }

        Console.WriteLine(line);
        File.AppendAllText(WalBenchmarkPaths.SummaryFile, line + Environment.NewLine);
    }

    private static double Micros(long[] sorted, double quantile) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(quantile * sorted.Length))] * 1e6 / Stopwatch.Frequency;
}
