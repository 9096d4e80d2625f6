using System.Diagnostics;
using RaftLedger.Common;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>What a sweep over many multi-shard seeds found.</summary>
public sealed record MultiShardSweepSummary(ulong From, long Count, IReadOnlyList<MultiShardRunResult> Failures, TimeSpan Elapsed, long Transfers, long Acknowledged)
{
    /// <summary>Acknowledged balancing or closing transfers across shards.</summary>
    public long BalancingOrClosing { get; init; }

    /// <summary>Fast-path chains handed to a driver after the ledger refused them (the post/void race), over all seeds.</summary>
    public long ReroutedChains { get; init; }

    public double SeedsPerSecond => Count / Math.Max(Elapsed.TotalSeconds, 1e-9);

    public override string ToString() =>
        $"{Count} multishard seeds from {From}: {Count - Failures.Count} passed, {Failures.Count} failed in {Elapsed.TotalSeconds:F1} s " +
        $"({SeedsPerSecond:F1} seeds/s); {Transfers} transfers, {Acknowledged} acknowledged ({BalancingOrClosing} balancing or closing); {ReroutedChains} fast-path chains rerouted to the driver";
}

/// <summary>Runs a range of multi-shard seeds in parallel (each seed is independent and single-threaded, so parallelism never changes an outcome).</summary>
public static class MultiShardSweep
{
    public static MultiShardSweepSummary Run(ulong from, long count, MultiShardChaosOptions options, int parallelism, Action<MultiShardRunResult>? onFailure = null, Action<long, TimeSpan>? onProgress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Invariant.Check(count >= 0 && parallelism >= 1);
        var failures = new List<MultiShardRunResult>();
        long done = 0, transfers = 0, acknowledged = 0, balancingOrClosing = 0, rerouted = 0;
        var progressEvery = Math.Max(100, count / 20);
        var gate = new object();
        var clock = Stopwatch.StartNew();
        Parallel.For(0L, count, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, i =>
        {
            var result = MultiShardChaos.Execute(from + (ulong)i, options);
            lock (gate)
            {
                done++;
                transfers += result.Transfers;
                acknowledged += result.Acknowledged;
                balancingOrClosing += result.BalancingOrClosingAcknowledged;
                rerouted += result.ReroutedChains;
                if (!result.Passed)
                {
                    failures.Add(result);
                    onFailure?.Invoke(result);
                }

                if (done % progressEvery == 0)
                {
                    onProgress?.Invoke(done, clock.Elapsed);
                }
            }
        });

        failures.Sort((a, b) => a.Seed.CompareTo(b.Seed));
        return new MultiShardSweepSummary(from, count, failures, clock.Elapsed, transfers, acknowledged) { BalancingOrClosing = balancingOrClosing, ReroutedChains = rerouted };
    }
}
