using System.CommandLine;
using RaftLedger.Cli.Processes;

namespace RaftLedger.Cli;

/// <summary><c>raftledger cluster up</c>: a local cluster of child node processes until Ctrl+C.</summary>
public static class ClusterCommand
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "Number of nodes.", DefaultValueFactory = _ => 3 };
        var shards = new Option<int>("--shards") { Description = "Number of shards.", DefaultValueFactory = _ => 8 };
        var data = new Option<string>("--data") { Description = "Data folder (node i uses <data>/n<i>).", DefaultValueFactory = _ => "./data" };
        var basePort = new Option<int>("--base-port") { Description = "Node i: peer port base+i, API base+1000+i, gRPC base+2000+i; 0 picks free ports.", DefaultValueFactory = _ => 7100 };
        var up = new Command("up", "Start a local cluster as child processes; Ctrl+C stops them all.") { nodes, shards, data, basePort };
        up.SetAction(async (parse, cancellationToken) => await UpAsync(
            new LocalClusterOptions
            {
                DataRoot = Path.GetFullPath(parse.GetValue(data)!),
                NodeCount = parse.GetValue(nodes),
                ShardCount = parse.GetValue(shards),
                Replication = Math.Min(3, parse.GetValue(nodes)),
                BasePort = parse.GetValue(basePort) is var port and not 0 ? port : null,
            },
            cancellationToken));
        return new Command("cluster", "Run a local cluster.") { up };
    }

    private static async Task<int> UpAsync(LocalClusterOptions options, CancellationToken cancellationToken)
    {
        if (options.NodeCount < 1 || options.NodeCount > LocalCluster.NodeCountMax)
        {
            await Console.Error.WriteLineAsync($"raftledger cluster up: --nodes must be from 1 to {LocalCluster.NodeCountMax}, got {options.NodeCount}.");
            return 2;
        }

        if (options.BasePort is < 1 or > 62535 - LocalCluster.NodeCountMax)
        {
            await Console.Error.WriteLineAsync("raftledger cluster up: --base-port must leave room for base+2000+nodes below 65536.");
            return 2;
        }

        LocalCluster created;
        try
        {
            created = LocalCluster.Create(options);
        }
        catch (LocalClusterException exception)
        {
            await Console.Error.WriteLineAsync($"raftledger cluster up: {exception.Message}");
            return 2;
        }

        await using var cluster = created;
        cluster.StartAll();
        Console.WriteLine($"Starting {options.NodeCount} nodes, {options.ShardCount} shards, data in {options.DataRoot} ...");
        try
        {
            await cluster.WaitAllReadyAsync(ReadyTimeout, cancellationToken);
        }
        catch (LocalClusterException exception)
        {
            await Console.Error.WriteLineAsync($"raftledger cluster up: {exception.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            return 130;
        }

        PrintWelcome(cluster);
        await WatchUntilCancelledAsync(cluster, cancellationToken);
        Console.WriteLine("Stopping the nodes ...");
        await cluster.StopAllAsync();
        return 0;
    }

    private static void PrintWelcome(LocalCluster cluster)
    {
        Console.WriteLine("Cluster is ready.");
        foreach (var node in cluster.Nodes)
        {
            Console.WriteLine($"  node {node.Id}: REST {node.ApiUrl}  gRPC {node.GrpcUrl}  log {Path.Combine(cluster.Options.DataRoot, $"n{node.Id}.log")}");
        }

        var api = cluster.Nodes[0].ApiUrl.ToString().TrimEnd('/');
        Console.WriteLine();
        Console.WriteLine("Try:");
        Console.WriteLine($"  curl -s -X POST {api}/v1/accounts -H 'Content-Type: application/json' \\");
        Console.WriteLine("    -d '{\"accounts\":[{\"id\":\"1\",\"ledger\":1,\"code\":1},{\"id\":\"2\",\"ledger\":1,\"code\":1}]}'");
        Console.WriteLine($"  curl -s -X POST {api}/v1/transfers -H 'Content-Type: application/json' \\");
        Console.WriteLine("    -d '{\"transfers\":[{\"id\":\"1\",\"debit_account_id\":\"1\",\"credit_account_id\":\"2\",\"amount\":\"100\",\"ledger\":1,\"code\":1}]}'");
        Console.WriteLine($"  curl -s {api}/v1/accounts/2");
        Console.WriteLine($"  raftledger status --api {api}");
        Console.WriteLine($"  open {api}/dashboard in a browser (live shards, leaders and replica lag); metrics on {api}/metrics");
        Console.WriteLine();
        Console.WriteLine("Press Ctrl+C to stop all nodes.");
    }

    /// <summary>Reports nodes that exit on their own, until Ctrl+C.</summary>
    private static async Task WatchUntilCancelledAsync(LocalCluster cluster, CancellationToken cancellationToken)
    {
        var reported = new HashSet<ulong>();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                foreach (var node in cluster.Nodes)
                {
                    if (!cluster.IsRunning(node.Id) && reported.Add(node.Id))
                    {
                        Console.WriteLine($"node {node.Id} exited.{cluster.LogTail(node.Id, 5)}");
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C: the normal way out.
        }
    }
}
