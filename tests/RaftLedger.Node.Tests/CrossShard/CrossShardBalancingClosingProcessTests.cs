using RaftLedger.Cli.Demo;
using RaftLedger.Ledger;
using RaftLedger.Node.Tests.Cluster;

namespace RaftLedger.Node.Tests.CrossShard;

/// <summary>
/// Balancing and closing transfers across shards through the REST API of real node processes (3 nodes, 4 shards): a
/// balancing_debit homed on a third shard moves exactly the debit account's balance (stored with the clamped amount);
/// a pending closing_credit closes its account on its shard, later transfers to it are refused, and its void reopens it.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CrossShardBalancingClosingProcessTests
{
    private const int TestTimeoutMilliseconds = 240_000;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static Transfer Pay(UInt128 id, UInt128 debit, UInt128 credit, ulong amount, TransferFlags flags) =>
        new() { Id = id, DebitAccountId = debit, CreditAccountId = credit, Amount = amount, Ledger = DemoAccounts.Ledger, Code = DemoAccounts.Code, Flags = flags };

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Balancing_and_closing_transfers_across_shards_follow_tigerbeetles_semantics()
    {
        await using var harness = await ClusterHarness.StartAsync();
        var accounts = ClusterHarness.Accounts(seed: 29);
        await CrossShardProcessTests.FundAsync(harness, accounts);
        var c = accounts.Customers;
        UInt128 a = c[0][0], b = c[1][0], d = c[0][1], e = c[2][1];
        var before = await CrossShardProcessTests.QuietAccountsAsync(harness, [a, b, d, e]);
        var balance = before[a].CreditsPosted - before[a].DebitsPosted;
        Assert.True(balance > 0, "the customer was funded");

        // Balancing: far more than the balance is asked for; exactly the balance moves, and the record says so.
        var sweep = Pay(CrossShardProcessTests.IdOnShard(2, 50_000), a, b, 1_000_000_000, TransferFlags.BalancingDebit);
        await harness.AssertCreatesAsync([sweep], [1], ["created"]);
        await harness.AssertCreatesAsync([sweep], [2], ["exists"]);
        var stored = await harness.AnsweredAsync(() => harness.Client.LookupTransfersAsync(harness.Api(3), [sweep.Id], Cancel));
        Assert.Equal(balance, Assert.Single(stored).Amount);
        var swept = await CrossShardTwoPhaseProcessTests.LookupAsync(harness, a, b);
        Assert.Equal(swept[a].CreditsPosted, swept[a].DebitsPosted);
        Assert.Equal(before[b].CreditsPosted + balance, swept[b].CreditsPosted);

        // Closing: a pending closing_credit closes e; a transfer to e is refused; the void reopens it.
        var close = Pay(CrossShardProcessTests.IdOnShard(3, 51_000), d, e, 5, TransferFlags.Pending | TransferFlags.ClosingCredit);
        await harness.AssertCreatesAsync([close], [2], ["created"]);
        Assert.Equal(AccountFlags.Closed, (await CrossShardTwoPhaseProcessTests.LookupAsync(harness, e))[e].Flags & AccountFlags.Closed);
        var refused = Pay(CrossShardProcessTests.IdOnShard(1, 52_000), b, e, 1, TransferFlags.None);
        await harness.AssertCreatesAsync([refused], [3], ["credit_account_already_closed"]);
        var @void = new Transfer { Id = CrossShardProcessTests.IdOnShard(0, 53_000), PendingId = close.Id, Flags = TransferFlags.VoidPendingTransfer };
        await harness.AssertCreatesAsync([@void], [1], ["created"]);
        Assert.Equal(AccountFlags.None, (await CrossShardTwoPhaseProcessTests.LookupAsync(harness, e))[e].Flags & AccountFlags.Closed);
        var accepted = refused with { Id = CrossShardProcessTests.IdOnShard(1, 54_000) };
        await harness.AssertCreatesAsync([accepted], [3], ["created"]);
    }
}
