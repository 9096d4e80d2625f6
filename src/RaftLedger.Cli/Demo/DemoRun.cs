using System.Diagnostics;
using System.Globalization;
using RaftLedger.Cli.Client;
using RaftLedger.Cli.Processes;
using RaftLedger.Ledger;

namespace RaftLedger.Cli.Demo;

/// <summary>One line of the final checks table.</summary>
public readonly record struct DemoCheck(string Name, bool Passed, string Detail);

/// <summary>
/// The main job: a local cluster in a temporary folder, accounts, a payment workload with a live
/// progress line, a shard leader killed mid-run (failover measured), the node restarted and caught
/// up, then the checks. Exit code 0 only if every check passes.
/// </summary>
public sealed partial class DemoRun : IAsyncDisposable
{
    private readonly DemoOptions options;
    private readonly TextWriter output;
    private readonly LedgerHttpClient client = new(TimeSpan.FromSeconds(10));
    private readonly List<DemoCheck> checks = [];
    private readonly List<double> failoverSeconds = [];
    private readonly string dataRoot;
    private readonly HashSet<ulong> down = [];
    private LocalCluster? cluster;

    public DemoRun(DemoOptions options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        this.output = output;
        dataRoot = Path.Combine(Path.GetTempPath(), $"raftledger-demo-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
    }

    public IReadOnlyList<DemoCheck> Checks => checks;

    private LocalCluster Cluster => cluster!;

    private IReadOnlyList<(ulong Id, Uri Url)> AllNodes => Cluster.Nodes.Select(n => (n.Id, n.ApiUrl)).ToList();

    private IReadOnlyList<(ulong Id, Uri Url)> LiveNodes
    {
        get
        {
            lock (down)
            {
                return Cluster.Nodes.Where(n => !down.Contains(n.Id)).Select(n => (n.Id, n.ApiUrl)).ToList();
            }
        }
    }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await StartClusterAsync(cancellationToken);
            var random = new Random(options.Seed);
            var accounts = DemoAccounts.Create(options.ShardCount, options.CustomersPerShard, random);
            await CreateAndFundAsync(accounts, cancellationToken);
            var workload = new PaymentWorkload(client, () => LiveNodes.Select(n => n.Url).ToArray(), accounts, options);
            await RunWorkloadWithFaultsAsync(workload, accounts, cancellationToken);
            await CheckAsync(workload, accounts, cancellationToken);
        }
        catch (Exception exception) when (exception is LocalClusterException or TimeoutException or HttpRequestException or DemoException)
        {
            checks.Add(new DemoCheck("demo ran to the end", false, exception.Message));
        }

        PrintChecks();
        return checks.All(check => check.Passed) && checks.Count > 0 ? 0 : 1;
    }

    private async Task StartClusterAsync(CancellationToken cancellationToken)
    {
        output.WriteLine($"RaftLedger demo: {options.NodeCount} nodes, {options.ShardCount} shards, data in {dataRoot}");
        cluster = LocalCluster.Create(new LocalClusterOptions
        {
            DataRoot = dataRoot,
            NodeCount = options.NodeCount,
            ShardCount = options.ShardCount,
            Replication = Math.Min(3, options.NodeCount),
        });
        var started = Stopwatch.GetTimestamp();
        Cluster.StartAll();
        await Cluster.WaitAllReadyAsync(options.ReadyTimeout, cancellationToken);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        checks.Add(new DemoCheck("cluster started", true, $"{options.NodeCount} nodes ready in {seconds:0.0} s"));
        output.WriteLine($"  cluster ready in {seconds:0.0} s: {string.Join("  ", Cluster.Nodes.Select(n => n.ApiUrl.ToString().TrimEnd('/')))}");
    }

    /// <summary>Creates the accounts, then funds every customer from its shard's bank.</summary>
    private async Task CreateAndFundAsync(DemoAccounts accounts, CancellationToken cancellationToken)
    {
        var newAccounts = accounts.NewAccounts();
        var created = await AnsweredAsync(() => client.CreateAccountsAsync(LiveNodes[0].Url, newAccounts, cancellationToken));
        RequireAll(created, "exists", "create accounts");
        var funding = new List<Transfer>();
        var fundingIds = 0UL;
        for (var shard = 0; shard < accounts.Banks.Length; shard++)
        {
            foreach (var customer in accounts.Customers[shard])
            {
                funding.Add(new Transfer
                {
                    Id = FundingId(accounts.Banks.Length, shard, ref fundingIds),
                    DebitAccountId = accounts.Banks[shard],
                    CreditAccountId = customer,
                    Amount = options.OpeningBalance,
                    Ledger = DemoAccounts.Ledger,
                    Code = DemoAccounts.Code,
                });
            }
        }

        var funded = await AnsweredAsync(() => client.CreateTransfersAsync(LiveNodes[0].Url, funding.ToArray(), cancellationToken));
        RequireAll(funded, "exists", "fund accounts");
        output.WriteLine($"  {newAccounts.Length} accounts created, {funding.Count} customers funded with {options.OpeningBalance:N0} each");
    }

    /// <summary>The next funding transfer id whose home is <paramref name="shard"/> (the bank's), so funding stays on one shard.</summary>
    private static UInt128 FundingId(int shardCount, int shard, ref ulong counter)
    {
        while (true)
        {
            var id = new UInt128(ulong.MaxValue - 1, ++counter);
            if (RaftLedger.Common.Placement.ShardRouter.ShardOf(id, shardCount) == shard)
            {
                return id;
            }
        }
    }

    private static void RequireAll(CreateResult[] results, string alsoFine, string what)
    {
        var bad = results.FirstOrDefault(r => !r.IsCreated && r.Status != alsoFine);
        if (bad.Status is not null)
        {
            throw new DemoException($"{what}: event {bad.Index} answered '{bad.Status}'.");
        }
    }

    /// <summary>Retries a setup call (same request, so idempotent) until the cluster answers 200.</summary>
    private async Task<CreateResult[]> AnsweredAsync(Func<Task<HttpAnswer<CreateResult[]>>> call)
    {
        var deadline = DateTime.UtcNow + options.FailoverTimeout;
        while (true)
        {
            string problem;
            try
            {
                var answer = await call();
                if (answer.IsOk)
                {
                    return answer.Value!;
                }

                problem = $"{(int)answer.StatusCode} {answer.Problem}";
            }
            catch (HttpRequestException exception)
            {
                problem = exception.Message;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new DemoException($"the cluster did not accept a setup request: {problem}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (cluster is not null)
        {
            await cluster.StopAllAsync();
            await cluster.DisposeAsync();
        }

        client.Dispose();
        if (!options.KeepData && Directory.Exists(dataRoot))
        {
            Directory.Delete(dataRoot, recursive: true);
        }
        else if (options.KeepData)
        {
            output.WriteLine($"Data and node logs kept in {dataRoot}");
        }
    }

    private static string Number(double value) => value.ToString("N0", CultureInfo.InvariantCulture);
}

/// <summary>The demo cannot go on (the message says why).</summary>
public sealed class DemoException(string message) : Exception(message);
