using System.CommandLine;
using RaftLedger.Ledger;
using RaftLedger.Simulation;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Cli;

/// <summary>
/// <c>raftledger sim</c>: runs the deterministic cluster simulator. One seed (<c>--seed N</c>) replays a run
/// exactly, optionally with a message trace; a range (<c>--seeds COUNT</c>, or <c>--from F --count C</c>) is a
/// soak that reports seeds per second and every failing seed with its replay command. <c>--multishard</c> runs
/// the multi-shard simulator instead (several Raft groups with the real ledger and the cross-shard protocol).
/// </summary>
public static class SimCommand
{
    public static Command Create()
    {
        var seed = new Option<ulong?>("--seed") { Description = "Run (replay) one seed." };
        var seeds = new Option<long?>("--seeds") { Description = "Soak: run this many seeds, starting at --from (default 1)." };
        var from = new Option<ulong>("--from") { Description = "First seed of a soak.", DefaultValueFactory = _ => 1 };
        var count = new Option<long?>("--count") { Description = "Soak: number of seeds (same as --seeds)." };
        var nodes = new Option<int>("--nodes") { Description = "Cluster size: 3, 5 or 7 (0: each seed picks 3 or 5).", DefaultValueFactory = _ => 0 };
        var ticks = new Option<int>("--ticks") { Description = "Ticks of faults per seed before healing.", DefaultValueFactory = _ => ChaosOptions.ChaosTicksDefault };
        var parallel = new Option<int>("--parallel") { Description = "Seeds run at once in a soak.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var trace = new Option<bool>("--trace") { Description = "With --seed: print every message sent and delivered." };
        var multiShard = new Option<bool>("--multishard") { Description = "Run the multi-shard bank simulator (shard Raft groups, real ledger, cross-shard protocol)." };
        var shards = new Option<int>("--shards") { Description = "With --multishard: shards 2..8 (0: each seed chooses).", DefaultValueFactory = _ => 0 };
        var crossShard = new Option<double>("--cross-shard") { Description = "With --multishard: share of requests that cross shards, 0..1 (-1: each seed chooses).", DefaultValueFactory = _ => -1 };
        var rich = new Option<bool>("--rich-customers") { Description = "With --multishard: customers start rich, so no transfer is refused for lack of funds." };
        var longChains = new Option<int>("--long-chains") { Description = $"With --multishard: a tenth of the cross-shard requests are linked chains of 65..N transfers (N <= {LedgerLimits.BatchEventsMax}; 0: none).", DefaultValueFactory = _ => 0 };
        var command = new Command("sim", "Run the deterministic cluster simulator: one seed, or a soak over many seeds.")
        {
            seed, seeds, from, count, nodes, ticks, parallel, trace, multiShard, shards, crossShard, rich, longChains,
        };
        command.SetAction(parse =>
        {
            if (parse.GetValue(multiShard))
            {
                return RunMultiShard(
                    parse.GetValue(seed), parse.GetValue(seeds) ?? parse.GetValue(count), parse.GetValue(from), parse.GetValue(parallel),
                    new MultiShardChaosOptions
                    {
                        Nodes = parse.GetValue(nodes),
                        Shards = parse.GetValue(shards),
                        ChaosTicks = parse.GetResult(ticks) is { Implicit: false } ? parse.GetValue(ticks) : MultiShardChaosOptions.ChaosTicksDefault,
                        Trace = parse.GetValue(trace) ? Console.WriteLine : null,
                        CrossShardFraction = parse.GetValue(crossShard),
                        RichCustomers = parse.GetValue(rich),
                        LongChainEventsMax = parse.GetValue(longChains),
                    });
            }

            var options = new ChaosOptions { Nodes = parse.GetValue(nodes), ChaosTicks = parse.GetValue(ticks) };
            var error = Validate(options, parse.GetValue(parallel));
            if (error is not null)
            {
                Console.Error.WriteLine(error);
                return 2;
            }

            if (parse.GetValue(seed) is { } one)
            {
                return RunOne(one, parse.GetValue(trace) ? options with { Trace = Console.WriteLine } : options);
            }

            var total = parse.GetValue(seeds) ?? parse.GetValue(count) ?? 1_000;
            return Soak(parse.GetValue(from), total, options, parse.GetValue(parallel));
        });
        return command;
    }

    private static int RunMultiShard(ulong? seed, long? count, ulong from, int parallel, MultiShardChaosOptions options)
    {
        var error = ValidateMultiShard(options, parallel);
        if (error is not null)
        {
            Console.Error.WriteLine(error);
            return 2;
        }

        if (seed is { } one)
        {
            var result = MultiShardChaos.Execute(one, options);
            Console.WriteLine(result.ToString());
            return result.Passed ? 0 : 1;
        }

        var total = count ?? 500;
        if (total < 1)
        {
            Console.Error.WriteLine($"--seeds/--count {total} must be at least 1.");
            return 2;
        }

        Console.WriteLine($"multishard soak: {total} seeds from {from}, {parallel} at once, {options.ChaosTicks} chaos ticks each");
        var summary = MultiShardSweep.Run(
            from,
            total,
            options with { Trace = null },
            parallel,
            onFailure: failure => Console.WriteLine(failure.ToString()),
            onProgress: (done, elapsed) => Console.WriteLine($"  {done} seeds, {done / Math.Max(elapsed.TotalSeconds, 1e-9):F1} seeds/s"));
        Console.WriteLine(summary.ToString());
        foreach (var failure in summary.Failures)
        {
            Console.WriteLine($"  replay: {failure.ReplayCommand}");
        }

        return summary.Failures.Count == 0 ? 0 : 1;
    }

    private static string? ValidateMultiShard(MultiShardChaosOptions options, int parallel)
    {
        if (options.Nodes is not (0 or >= MultiShardLimits.NodesMin and <= MultiShardLimits.NodesMax))
        {
            return $"--nodes {options.Nodes} is not supported with --multishard: use {MultiShardLimits.NodesMin}..{MultiShardLimits.NodesMax} (or 0 to let each seed choose).";
        }

        if (options.Shards is not (0 or >= 2 and <= MultiShardLimits.ShardsMax))
        {
            return $"--shards {options.Shards} is not supported: use 2..{MultiShardLimits.ShardsMax} (or 0 to let each seed choose).";
        }

        if (options.ChaosTicks < 0)
        {
            return $"--ticks {options.ChaosTicks} must be 0 or more.";
        }

        if (options.LongChainEventsMax is not (0 or >= 65 and <= LedgerLimits.BatchEventsMax))
        {
            return $"--long-chains {options.LongChainEventsMax} must be 0 or in [65, {LedgerLimits.BatchEventsMax}].";
        }

        if (options.CrossShardFraction > 1 || (options.CrossShardFraction < 0 && options.CrossShardFraction != -1))
        {
            return $"--cross-shard {options.CrossShardFraction} must be in [0, 1] (or -1 to let each seed choose).";
        }

        return parallel < 1 ? $"--parallel {parallel} must be at least 1." : null;
    }

    private static string? Validate(ChaosOptions options, int parallel)
    {
        if (options.Nodes is not (0 or 3 or 5 or 7))
        {
            return $"--nodes {options.Nodes} is not supported: use 3, 5 or 7 (or 0 to let each seed choose).";
        }

        if (options.ChaosTicks < 0)
        {
            return $"--ticks {options.ChaosTicks} must be 0 or more.";
        }

        return parallel < 1 ? $"--parallel {parallel} must be at least 1." : null;
    }

    private static int RunOne(ulong seed, ChaosOptions options)
    {
        var result = ChaosRun.Execute(seed, options);
        Console.WriteLine(result.ToString());
        return result.Passed ? 0 : 1;
    }

    private static int Soak(ulong from, long count, ChaosOptions options, int parallel)
    {
        if (count < 1)
        {
            Console.Error.WriteLine($"--seeds/--count {count} must be at least 1.");
            return 2;
        }

        Console.WriteLine($"soak: {count} seeds from {from}, {parallel} at once, {options.ChaosTicks} chaos ticks each");
        var summary = SeedSweep.Run(
            from,
            count,
            options,
            parallel,
            onFailure: failure => Console.WriteLine(failure.ToString()),
            onProgress: (done, elapsed) => Console.WriteLine($"  {done} seeds, {done / Math.Max(elapsed.TotalSeconds, 1e-9):F1} seeds/s"),
            progressEverySeeds: Math.Max(100, count / 20));
        Console.WriteLine(summary.ToString());
        foreach (var failure in summary.Failures)
        {
            Console.WriteLine($"  replay: {failure.ReplayCommand}");
        }

        return summary.Failed == 0 ? 0 : 1;
    }
}
