using System.CommandLine;
using RaftLedger.Cli.Demo;

namespace RaftLedger.Cli;

/// <summary><c>raftledger demo</c>: the main job (see <see cref="DemoRun"/>).</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var shards = new Option<int>("--shards") { Description = "Shards of the demo cluster.", DefaultValueFactory = _ => 8 };
        var kills = new Option<int>("--kills") { Description = "Leader kills (each followed by a restart); 20 measures failover as a benchmark.", DefaultValueFactory = _ => 1 };
        var seconds = new Option<int>("--seconds") { Description = "Seconds of payments before the first kill.", DefaultValueFactory = _ => 4 };
        var seed = new Option<int>("--seed") { Description = "Seed of account ids and payments.", DefaultValueFactory = _ => 42 };
        var crossShard = new Option<int>("--cross-shard") { Description = "Percent of payments between accounts of two shards (0-100).", DefaultValueFactory = _ => 0 };
        var keep = new Option<bool>("--keep") { Description = "Keep the temporary data folder and node logs." };
        var command = new Command("demo", "Run a local 3-node cluster, pay, kill a shard leader, restart it, and check nothing was lost.")
        {
            shards, kills, seconds, seed, crossShard, keep,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new DemoOptions
            {
                ShardCount = parse.GetValue(shards),
                Kills = parse.GetValue(kills),
                WarmUp = TimeSpan.FromSeconds(parse.GetValue(seconds)),
                Seed = parse.GetValue(seed),
                KeepData = parse.GetValue(keep),
                CrossShardPercent = parse.GetValue(crossShard),
            };
            if (options.ShardCount < 1 || options.Kills < 0 || options.WarmUp < TimeSpan.Zero || options.CrossShardPercent is < 0 or > 100)
            {
                await Console.Error.WriteLineAsync("raftledger demo: --shards must be ≥ 1, --kills and --seconds ≥ 0, --cross-shard 0-100.");
                return 2;
            }

            await using var demo = new DemoRun(options, Console.Out);
            return await demo.RunAsync(cancellationToken);
        });
        return command;
    }
}
