using System.CommandLine;
using RaftLedger.Cli.Verify;

namespace RaftLedger.Cli;

/// <summary><c>raftledger verify</c>: the Jepsen-style audit (see <see cref="VerifyRun"/>).</summary>
public static class VerifyCommand
{
    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "Nodes of the local cluster (3 to 9).", DefaultValueFactory = _ => 3 };
        var shards = new Option<int>("--shards") { Description = "Shards.", DefaultValueFactory = _ => 8 };
        var accounts = new Option<int>("--accounts") { Description = "Guarded accounts, spread over the shards (at least 2 per shard).", DefaultValueFactory = _ => 16 };
        var clients = new Option<int>("--clients") { Description = "Concurrent clients.", DefaultValueFactory = _ => 8 };
        var duration = new Option<int>("--duration") { Description = "Seconds of workload under faults (then a final heal and recovery).", DefaultValueFactory = _ => 60 };
        var seed = new Option<int>("--seed") { Description = "Seed of the accounts, the workload and the fault schedule.", DefaultValueFactory = _ => 1 };
        var crossShard = new Option<bool>("--cross-shard") { Description = "Also pay between accounts of different shards (the two-phase commit path; clean on the seeds listed in docs/RELIABILITY.md, not yet soaked)." };
        var faults = new Option<string>("--faults") { Description = "Fault kinds: all, none, or a list of kill,kill-leader,kill-all,kill-meta-leader,power-cut,pause,pause-leader,partition,isolate-leader,bridge,one-way. power-cut: SIGKILL every node and drop every WAL byte not yet fdatasync'd.", DefaultValueFactory = _ => "all" };
        var historyPath = new Option<string?>("--history") { Description = "History file (JSON lines); default verify-seed<N>.history.jsonl in the current folder." };
        var keep = new Option<bool>("--keep") { Description = "Keep the data folder and node logs (always kept when a violation is found)." };
        var unsafeFaults = new Option<string?>("--unsafe-test-faults")
        {
            Description = "TEST ONLY: run deliberately broken nodes to show that verify catches them: skip-apply:N (node 1), synced-mark-lag:N (every node; with --faults power-cut).",
            Hidden = true,
        };
        var command = new Command("verify", "Attack a local cluster with kills, pauses and partitions under a bank workload, then prove nothing acknowledged was lost.")
        {
            nodes, shards, accounts, clients, duration, seed, crossShard, faults, historyPath, keep, unsafeFaults,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!FaultSchedule.TryParse(parse.GetValue(faults)!, out var kinds, out var error))
            {
                await Console.Error.WriteLineAsync($"raftledger verify: {error}");
                return 2;
            }

            var options = new VerifyOptions
            {
                NodeCount = parse.GetValue(nodes),
                ShardCount = parse.GetValue(shards),
                AccountCount = parse.GetValue(accounts),
                Clients = parse.GetValue(clients),
                Duration = TimeSpan.FromSeconds(parse.GetValue(duration)),
                Seed = parse.GetValue(seed),
                CrossShard = parse.GetValue(crossShard),
                Faults = kinds,
                HistoryPath = parse.GetValue(historyPath) is { } path ? Path.GetFullPath(path) : null,
                KeepData = parse.GetValue(keep),
                UnsafeTestFault = parse.GetValue(unsafeFaults),
            };
            if (Validate(options) is { } problem)
            {
                await Console.Error.WriteLineAsync($"raftledger verify: {problem}");
                return 2;
            }

            await using var run = new VerifyRun(options, Console.Out);
            return await run.RunAsync(cancellationToken);
        });
        return command;
    }

    /// <summary>The flag to fix, or null when the options can run.</summary>
    public static string? Validate(VerifyOptions options) =>
        options.NodeCount is < 3 or > Processes.LocalCluster.NodeCountMax ? $"--nodes must be from 3 to {Processes.LocalCluster.NodeCountMax} (partitions need a majority and a minority)." :
        options.ShardCount < 1 ? "--shards must be at least 1." :
        options.AccountCount < 2 ? "--accounts must be at least 2." :
        options.Clients < 1 ? "--clients must be at least 1." :
        options.Duration < TimeSpan.FromSeconds(5) ? "--duration must be at least 5 seconds." :
        options.UnsafeTestFault?.StartsWith("synced-mark-lag:", StringComparison.Ordinal) == true && !options.Faults.Contains(FaultKind.PowerCut)
            ? "--unsafe-test-faults synced-mark-lag:N only shows with a power cut: add power-cut to --faults." :
        null;
}
