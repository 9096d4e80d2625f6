using System.Collections.Concurrent;
using RaftLedger.Cli.Demo;
using RaftLedger.Ledger;
using RaftLedger.Node.Api;
using RaftLedger.Node.Tests.Cluster;

namespace RaftLedger.Node.Tests.CrossShard;

/// <summary>
/// A node is SIGKILLed in the middle of a stream of cross-shard payments and restarted. Clients retry unanswered
/// batches unchanged (same ids) on other nodes, as the API contract says. Afterwards: every acknowledged transfer
/// has its record at home and appears on both legs' accounts, every account's balance equals the sum of the
/// transfers its shard lists for it, and money is conserved with nothing left pending.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CrossShardKillTests
{
    private const int TestTimeoutMilliseconds = 300_000;
    private const int Workers = 4;
    private const int BatchSize = 8;
    private const int Seed = 23;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Every_acknowledged_cross_shard_transfer_survives_a_killed_node_on_both_legs()
    {
        await using var harness = await ClusterHarness.StartAsync();
        var accounts = ClusterHarness.Accounts(Seed);
        await harness.CreateAccountsAsync(accounts.NewAccounts());
        for (var shard = 0; shard < ClusterHarness.ShardCount; shard++)
        {
            await harness.AssertAllCreatedAsync(ClusterHarness.Funding(accounts, shard, firstId: 1_000 + (ulong)(shard * 100)), [1, 2, 3]);
        }

        var acknowledged = new ConcurrentDictionary<UInt128, Transfer>();
        var down = 0UL;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        var next = 100_000L;
        var workers = Enumerable.Range(0, Workers).Select(w => Task.Run(() => WorkerAsync(w))).ToArray();

        async Task WorkerAsync(int worker)
        {
            var random = new Random(Seed + worker);
            var cursor = worker;
            while (!stop.IsCancellationRequested)
            {
                var batch = Enumerable.Range(0, BatchSize).Select(_ => CrossShardPayment(accounts, random, (ulong)Interlocked.Increment(ref next))).ToArray();
                // Retried unchanged until answered: an unanswered batch may have been applied, the retry tells.
                while (!stop.IsCancellationRequested)
                {
                    var live = harness.Nodes.Where(n => n.Id != Volatile.Read(ref down)).ToArray();
                    var node = live[cursor++ % live.Length].Url;
                    try
                    {
                        var answer = await harness.Client.CreateTransfersAsync(node, batch, stop.Token);
                        if (answer.IsOk)
                        {
                            for (var i = 0; i < batch.Length; i++)
                            {
                                Assert.True(answer.Value![i].IsCreated || answer.Value[i].Status == "exists", $"{answer.Value[i].Status}. {harness.LogHint}");
                                acknowledged[batch[i].Id] = batch[i];
                            }

                            break;
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(50), CancellationToken.None);
                }
            }
        }

        await WaitForAsync(() => acknowledged.Count >= 200, "200 acknowledged transfers before the kill", harness);
        var victim = await harness.Probe.LeaderAsync(1, harness.Nodes, TimeSpan.FromSeconds(30), Cancel);
        Volatile.Write(ref down, victim);
        await harness.Cluster.KillAsync(victim);
        var beforeKill = acknowledged.Count;
        await WaitForAsync(() => acknowledged.Count >= beforeKill + 200, "200 more acknowledged transfers with a node down", harness);
        harness.Cluster.Start(victim);
        await harness.Cluster.WaitReadyAsync([victim], ClusterHarness.ReadyTimeout, Cancel);
        Volatile.Write(ref down, 0UL);
        var afterRestart = acknowledged.Count;
        await WaitForAsync(() => acknowledged.Count >= afterRestart + 100, "100 more acknowledged transfers after the restart", harness);
        await stop.CancelAsync();
        await Task.WhenAll(workers);

        await CheckAsync(harness, accounts, acknowledged);
    }

    /// <summary>A payment between customers of two different shards, with a home shard chosen at random.</summary>
    private static Transfer CrossShardPayment(DemoAccounts accounts, Random random, ulong id)
    {
        var from = random.Next(ClusterHarness.ShardCount);
        var to = (from + 1 + random.Next(ClusterHarness.ShardCount - 1)) % ClusterHarness.ShardCount;
        return new Transfer
        {
            Id = new UInt128((ulong)Seed, id),
            DebitAccountId = accounts.Customers[from][random.Next(accounts.Customers[from].Length)],
            CreditAccountId = accounts.Customers[to][random.Next(accounts.Customers[to].Length)],
            Amount = (ulong)random.Next(1, 10),
            Ledger = DemoAccounts.Ledger,
            Code = DemoAccounts.Code,
        };
    }

    private static async Task WaitForAsync(Func<bool> condition, string what, ClusterHarness harness)
    {
        var deadline = DateTime.UtcNow + ClusterHarness.WriteTimeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"no {what} within {ClusterHarness.WriteTimeout.TotalSeconds:0} s. {harness.LogHint}");
            await Task.Delay(TimeSpan.FromMilliseconds(100), Cancel);
        }
    }

    private static async Task CheckAsync(ClusterHarness harness, DemoAccounts accounts, ConcurrentDictionary<UInt128, Transfer> acknowledged)
    {
        var ids = acknowledged.Keys.ToArray();
        var found = new HashSet<UInt128>();
        foreach (var chunk in ids.Chunk(ApiLimits.EventsPerBatchMax))
        {
            found.UnionWith((await harness.AnsweredAsync(() => harness.Client.LookupTransfersAsync(harness.Api(1), chunk, Cancel))).Select(t => t.Id));
        }

        Assert.True(found.Count == ids.Length, $"{ids.Length - found.Count} of {ids.Length} acknowledged transfers missing at home. {harness.LogHint}");

        var all = accounts.All.ToArray();
        var balances = await CrossShardProcessTests.QuietAccountsAsync(harness, all);
        UInt128 debits = 0, credits = 0;
        var listed = new Dictionary<UInt128, HashSet<UInt128>>();
        foreach (var account in all)
        {
            var transfers = await CrossShardProcessTests.AccountTransfersAsync(harness, account);
            listed[account] = [.. transfers.Select(t => t.Id)];
            var sumDebits = transfers.Where(t => t.DebitAccountId == account).Aggregate(UInt128.Zero, (sum, t) => sum + t.Amount);
            var sumCredits = transfers.Where(t => t.CreditAccountId == account).Aggregate(UInt128.Zero, (sum, t) => sum + t.Amount);
            Assert.True(balances[account].DebitsPosted == sumDebits && balances[account].CreditsPosted == sumCredits,
                $"account {account}: balance {balances[account].DebitsPosted}/{balances[account].CreditsPosted} but its transfers sum to {sumDebits}/{sumCredits}. {harness.LogHint}");
            debits += balances[account].DebitsPosted;
            credits += balances[account].CreditsPosted;
        }

        Assert.Equal(debits, credits);
        var missingLegs = acknowledged.Values.Count(t => !listed[t.DebitAccountId].Contains(t.Id) || !listed[t.CreditAccountId].Contains(t.Id));
        Assert.True(missingLegs == 0, $"{missingLegs} acknowledged transfers missing a leg. {harness.LogHint}");
    }
}
