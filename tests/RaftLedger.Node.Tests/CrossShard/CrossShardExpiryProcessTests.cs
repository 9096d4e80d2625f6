using RaftLedger.Cli.Demo;
using RaftLedger.Ledger;
using RaftLedger.Node.Tests.Cluster;

namespace RaftLedger.Node.Tests.CrossShard;

/// <summary>
/// Expiry across shards through the REST API of real node processes (3 nodes, 4 shards): a pending transfer with a
/// timeout whose legs are on two shards, homed on a third, is expired by its home with cluster time; both legs are
/// released and a later post gets pending_transfer_expired.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CrossShardExpiryProcessTests
{
    private const int TestTimeoutMilliseconds = 240_000;

    private static readonly TimeSpan ReleaseTimeout = TimeSpan.FromSeconds(60);

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task A_pending_transfer_with_a_timeout_across_shards_expires_on_both_legs()
    {
        await using var harness = await ClusterHarness.StartAsync();
        var accounts = ClusterHarness.Accounts(seed: 23);
        await CrossShardProcessTests.FundAsync(harness, accounts);
        UInt128 a = accounts.Customers[0][0], b = accounts.Customers[1][0];
        var before = await CrossShardProcessTests.QuietAccountsAsync(harness, [a, b]);

        var timed = new Transfer
        {
            Id = CrossShardProcessTests.IdOnShard(2, 40_000),
            DebitAccountId = a,
            CreditAccountId = b,
            Amount = 9,
            Ledger = DemoAccounts.Ledger,
            Code = DemoAccounts.Code,
            Flags = TransferFlags.Pending,
            TimeoutSeconds = 2,
        };
        await harness.AssertCreatesAsync([timed], [1], ["created"]);
        var reserved = await CrossShardTwoPhaseProcessTests.LookupAsync(harness, a, b);
        Assert.Equal((before[a].DebitsPending + 9, before[b].CreditsPending + 9), (reserved[a].DebitsPending, reserved[b].CreditsPending));

        // Cluster time passes the timeout: the home (shard 2) expires it and both legs are released (bounded wait).
        var deadline = DateTime.UtcNow + ReleaseTimeout;
        var now = reserved;
        while (DateTime.UtcNow < deadline && (now[a].DebitsPending != before[a].DebitsPending || now[b].CreditsPending != before[b].CreditsPending))
        {
            await Task.Delay(200, Cancel);
            now = await CrossShardTwoPhaseProcessTests.LookupAsync(harness, a, b);
        }

        Assert.True(now[a].DebitsPending == before[a].DebitsPending && now[b].CreditsPending == before[b].CreditsPending,
            $"the expired reservation was not released within {ReleaseTimeout}. {harness.LogHint}");
        var post = new Transfer { Id = CrossShardProcessTests.IdOnShard(1, 41_000), PendingId = timed.Id, Flags = TransferFlags.PostPendingTransfer };
        await harness.AssertCreatesAsync([post], [3], ["pending_transfer_expired"]);
        var after = await CrossShardProcessTests.QuietAccountsAsync(harness, [a, b]);
        Assert.Equal((before[a].DebitsPosted, before[b].CreditsPosted), (after[a].DebitsPosted, after[b].CreditsPosted));

        // The home's leader counted the expiry transaction it started (operators watch this on /metrics).
        using var http = new HttpClient();
        var started = 0.0;
        foreach (var (_, url) in harness.Nodes)
        {
            var metrics = await http.GetStringAsync(new Uri(url, "/metrics"), Cancel);
            started += ClusterProcessTests.MetricSum(metrics, "raftledger_crossshard_expiries_started_total", "shard=\"2\"");
        }

        Assert.True(started >= 1, $"no expiry counted on shard 2's replicas ({started}). {harness.LogHint}");
    }
}
