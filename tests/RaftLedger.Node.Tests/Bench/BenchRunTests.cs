using Grpc.Net.Client;
using RaftLedger.Cli.Bench;
using RaftLedger.Node.Tests.Cluster;
using Wire = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Node.Tests.Bench;

/// <summary>One short real run of the bench (after a warm-up) against a local 3-node cluster, checked against the ledger.</summary>
[Collection(ClusterCollection.Name)]
public sealed class BenchRunTests
{
    private const int TestTimeoutMilliseconds = 240_000;

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Report_counts_match_the_transfers_found_in_the_ledger_afterwards()
    {
        var cancel = TestContext.Current.CancellationToken;
        await using var harness = await ClusterHarness.StartAsync();
        var options = new BenchOptions
        {
            Api = [.. harness.Cluster.Nodes.Select(node => new BenchNode(node.Id, node.GrpcUrl))],
            Accounts = 64,
            Transfers = 3_000,
            Batch = 50,
            Concurrency = 4,
            Zipf = 1.0,
            CrossShard = 0.2,
            TwoPhase = 0.3,
            Seed = 3,
            Warmup = TimeSpan.FromSeconds(1),
        };
        var output = new StringWriter();
        BenchReport report;
        await using (var run = new BenchRun(options, output))
        {
            report = await run.RunAsync(cancel);
        }

        var accounts = BenchAccounts.Create(options.Accounts, ClusterHarness.ShardCount, options.Seed);
        var inLedger = await CountTransfersDebitingAsync(harness, accounts.ByRank, cancel);
        var context = $"{report.ToText()}\n{output}\n{harness.LogHint}";

        // The warm-up's transfers are in the ledger too, and in no figure of the report but its own.
        Assert.Equal(3_000, report.Payments);
        Assert.True(report.WarmupCommitted > 0, context);
        Assert.Equal(inLedger, report.Committed + report.WarmupCommitted);
        Assert.Equal(report.Events, report.Committed + report.ErrorCount);
        Assert.True(report.Posts + report.Voids > 0, context);
        // Cross-shard payments are created like the others: no event of a quiet run fails.
        Assert.True(report.Errors.Count == 0, context);
        Assert.Equal(report.Committed, report.Latency.Count);
        Assert.InRange(report.RequestLatency.Count, 1, report.Requests);
    }

    /// <summary>Counts every transfer whose debit account is one of <paramref name="accountIds"/>, paging by timestamp.</summary>
    private static async Task<long> CountTransfersDebitingAsync(ClusterHarness harness, IEnumerable<UInt128> accountIds, CancellationToken cancel)
    {
        using var channel = GrpcChannel.ForAddress(harness.Cluster.Node(1).GrpcUrl);
        var client = new Wire.Ledger.LedgerClient(channel);
        long count = 0;
        foreach (var id in accountIds)
        {
            ulong after = 0;
            while (true)
            {
                var page = await client.GetAccountTransfersAsync(new Wire.AccountFilter
                {
                    AccountIdLo = (ulong)id,
                    AccountIdHi = (ulong)(id >> 64),
                    TimestampMin = after + 1,
                    Limit = 8189,
                    Flags = 1, // debits
                }, cancellationToken: cancel);
                count += page.Transfers_.Count;
                if (page.Transfers_.Count < 8189)
                {
                    break;
                }

                after = page.Transfers_[^1].Timestamp;
            }
        }

        return count;
    }
}
