using RaftLedger.Cli.Demo;
using RaftLedger.Ledger;
using RaftLedger.Node.Tests.Cluster;

namespace RaftLedger.Node.Tests.CrossShard;

/// <summary>
/// Two-phase transfers across shards through the REST API of real node processes (3 nodes, 4 shards): a pending
/// transfer reserves on both legs' shards and stays pending; its post (partial) or void, sent with an id homed on
/// another shard, is delegated to the pending transfer's home and finished on both legs; a second post/void loses
/// with TigerBeetle's status; a pending transfer with a timeout across shards is refused (no cross-shard expiry).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CrossShardTwoPhaseProcessTests
{
    private const int TestTimeoutMilliseconds = 240_000;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static Transfer Pending(UInt128 id, UInt128 debit, UInt128 credit, ulong amount) =>
        new() { Id = id, DebitAccountId = debit, CreditAccountId = credit, Amount = amount, Ledger = DemoAccounts.Ledger, Code = DemoAccounts.Code, Flags = TransferFlags.Pending };

    private static Transfer Resolve(UInt128 id, UInt128 pendingId, ulong amount, TransferFlags kind) =>
        new() { Id = id, PendingId = pendingId, Amount = amount, Flags = kind };

    internal static async Task<Dictionary<UInt128, Account>> LookupAsync(ClusterHarness harness, params UInt128[] ids)
    {
        var found = await harness.AnsweredAsync(() => harness.Client.LookupAccountsAsync(harness.Api(2), ids, Cancel));
        return found.ToDictionary(a => a.Id);
    }

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Pending_transfers_across_shards_are_posted_and_voided_through_their_home()
    {
        await using var harness = await ClusterHarness.StartAsync();
        var accounts = ClusterHarness.Accounts(seed: 17);
        await CrossShardProcessTests.FundAsync(harness, accounts);
        var c = accounts.Customers;
        UInt128 a = c[0][0], b = c[1][0], d = c[0][1], e = c[2][1];
        var before = await CrossShardProcessTests.QuietAccountsAsync(harness, [a, b, d, e]);

        // Pending transfers whose legs are on two shards and whose homes are a third shard (or a leg's).
        var toPost = Pending(CrossShardProcessTests.IdOnShard(2, 30_000), a, b, 40);
        var toVoid = Pending(CrossShardProcessTests.IdOnShard(0, 31_000), d, e, 30);
        await harness.AssertCreatesAsync([toPost], [1], ["created"]);
        await harness.AssertCreatesAsync([toVoid], [2], ["created"]);

        // Answered only once both legs hold the reservation: a read now shows it pending on both shards.
        var reserved = await LookupAsync(harness, a, b, d, e);
        Assert.Equal(((UInt128)40, (UInt128)40), (reserved[a].DebitsPending, reserved[b].CreditsPending));
        Assert.Equal(((UInt128)30, (UInt128)30), (reserved[d].DebitsPending, reserved[e].CreditsPending));

        // A partial post whose id lives on shard 3 (delegated to shard 2), then a second post/void that loses.
        var post = Resolve(CrossShardProcessTests.IdOnShard(3, 33_000), toPost.Id, 25, TransferFlags.PostPendingTransfer);
        await harness.AssertCreatesAsync([post], [1], ["created"]);
        var again = Resolve(CrossShardProcessTests.IdOnShard(2, 34_000), toPost.Id, 0, TransferFlags.VoidPendingTransfer);
        await harness.AssertCreatesAsync([again], [2], ["pending_transfer_already_posted"]);
        await harness.AssertCreatesAsync([post], [3], ["exists"]);

        // A void whose id lives on shard 1 (the pending transfer's home is shard 0), then a post that loses.
        var @void = Resolve(CrossShardProcessTests.IdOnShard(1, 35_000), toVoid.Id, 0, TransferFlags.VoidPendingTransfer);
        await harness.AssertCreatesAsync([@void], [3], ["created"]);
        var late = Resolve(CrossShardProcessTests.IdOnShard(0, 36_000), toVoid.Id, 0, TransferFlags.PostPendingTransfer);
        await harness.AssertCreatesAsync([late], [1], ["pending_transfer_already_voided"]);
        var unknown = Resolve(CrossShardProcessTests.IdOnShard(2, 37_000), CrossShardProcessTests.IdOnShard(1, 38_000), 0, TransferFlags.PostPendingTransfer);
        await harness.AssertCreatesAsync([unknown], [2], ["pending_transfer_not_found"]);

        var after = await CrossShardProcessTests.QuietAccountsAsync(harness, [a, b, d, e]);
        Assert.Equal(before[a].DebitsPosted + 25, after[a].DebitsPosted);
        Assert.Equal(before[b].CreditsPosted + 25, after[b].CreditsPosted);
        Assert.Equal(before[d].DebitsPosted, after[d].DebitsPosted);
        Assert.Equal(before[e].CreditsPosted, after[e].CreditsPosted);

        // The post is stored resolved (the pending transfer's accounts, the amount posted) and listed on both legs.
        var found = await harness.AnsweredAsync(() => harness.Client.LookupTransfersAsync(harness.Api(1), [post.Id, @void.Id, again.Id], Cancel));
        Assert.Equal([post.Id, @void.Id], found.Select(t => t.Id));
        Assert.Equal((a, b, (UInt128)25), (found[0].DebitAccountId, found[0].CreditAccountId, found[0].Amount));
        Assert.Contains(post.Id, (await CrossShardProcessTests.AccountTransfersAsync(harness, a)).Select(t => t.Id));
        Assert.Contains(post.Id, (await CrossShardProcessTests.AccountTransfersAsync(harness, b)).Select(t => t.Id));
    }
}
