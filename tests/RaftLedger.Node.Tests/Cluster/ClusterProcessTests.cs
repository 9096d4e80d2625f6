using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Grpc.Net.Client;
using RaftLedger.Cli.Client;
using RaftLedger.Cli.Demo;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Node.Api;
using Wire = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Node.Tests.Cluster;

/// <summary>
/// Real node processes on loopback: endpoints end to end, a killed leader, a restarted node, and
/// every node killed at once with SIGKILL. Each test runs its own 3-node cluster.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterProcessTests
{
    private const int TestTimeoutMilliseconds = 240_000;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Every_endpoint_answers_end_to_end_on_any_node()
    {
        await using var harness = await ClusterHarness.StartAsync();
        var accounts = ClusterHarness.Accounts(seed: 1);
        Assert.Equal(0, ShardRouter.ShardOf(accounts.Customers[0][0], ClusterHarness.ShardCount));
        await harness.CreateAccountsAsync([.. accounts.NewAccounts()]);
        var funding = ClusterHarness.Funding(accounts, 0, firstId: 100);
        await harness.AssertAllCreatedAsync(funding, [2]);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };

        // Reads on another node than the writes: any node answers any request.
        var account = await GetJsonAsync(http, harness.Api(3), $"/v1/accounts/{accounts.Customers[0][0]}");
        Assert.Equal("1000000", account.GetProperty("credits_posted").GetString());
        var transfer = await GetJsonAsync(http, harness.Api(3), $"/v1/transfers/{funding[0].Id}");
        Assert.Equal(accounts.Banks[0].ToString(), transfer.GetProperty("debit_account_id").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(http, harness.Api(2), "/v1/transfers/99")).Status);
        var looked = await harness.AnsweredAsync(() => harness.Client.LookupTransfersAsync(harness.Api(2), [funding[1].Id, 99, funding[0].Id], Cancel));
        Assert.Equal([funding[1].Id, funding[0].Id], looked.Select(t => t.Id));
        var found = await harness.AnsweredAsync(() => harness.Client.LookupAccountsAsync(harness.Api(1), [accounts.Banks[1], accounts.Banks[0]], Cancel));
        Assert.Equal([accounts.Banks[1], accounts.Banks[0]], found.Select(a => a.Id));
        var bankTransfers = await GetJsonAsync(http, harness.Api(1), $"/v1/accounts/{accounts.Banks[0]}/transfers?reversed=true");
        Assert.Equal(funding.Length, bankTransfers.GetProperty("transfers").GetArrayLength());

        await CheckHistoryAndCrossShardAsync(harness, http, accounts);
        await CheckErrorsAsync(harness, http);
        await CheckClusterAndOpsEndpointsAsync(harness, http);
        await CheckGrpcAsync(harness, accounts);

        // `raftledger node` turns inline socket completions on for itself when the environment does not set them.
        foreach (var (id, _) in harness.Nodes)
        {
            var log = await File.ReadAllTextAsync(Path.Combine(harness.Cluster.Options.DataRoot, $"n{id}.log"), Cancel);
            Assert.Contains("socket completions inline", log, StringComparison.Ordinal);
        }
    }

    private static async Task CheckHistoryAndCrossShardAsync(ClusterHarness harness, HttpClient http, DemoAccounts accounts)
    {
        // A history account on shard 0 gets a balance row per transfer.
        var historyId = FindIdOnShard(0, start: 5_000_000);
        await harness.CreateAccountsAsync([new Account { Id = historyId, Ledger = 1, Code = 1, Flags = AccountFlags.History }]);
        var credit = new Transfer { Id = 200, DebitAccountId = accounts.Banks[0], CreditAccountId = historyId, Amount = 5, Ledger = 1, Code = 1 };
        await harness.AssertAllCreatedAsync([credit], [3]);
        var balances = await GetJsonAsync(http, harness.Api(2), $"/v1/accounts/{historyId}/balances");
        Assert.Equal("5", Assert.Single(balances.GetProperty("balances").EnumerateArray()).GetProperty("credits_posted").GetString());

        var crossShard = new Transfer { Id = 201, DebitAccountId = accounts.Customers[0][0], CreditAccountId = accounts.Customers[1][0], Amount = 1, Ledger = 1, Code = 1 };
        await harness.AssertAllCreatedAsync([crossShard], [1]);
    }

    private static async Task CheckErrorsAsync(ClusterHarness harness, HttpClient http)
    {
        using var malformed = new StringContent("""{"transfers":[{"id":1}]}""", Encoding.UTF8, "application/json");
        var bad = await http.PostAsync(new Uri(harness.Api(1), "/v1/transfers"), malformed, Cancel);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("application/problem+json", bad.Content.Headers.ContentType?.MediaType);
        var ids = string.Join(',', Enumerable.Range(1, ApiLimits.EventsPerBatchMax + 1).Select(i => $"\"{i}\""));
        using var tooMany = new StringContent($"{{\"ids\":[{ids}]}}", Encoding.UTF8, "application/json");
        var large = await http.PostAsync(new Uri(harness.Api(2), "/v1/accounts/lookup"), tooMany, Cancel);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
    }

    private static async Task CheckClusterAndOpsEndpointsAsync(ClusterHarness harness, HttpClient http)
    {
        var cluster = await harness.Client.GetClusterAsync(harness.Api(2), Cancel);
        Assert.Equal(new ulong[] { 1, 2, 3 }, cluster.Value!.Nodes.Select(n => n.Id).Order());
        Assert.All(cluster.Value.Nodes, n => Assert.True(n.Up, $"node {n.Id} up"));
        Assert.Equal(ClusterHarness.ShardCount, cluster.Value.Shards.Count);
        Assert.All(cluster.Value.Shards, s => Assert.Equal(3, s.Replicas.Count));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(harness.Api(3), "/healthz"), Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(harness.Api(3), "/readyz"), Cancel)).StatusCode);
        var metrics = await http.GetStringAsync(new Uri(harness.Api(2), "/metrics"), Cancel);
        Assert.Contains("raftledger_api_events_total", metrics, StringComparison.Ordinal);
        CheckNodeMetrics(metrics, cluster.Value.Shards.Count(s => s.Replicas.Contains(2ul)));
        var dashboard = await http.GetAsync(new Uri(harness.Api(1), "/dashboard"), Cancel);
        Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode);
        Assert.Equal("text/html", dashboard.Content.Headers.ContentType?.MediaType);
        var node = await harness.Client.GetNodeAsync(harness.Api(1), Cancel);
        Assert.Equal(ClusterHarness.ShardCount, node.Value!.Replicas.Count);
    }

    /// <summary>Node 2's Raft metrics: rounds, fsyncs and applies counted, and one applied-index series per shard it hosts.</summary>
    private static void CheckNodeMetrics(string metrics, int hostedShards)
    {
        Assert.True(MetricValue(metrics, "raftledger_scheduler_rounds_total{node=\"2\"}") > 0, "rounds counted");
        Assert.True(MetricValue(metrics, "raftledger_log_persist_seconds_count{node=\"2\"}") > 0, "fsyncs timed");
        Assert.True(MetricValue(metrics, "raftledger_entries_applied_total{node=\"2\"}") > 0, "applies counted");
        var applied = metrics.Split('\n').Where(line => line.StartsWith("raftledger_shard_applied_index{node=\"2\",", StringComparison.Ordinal)).ToList();
        Assert.Equal(hostedShards, applied.Count);
        Assert.All(applied, line => Assert.True(double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture) > 0, line));
        var leaders = metrics.Split('\n').Where(line => line.StartsWith("raftledger_shard_is_leader{", StringComparison.Ordinal)).ToList();
        Assert.Equal(hostedShards, leaders.Count);
        foreach (var crossShard in new[] { "raftledger_crossshard_coordinating{", "raftledger_crossshard_prepared{", "raftledger_crossshard_expiries_tracked{" })
        {
            Assert.Equal(hostedShards, metrics.Split('\n').Count(line => line.StartsWith(crossShard, StringComparison.Ordinal)));
        }
    }

    /// <summary>The sum of every series of <paramref name="name"/> whose labels include <paramref name="label"/> (e.g. <c>shard="2"</c>).</summary>
    internal static double MetricSum(string metrics, string name, string label) =>
        metrics.Split('\n')
            .Where(line => line.StartsWith(name + "{", StringComparison.Ordinal) && line[..line.IndexOf('}', StringComparison.Ordinal)].Contains(label, StringComparison.Ordinal))
            .Sum(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));

    private static double MetricValue(string metrics, string series)
    {
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        Assert.True(line is not null, $"{series} missing from /metrics");
        return double.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private static async Task CheckGrpcAsync(ClusterHarness harness, DemoAccounts accounts)
    {
        using var channel = GrpcChannel.ForAddress(harness.Cluster.Node(3).GrpcUrl);
        var client = new Wire.Ledger.LedgerClient(channel);
        var bank = accounts.Banks[0];
        var reply = await client.LookupAccountsAsync(
            new Wire.LookupRequest { Ids = { new Wire.Id { Lo = GrpcConvert.Lo(bank), Hi = GrpcConvert.Hi(bank) } } }, cancellationToken: Cancel);
        Assert.Equal(bank, new UInt128(Assert.Single(reply.Accounts_).IdHi, reply.Accounts_[0].IdLo));
        Assert.True(reply.Accounts_[0].DebitsPostedLo >= 1_000_000);
    }

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Writes_resume_after_the_leader_is_killed_and_the_restarted_node_catches_up()
    {
        await using var harness = await ClusterHarness.StartAsync();
        var accounts = ClusterHarness.Accounts(seed: 2);
        await harness.CreateAccountsAsync(accounts.NewAccounts());
        await harness.AssertAllCreatedAsync(ClusterHarness.Funding(accounts, 0, firstId: 100), [1, 2, 3]);
        var leader = await harness.Probe.LeaderAsync(0, harness.Nodes, TimeSpan.FromSeconds(30), Cancel);
        var survivors = harness.Nodes.Select(n => n.Id).Where(id => id != leader).ToArray();

        await harness.Cluster.KillAsync(leader);
        var afterKill = ClusterHarness.Payments(accounts, 0, 50, firstId: 1000);
        await harness.AssertAllCreatedAsync(afterKill, survivors);
        harness.Cluster.Start(leader);
        await harness.Cluster.WaitReadyAsync([leader], ClusterHarness.ReadyTimeout, Cancel);
        await harness.Probe.CaughtUpAsync(leader, harness.Nodes, ClusterHarness.WriteTimeout, Cancel);

        // The restarted node serves the writes it missed, and every replica holds the same ledger.
        var seen = await harness.AnsweredAsync(() => harness.Client.LookupTransfersAsync(harness.Api(leader), afterKill.Select(t => t.Id).ToArray(), Cancel));
        Assert.Equal(afterKill.Length, seen.Length);
        var (converged, views) = await harness.Probe.ConvergedAsync(harness.Nodes, 3, ClusterHarness.WriteTimeout, Cancel);
        Assert.True(converged, $"replicas did not converge. {harness.LogHint}");
        Assert.All(views.GroupBy(v => v.Replica.ShardId), shard => Assert.Single(shard.Select(v => v.Replica.Fingerprint).Distinct()));
    }

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task A_node_whose_data_folder_was_wiped_rejoins_and_catches_up_under_unchanged_leaders()
    {
        await using var harness = await ClusterHarness.StartAsync();
        var accounts = ClusterHarness.Accounts(seed: 4);
        await harness.CreateAccountsAsync(accounts.NewAccounts());
        await harness.AssertAllCreatedAsync(ClusterHarness.Funding(accounts, 0, firstId: 100), [1, 2, 3]);
        var payments = ClusterHarness.Payments(accounts, 0, 50, firstId: 1000);
        await harness.AssertAllCreatedAsync(payments, [1, 2, 3]);

        // Node 3's disk is replaced. The leaders of the shards it did not lead stay in office and remember that node 3
        // acknowledged their entries: only node 3 telling them it lost its state gets it caught up there.
        var node3 = harness.Cluster.Node(3);
        await harness.Cluster.KillAsync(3);
        Directory.Delete(node3.DataDirectory, recursive: true);
        harness.Cluster.Start(3, ["--rejoin"]);
        await harness.Cluster.WaitReadyAsync([3], ClusterHarness.ReadyTimeout, Cancel);
        await harness.Probe.CaughtUpAsync(3, harness.Nodes, ClusterHarness.WriteTimeout, Cancel);

        var seen = await harness.AnsweredAsync(() => harness.Client.LookupTransfersAsync(harness.Api(3), payments.Select(t => t.Id).ToArray(), Cancel));
        Assert.Equal(payments.Length, seen.Length);
        var (converged, views) = await harness.Probe.ConvergedAsync(harness.Nodes, 3, ClusterHarness.WriteTimeout, Cancel);
        Assert.True(converged, $"replicas did not converge. {harness.LogHint}");
        Assert.All(views.GroupBy(v => v.Replica.ShardId), shard => Assert.Single(shard.Select(v => v.Replica.Fingerprint).Distinct()));
        Assert.True(await MarkerGoneAsync(Path.Combine(node3.DataDirectory, "rejoining")), $"node 3 never finished rejoining. {harness.LogHint}");
    }

    /// <summary>Polls (bounded by the write timeout) until the file is gone: the node deletes it once every group caught up.</summary>
    private static async Task<bool> MarkerGoneAsync(string path)
    {
        var deadline = DateTime.UtcNow + ClusterHarness.WriteTimeout;
        while (File.Exists(path))
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), Cancel);
        }

        return true;
    }

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task A_write_through_a_survivor_just_after_the_leader_is_killed_is_created_without_a_504()
    {
        await using var harness = await ClusterHarness.StartAsync();
        var accounts = ClusterHarness.Accounts(seed: 3);
        await harness.CreateAccountsAsync(accounts.NewAccounts());
        var leader = await harness.Probe.LeaderAsync(0, harness.Nodes, TimeSpan.FromSeconds(30), Cancel);
        var entry = harness.Nodes.First(n => n.Id != leader);
        // Through the entry node, so it forwards to the leader and holds a pooled connection to it when it dies.
        await harness.AssertAllCreatedAsync(ClusterHarness.Funding(accounts, 0, firstId: 100), [entry.Id]);

        await harness.Cluster.KillAsync(leader);
        await LeaderSeenGoneAsync(harness, entry.Url, leader);

        // One request, no retry: the entry node must wait for the election, not answer 504 (outcome unknown).
        var payments = ClusterHarness.Payments(accounts, 0, 20, firstId: 1000);
        var answer = await harness.Client.CreateTransfersAsync(entry.Url, payments, Cancel);

        Assert.True(answer.IsOk, $"{(int)answer.StatusCode}: {answer.Problem}. {harness.LogHint}");
        Assert.All(answer.Value!, r => Assert.True(r.IsCreated, r.Status));
    }

    /// <summary>Waits (bounded) until <paramref name="entry"/> reports node <paramref name="gone"/> down (its peer connection closed).</summary>
    private static async Task LeaderSeenGoneAsync(ClusterHarness harness, Uri entry, ulong gone)
    {
        var deadline = DateTime.UtcNow + ClusterHarness.WriteTimeout;
        while (true)
        {
            var cluster = await harness.Client.GetClusterAsync(entry, Cancel);
            if (cluster.IsOk && !cluster.Value!.Nodes.Single(n => n.Id == gone).Up)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"node {gone} still up for the entry node. {harness.LogHint}");
            await Task.Delay(TimeSpan.FromMilliseconds(20), Cancel); // A poll interval, bounded by the deadline above.
        }
    }

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Killing_every_node_with_sigkill_and_restarting_loses_no_acknowledged_transfer()
    {
        await using var harness = await ClusterHarness.StartAsync();
        var accounts = ClusterHarness.Accounts(seed: 3);
        await harness.CreateAccountsAsync(accounts.NewAccounts());
        var acknowledged = new List<UInt128>();
        for (var shard = 0; shard < ClusterHarness.ShardCount; shard++)
        {
            var funding = ClusterHarness.Funding(accounts, shard, firstId: 100 + ((ulong)shard * 10));
            var payments = ClusterHarness.Payments(accounts, shard, 40, firstId: 10_000 + ((ulong)shard * 1000));
            foreach (var batch in new[] { funding, payments })
            {
                // Created, or (after an attempt that may have applied) exists: stored either way, so acknowledged.
                await harness.AssertAllCreatedAsync(batch, [(ulong)(shard % 3) + 1]);
                acknowledged.AddRange(batch.Select(t => t.Id));
            }
        }

        await harness.Cluster.KillAllAsync();
        harness.Cluster.StartAll();
        await harness.Cluster.WaitAllReadyAsync(ClusterHarness.ReadyTimeout, Cancel);

        var found = await harness.AnsweredAsync(() => harness.Client.LookupTransfersAsync(harness.Api(1), acknowledged.ToArray(), Cancel));
        Assert.Equal(ClusterHarness.ShardCount * (3 + 40), acknowledged.Count);
        Assert.True(acknowledged.Count == found.Length, $"{found.Length} of {acknowledged.Count} acknowledged transfers found after SIGKILL of every node. {harness.LogHint}");
        var all = await harness.AnsweredAsync(() => harness.Client.LookupAccountsAsync(harness.Api(2), accounts.All.ToArray(), Cancel));
        var debits = all.Aggregate(UInt128.Zero, (sum, a) => sum + a.DebitsPosted);
        var credits = all.Aggregate(UInt128.Zero, (sum, a) => sum + a.CreditsPosted);
        Assert.Equal(debits, credits);
        Assert.True(debits > 0);
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient http, Uri node, string path)
    {
        var (status, body) = await GetAsync(http, node, path);
        Assert.True(status == HttpStatusCode.OK, $"GET {path}: {(int)status} {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    /// <summary>GET with retries on 503/504 (what the contract tells clients to do), within the write timeout.</summary>
    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient http, Uri node, string path)
    {
        var deadline = DateTime.UtcNow + ClusterHarness.WriteTimeout;
        while (true)
        {
            var response = await http.GetAsync(new Uri(node, path), Cancel);
            var body = await response.Content.ReadAsStringAsync(Cancel);
            var retry = response.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;
            if (!retry || DateTime.UtcNow > deadline)
            {
                return (response.StatusCode, body);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), Cancel);
        }
    }

    private static UInt128 FindIdOnShard(int shard, ulong start)
    {
        var id = (UInt128)start;
        while (ShardRouter.ShardOf(id, ClusterHarness.ShardCount) != shard)
        {
            id++;
        }

        return id;
    }
}

/// <summary>Cluster tests run one at a time: each starts three node processes on a 2-core machine.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "cluster processes";
}
