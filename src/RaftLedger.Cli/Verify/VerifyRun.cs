using System.Diagnostics;
using RaftLedger.Cli.Client;
using RaftLedger.Cli.Demo;
using RaftLedger.Cli.Processes;
using RaftLedger.Cli.Verify.Proxy;
using RaftLedger.Ledger;
using RaftLedger.Node.Api;

namespace RaftLedger.Cli.Verify;

/// <summary>
/// <c>raftledger verify</c>: a local cluster whose nodes talk through a fault-injecting proxy mesh, the bank
/// workload, the seeded nemesis, a final heal and recovery, then the checker on the history and final state.
/// Exit code 0 only with zero violations.
/// </summary>
public sealed partial class VerifyRun : IAsyncDisposable
{
    /// <summary>Environment variable the node reads for the test-only broken build (RaftLedger.Node Host/UnsafeTestFaults).</summary>
    public const string UnsafeFaultVariable = "RAFTLEDGER_UNSAFE_TEST_FAULT";

    /// <summary>Environment variable that turns the node's WAL synced mark on, for the power-cut fault (Host/UnsafeTestFaults).</summary>
    public const string SyncedMarkVariable = "RAFTLEDGER_TEST_SYNCED_MARK";

    /// <summary>The broken build whose synced mark lags (every node runs it): <c>synced-mark-lag:N</c>.</summary>
    private const string SyncedMarkLagPrefix = "synced-mark-lag:";

    private readonly VerifyOptions options;
    private readonly TextWriter output;
    private readonly LedgerHttpClient client;
    private readonly string dataRoot;
    private readonly HistoryRecorder history;
    private LocalCluster? cluster;
    private ProxyMesh? mesh;
    private bool keep;

    // The outcome of WaitCrossShardFinishedAsync: one of them is set once it ran.
    private string? crossShardSettled;
    private string? crossShardLeft;

    public VerifyRun(VerifyOptions options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        this.output = output;
        client = new LedgerHttpClient(options.RequestTimeout);
        dataRoot = Path.Combine(Path.GetTempPath(), $"raftledger-verify-{Environment.ProcessId}-{Guid.NewGuid():N}"[..42]);
        history = new HistoryRecorder(options.ResolvedHistoryPath);
        keep = options.KeepData;
    }

    /// <summary>The checker's report, once the run has finished.</summary>
    public CheckerReport? Report { get; private set; }

    private IReadOnlyList<(ulong Id, Uri Url)> Nodes => cluster!.Nodes.Select(n => (n.Id, n.ApiUrl)).ToList();

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        output.WriteLine($"RaftLedger verify: seed {options.Seed}, {options.NodeCount} nodes, {options.ShardCount} shards, {options.Duration.TotalSeconds:0} s of faults, " +
            $"{(options.CrossShard ? "cross-shard" : "same-shard")} pairs; data in {dataRoot}");
        if (options.UnsafeTestFault is { } fault)
        {
            output.WriteLine($"  UNSAFE TEST BUILD: {(BreaksEveryNode(fault) ? "every node runs" : "node 1 runs")} with {UnsafeFaultVariable}={fault}; violations are expected.");
        }

        VerifySummary summary;
        try
        {
            var accounts = await StartAndSetUpAsync(cancellationToken);
            var workload = new BankWorkload(client, Nodes, accounts, options, history);
            await workload.FundAsync(cancellationToken);
            var nemesis = new Nemesis(cluster!, mesh!, new ClusterProbe(client), client, history, options, output);
            await RunPhasesAsync(workload, nemesis, cancellationToken);
            var input = await FinalStateAsync(accounts, cancellationToken);
            Report = WithLiveness(Checker.Check(input), nemesis, workload);
            summary = new VerifySummary(history, Report, nemesis, workload, Stopwatch.GetElapsedTime(started));
        }
        catch (Exception exception) when (exception is VerifyException or LocalClusterException or TimeoutException or HttpRequestException)
        {
            history.Flush();
            Report = new CheckerReport([new Violation("verify ran to the end", exception.Message)], new Dictionary<string, string>());
            summary = new VerifySummary(history, Report, null, null, Stopwatch.GetElapsedTime(started));
        }

        history.Flush();
        summary.Print(output);
        output.WriteLine($"History: {options.ResolvedHistoryPath}");
        if (!Report.Ok)
        {
            keep = true;
            output.WriteLine($"VIOLATIONS FOUND (seed {options.Seed}). Rerun the same schedule with:");
            output.WriteLine($"  {options.RerunCommand()}");
            PrintLogTails();
            return 1;
        }

        output.WriteLine("No violations.");
        return 0;
    }

    /// <summary>Proxies first (their ports go into every node's --peers), then the nodes, then the accounts.</summary>
    private async Task<DemoAccounts> StartAndSetUpAsync(CancellationToken cancellationToken)
    {
        cluster = LocalCluster.Create(new LocalClusterOptions
        {
            DataRoot = dataRoot,
            NodeCount = options.NodeCount,
            ShardCount = options.ShardCount,
            Replication = Math.Min(3, options.NodeCount),
        });
        mesh = new ProxyMesh(cluster.Nodes.ToDictionary(n => n.Id, n => n.Peer));
        cluster.PeerRoute = mesh.Route;
        foreach (var node in cluster.Nodes)
        {
            if (options.Faults.Contains(FaultKind.PowerCut))
            {
                cluster.SetNodeEnvironment(node.Id, SyncedMarkVariable, "on");
            }

            if (options.UnsafeTestFault is { } fault && (node.Id == 1 || BreaksEveryNode(fault)))
            {
                cluster.SetNodeEnvironment(node.Id, UnsafeFaultVariable, fault);
            }
        }

        cluster.StartAll();
        await cluster.WaitAllReadyAsync(options.ReadyTimeout, cancellationToken);
        var perShard = Math.Max(2, (options.AccountCount + options.ShardCount - 1) / options.ShardCount);
        var accounts = DemoAccounts.Create(options.ShardCount, perShard, new Random(options.Seed));
        var deadline = DateTime.UtcNow + options.ReadyTimeout;
        while (true)
        {
            var answer = await TryAsync(() => client.CreateAccountsAsync(Nodes[0].Url, accounts.NewAccounts(), cancellationToken));
            if (answer is { IsOk: true } ok && ok.Value!.All(r => r.IsCreated || r.Status == "exists"))
            {
                break;
            }

            if (answer is { IsOk: true } refused || DateTime.UtcNow > deadline)
            {
                throw new VerifyException($"the cluster did not create the accounts: {(answer is { } a ? $"{(int)a.StatusCode} {a.Problem}" : "no answer")}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }

        output.WriteLine($"  cluster ready; {accounts.All.Count()} accounts ({accounts.Customers.Sum(c => c.Length)} guarded, {accounts.Banks.Length} operators), funding {options.OpeningBalance} each");
        return accounts;
    }

    /// <summary>A lagging synced mark breaks what a power cut keeps, which hits every node at once.</summary>
    private static bool BreaksEveryNode(string fault) => fault.StartsWith(SyncedMarkLagPrefix, StringComparison.Ordinal);

    private static async Task<HttpAnswer<T>?> TryAsync<T>(Func<Task<HttpAnswer<T>>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>Workload throughout; the nemesis for the duration; final heal; a recovery tail; then the clients stop.</summary>
    private async Task RunPhasesAsync(BankWorkload workload, Nemesis nemesis, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var clients = workload.RunAsync(stop.Token, abort.Token);
        try
        {
            var until = DateTime.UtcNow + options.Duration;
            await Task.Delay(TimeSpan.FromSeconds(Math.Min(3, options.Duration.TotalSeconds / 4)), cancellationToken);
            await nemesis.RunAsync(FaultSchedule.Plan(options.Seed, options.Faults), FaultSchedule.Mandatory(options.Faults), until, cancellationToken);
            var rest = until - DateTime.UtcNow;
            if (rest > TimeSpan.Zero)
            {
                await Task.Delay(rest, cancellationToken);
            }

            await nemesis.HealEverythingAsync(cancellationToken);
            RecoveryStartMicros = history.NowMicros;
            await Task.Delay(options.RecoveryTail, cancellationToken);
            await WaitWritableAsync(workload, cancellationToken);
        }
        finally
        {
            await stop.CancelAsync();
            // Operations in flight finish their current attempt; a request timeout bounds each.
            abort.CancelAfter(options.RequestTimeout + TimeSpan.FromSeconds(2));
            await clients;
        }
    }

    /// <summary>
    /// Keeps the workload running after the final heal until every shard has acknowledged a write sent after it,
    /// bounded by <see cref="VerifyOptions.RecoveryTimeout"/> (the liveness check reports a shard that never did).
    /// </summary>
    private async Task WaitWritableAsync(BankWorkload workload, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + options.RecoveryTimeout;
        while (SilentShards(workload).Count > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }

        RecoveredMicros = history.NowMicros;
    }

    /// <summary>Shards with no acknowledged write sent after the final heal.</summary>
    private List<int> SilentShards(BankWorkload workload)
    {
        var answered = history.Operations
            .Where(o => o.Kind == OpKind.Transfers && o.Outcome == OpOutcome.Ok && o.InvokeMicros >= RecoveryStartMicros)
            .Select(workload.ShardOf).ToHashSet();
        return Enumerable.Range(0, options.ShardCount).Where(s => !answered.Contains(s)).ToList();
    }

    /// <summary>When every shard had answered a write after the final heal, or the wait gave up (history microseconds).</summary>
    public long RecoveredMicros { get; private set; }

    /// <summary>When the final heal completed (history microseconds).</summary>
    public long RecoveryStartMicros { get; private set; } = long.MaxValue;

    /// <summary>
    /// Adds the liveness checks: the cluster was ready again after every fault, and after the final heal every
    /// shard answered a write. (A cluster that stays down never loses data, but it is broken too.)
    /// </summary>
    private CheckerReport WithLiveness(CheckerReport report, Nemesis nemesis, BankWorkload workload)
    {
        var violations = report.Violations.ToList();
        var passed = new Dictionary<string, string>(report.Passed);
        const string Recovered = "cluster ready after every fault";
        if (nemesis.RecoveryProblems.Count == 0)
        {
            passed[Recovered] = $"{nemesis.Injected.Values.Sum()} faults, each followed by every node ready within {options.ReadyTimeout.TotalSeconds:0} s";
        }
        else
        {
            violations.AddRange(nemesis.RecoveryProblems.Select(p => new Violation(Recovered, p)));
        }

        const string Writes = "every shard writable after the final heal";
        var silent = SilentShards(workload);
        var seconds = (RecoveredMicros - RecoveryStartMicros) / 1e6;
        if (silent.Count == 0)
        {
            passed[Writes] = $"all {options.ShardCount} shards acknowledged a write sent after the final heal, within {seconds:0.0} s of it";
        }
        else
        {
            violations.Add(new Violation(Writes, $"shard(s) {string.Join(", ", silent)} acknowledged no write sent in the {seconds:0} s after the final heal"));
        }

        const string Settled = "cross-shard work finished after the clients stopped";
        if (crossShardLeft is not null)
        {
            violations.Add(new Violation(Settled, crossShardLeft));
        }
        else if (crossShardSettled is not null)
        {
            passed[Settled] = crossShardSettled;
        }

        return report with { Violations = violations, Passed = passed };
    }

    /// <summary>Reads back every account and every transfer the history sent, and every replica's fingerprint.</summary>
    private async Task<CheckerInput> FinalStateAsync(DemoAccounts accounts, CancellationToken cancellationToken)
    {
        await WaitCrossShardFinishedAsync(cancellationToken);
        output.WriteLine("  reading the final state ...");
        var converged = await new ClusterProbe(client).ConvergedAsync(Nodes, Math.Min(3, options.NodeCount), options.ConvergeTimeout, cancellationToken);
        var ids = history.Operations.SelectMany(o => o.Transfers).Select(t => t.Id).ToArray();
        var transfers = new List<Transfer>();
        foreach (var chunk in ids.Chunk(ApiLimits.EventsPerBatchMax))
        {
            transfers.AddRange(await FinalReadAsync(() => client.LookupTransfersAsync(Nodes[0].Url, chunk, cancellationToken), "transfers"));
        }

        await WaitTimedPendingsReleasedAsync(accounts, transfers, cancellationToken);
        var finalAccounts = await FinalReadAsync(() => client.LookupAccountsAsync(Nodes[0].Url, accounts.All.ToArray(), cancellationToken), "accounts");
        var accountTimestamps = new Dictionary<UInt128, IReadOnlyDictionary<UInt128, ulong>>();
        foreach (var account in accounts.All)
        {
            accountTimestamps[account] = await AccountTimestampsAsync(account, cancellationToken);
        }

        return new CheckerInput
        {
            AccountTimestamps = accountTimestamps,
            Operations = history.Operations,
            Accounts = accounts.NewAccounts(),
            FinalAccounts = finalAccounts,
            FinalTransfers = transfers,
            Replicas = converged.Views.Select(v => new ReplicaFinal(v.Replica.ShardId, v.NodeId, v.Replica.AppliedIndex, v.Replica.Fingerprint)).ToList(),
            ReplicasConverged = converged.Converged,
            Replication = Math.Min(3, options.NodeCount),
            ShardCount = options.ShardCount,
        };
    }

    /// <summary>
    /// Waits until every replica of every shard reports no unfinished cross-shard work (coordinator records, prepared
    /// legs, transactions its leader coordinates): transfers whose clients gave up when they stopped may still be in
    /// flight, and their reservations must be resolved (committed or released) before the final state is compared
    /// with the history. Bounded by <see cref="VerifyOptions.CrossShardSettleTimeout"/>; what is left then is reported.
    /// </summary>
    private async Task WaitCrossShardFinishedAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var deadline = DateTime.UtcNow + options.CrossShardSettleTimeout;
        var expected = options.ShardCount * Math.Min(3, options.NodeCount);
        var probe = new ClusterProbe(client);
        while (true)
        {
            var views = await probe.ReplicasAsync(Nodes, cancellationToken);
            var left = views.Where(v => v.Replica.CrossShardUnfinished > 0).ToList();
            if (left.Count == 0 && views.Count >= expected)
            {
                crossShardSettled = $"every replica of the {options.ShardCount} shards reports no unfinished cross-shard work, " +
                    $"{Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s after the clients stopped";
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                var detail = left.Count == 0
                    ? $"only {views.Count} of {expected} replicas answered"
                    : string.Join("; ", left.Select(v => $"shard {v.Replica.ShardId} on node {v.NodeId}: {v.Replica.CrossShardUnfinished}"));
                crossShardLeft = $"{options.CrossShardSettleTimeout.TotalSeconds:0} s after the clients stopped, cross-shard work is still unfinished " +
                    $"(coordinator records, prepared legs, coordinated transactions): {detail}";
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }
    }

    /// <summary>The account's transfers as its own shard stores them (copies of cross-shard legs carry that shard's timestamps), paged.</summary>
    private async Task<IReadOnlyDictionary<UInt128, ulong>> AccountTimestampsAsync(UInt128 account, CancellationToken cancellationToken)
    {
        var timestamps = new Dictionary<UInt128, ulong>();
        var from = 1UL;
        while (true)
        {
            var page = await FinalReadAsync(() => client.GetAccountTransfersAsync(Nodes[0].Url, account, from, LedgerLimits.QueryResultsMax, cancellationToken), "account transfers");
            foreach (var transfer in page)
            {
                timestamps[transfer.Id] = transfer.Timestamp;
                from = Math.Max(from, transfer.Timestamp + 1);
            }

            if (page.Length < LedgerLimits.QueryResultsMax)
            {
                return timestamps;
            }
        }
    }

    /// <summary>A final read, retried on every node until answered (the cluster has healed, so it should be).</summary>
    private async Task<T> FinalReadAsync<T>(Func<Task<HttpAnswer<T>>> call, string what)
    {
        var deadline = DateTime.UtcNow + options.ReadyTimeout;
        while (true)
        {
            if (await TryAsync(call) is { IsOk: true } answer)
            {
                return answer.Value!;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new VerifyException($"the healed cluster did not answer the final lookup of {what} within {options.ReadyTimeout.TotalSeconds:0} s");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200));
        }
    }

    private void PrintLogTails()
    {
        if (cluster is null)
        {
            return;
        }

        foreach (var node in cluster.Nodes)
        {
            output.WriteLine(cluster.LogTail(node.Id, 5));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (cluster is not null)
        {
            foreach (var node in cluster.Nodes)
            {
                cluster.Resume(node.Id);
            }

            await cluster.StopAllAsync();
            await cluster.DisposeAsync();
        }

        if (mesh is not null)
        {
            await mesh.DisposeAsync();
        }

        client.Dispose();
        history.Dispose();
        if (!keep && Directory.Exists(dataRoot))
        {
            Directory.Delete(dataRoot, recursive: true);
        }
        else if (keep)
        {
            output.WriteLine($"Data and node logs kept in {dataRoot}");
        }
    }
}
