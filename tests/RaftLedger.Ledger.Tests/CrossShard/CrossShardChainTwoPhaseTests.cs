namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// Posts and voids inside cross-shard linked chains, coordinated by the chain's coordinator when it is the pending
/// transfer's home: all or nothing with the chain, TigerBeetle's per-event statuses, later legs see the post.
/// </summary>
public sealed class CrossShardChainTwoPhaseTests
{
    private static (CrossShardCluster Cluster, UInt128 A, UInt128 B) TwoShards(AccountFlags creditFlags = AccountFlags.None)
    {
        var cluster = new CrossShardCluster(2, seed: 9, CrossShardWorkload.Options);
        var a = CrossShardWorkload.IdWithHome(cluster, 0);
        var b = CrossShardWorkload.IdWithHome(cluster, 1);
        cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b, flags: creditFlags));
        cluster.Step();
        return (cluster, a, b);
    }

    private static CreateTransferResult[] RunAll(CrossShardCluster cluster, params Transfer[] events) => cluster.RunRequest(events, stepsMax: 5000);

    private static Account Lookup(CrossShardCluster cluster, UInt128 id) => cluster.LookupAccount(id);

    private static Transfer Linked(Transfer t)
    {
        t.Flags |= TransferFlags.Linked;
        return t;
    }

    [Fact]
    public void A_post_in_a_chain_coordinated_by_its_pending_transfers_home_commits_with_the_chain()
    {
        var (cluster, a, b) = TwoShards();
        var pending = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 70, TransferFlags.Pending);
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
        var plain = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 5);
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 1), pending.Id, 30); // its id lives on shard 1
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], RunAll(cluster, Linked(plain), post));
        Assert.Equal(PendingStatus.Posted, cluster.Shards[0].Store.GetPendingStatus(pending.Id));
        var debit = Lookup(cluster, a);
        var credit = Lookup(cluster, b);
        Assert.Equal((UInt128.Zero, (UInt128)35), (debit.DebitsPending, debit.DebitsPosted));
        Assert.Equal((UInt128.Zero, (UInt128)35), (credit.CreditsPending, credit.CreditsPosted));
        Assert.True(cluster.Shards[1].Ledger.TryLookupTransfer(post.Id, out _), "the post's id home stores it");

        // The same pending transfer again, in a chain whose other event would pass: all or nothing.
        var again = LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id);
        var later = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 7);
        Assert.Equal([CreateTransferResult.PendingTransferAlreadyPosted, CreateTransferResult.LinkedEventFailed], RunAll(cluster, Linked(again), later));
        Assert.Equal((UInt128)35, Lookup(cluster, b).CreditsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_chain_that_fails_after_its_post_leaves_the_pending_transfer_pending()
    {
        var (cluster, a, b) = TwoShards();
        var pending = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 70, TransferFlags.Pending);
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 0);
        var missing = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, 424242, 1); // no such credit account
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.CreditAccountNotFound], RunAll(cluster, Linked(post), missing));
        Assert.Equal(PendingStatus.Pending, cluster.Shards[0].Store.GetPendingStatus(pending.Id));
        Assert.Equal(((UInt128)70, UInt128.Zero), (Lookup(cluster, b).CreditsPending, Lookup(cluster, b).CreditsPosted));

        // Posting it twice in one chain: the second gets already_posted, so neither happens.
        var post2 = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 10);
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.PendingTransferAlreadyPosted], RunAll(cluster, Linked(post), post2));
        Assert.Equal(PendingStatus.Pending, cluster.Shards[0].Store.GetPendingStatus(pending.Id));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_later_event_of_the_chain_spends_what_an_earlier_post_in_it_credited()
    {
        // b may not debit more than its credits: only the post, earlier in the same chain, makes the payment possible.
        var (cluster, a, b) = TwoShards(AccountFlags.DebitsMustNotExceedCredits);
        var pending = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 70, TransferFlags.Pending);
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
        var spend = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), b, a, 60);
        Assert.Equal([CreateTransferResult.ExceedsCredits], RunAll(cluster, spend));
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 0);
        var spend2 = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), b, a, 60);
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], RunAll(cluster, Linked(post), spend2));
        Assert.Equal(((UInt128)70, (UInt128)60), (Lookup(cluster, b).CreditsPosted, Lookup(cluster, b).DebitsPosted));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_post_of_a_pending_transfer_created_earlier_in_the_same_cross_shard_chain_is_refused()
    {
        var (cluster, a, b) = TwoShards();
        var pending = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 70, TransferFlags.Pending | TransferFlags.Linked);
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 0);
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.CrossShardNotSupported], RunAll(cluster, pending, post));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Chains_with_posts_and_voids_keep_every_invariant_under_chaos()
    {
        for (var seed = 0; seed < 30; seed++)
        {
            var (cluster, a, b) = TwoShards();
            var pendings = new List<Transfer>();
            for (var i = 0; i < 4; i++)
            {
                var p = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 10 + (UInt128)i, TransferFlags.Pending);
                Assert.Equal([CreateTransferResult.Created], RunAll(cluster, p));
                pendings.Add(p);
            }

            cluster.Chaos = Chaos.Heavy with { CrashPerMille = 30 };
            foreach (var p in pendings)
            {
                var resolve = cluster.Random.Next(2) == 0 ? LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, cluster.Random.Next(2)), p.Id, 0)
                    : LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, cluster.Random.Next(2)), p.Id);
                cluster.Submit([Linked(LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 1)), resolve]);
                cluster.Submit([Linked(LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 0), p.Id)), LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), b, a, 1)]);
                for (var step = 0; step < 15; step++)
                {
                    cluster.Step();
                }
            }

            cluster.Chaos = Chaos.None;
            Assert.True(cluster.RunUntilQuiet(10_000), $"seed {seed}: {cluster.Describe()}");
            CrossShardChecks.AssertConsistent(cluster);
        }
    }
}
