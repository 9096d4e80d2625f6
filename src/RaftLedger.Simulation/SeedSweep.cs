using System.Diagnostics;
using RaftLedger.Common;

namespace RaftLedger.Simulation;

/// <summary>What a sweep over many seeds found.</summary>
public sealed record SeedSweepSummary(ulong From, long Count, long Failed, TimeSpan Elapsed, IReadOnlyList<SimRunResult> Failures)
{
    public double SeedsPerSecond => Count / Math.Max(Elapsed.TotalSeconds, 1e-9);

    public override string ToString() =>
        $"{Count} seeds from {From}: {Count - Failed} passed, {Failed} failed in {Elapsed.TotalSeconds:F1} s ({SeedsPerSecond:F1} seeds/s)";
}

/// <summary>
/// Runs a range of chaos seeds, in parallel across cores (each seed is an independent, single-threaded,
/// deterministic run, so parallelism never changes a seed's outcome). Used by the soak command.
/// </summary>
public static class SeedSweep
{
    /// <summary>Failures kept in the summary; a sweep that finds more is reported by count.</summary>
    public const int FailuresKeptMax = 100;

    public static SeedSweepSummary Run(
        ulong from,
        long count,
        ChaosOptions options,
        int parallelism,
        Action<SimRunResult>? onFailure = null,
        Action<long, TimeSpan>? onProgress = null,
        long progressEverySeeds = 1_000)
    {
        ArgumentNullException.ThrowIfNull(options);
        Invariant.Check(count >= 0 && parallelism >= 1 && progressEverySeeds >= 1);
        var failures = new List<SimRunResult>();
        long done = 0, failed = 0;
        var gate = new object();
        var clock = Stopwatch.StartNew();
        Parallel.For(0L, count, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, i =>
        {
            var result = ChaosRun.Execute(from + (ulong)i, options);
            lock (gate)
            {
                done++;
                if (!result.Passed)
                {
                    failed++;
                    if (failures.Count < FailuresKeptMax)
                    {
                        failures.Add(result);
                    }

                    onFailure?.Invoke(result);
                }

                if (done % progressEverySeeds == 0)
                {
                    onProgress?.Invoke(done, clock.Elapsed);
                }
            }
        });

        failures.Sort((a, b) => a.Seed.CompareTo(b.Seed));
        return new SeedSweepSummary(from, count, failed, clock.Elapsed, failures);
    }
}
