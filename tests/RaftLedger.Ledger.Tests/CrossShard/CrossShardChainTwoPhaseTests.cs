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
    public void A_post_of_a_pending_transfer_created_earlier_in_the_same_cross_shard_chain_is_created_with_it()
    {
        // (More in CrossShardSameChainTests.)
        var (cluster, a, b) = TwoShards();
        var pending = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 70, TransferFlags.Pending | TransferFlags.Linked);
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 0);
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], RunAll(cluster, pending, post));
        Assert.Equal(PendingStatus.Posted, cluster.Shards[0].Store.GetPendingStatus(pending.Id));
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

/// <summary>
/// Posts and voids inside cross-shard chains of a pending transfer homed on another shard than the chain's coordinator
/// (a status leg holds it there from Prepare to Finish), racing other posts, voids and the expiry of the same pending
/// transfer, under message loss, duplication and leader crashes: exactly one resolution wins.
/// </summary>
public sealed class CrossShardStatusLegRaceTests
{
    [Fact]
    public void Concurrent_posts_voids_and_expiry_of_one_pending_transfer_let_exactly_one_win()
    {
        var replay = Environment.GetEnvironmentVariable(CrossShardWorkload.SeedVariable);
        var first = replay is null ? 0 : int.Parse(replay, System.Globalization.CultureInfo.InvariantCulture);
        var wins = new int[5]; // posted, voided, expired, still pending; won by a chain's status leg
        for (var seed = first; seed < first + (replay is null ? 40 : 1); seed++)
        {
            try
            {
                var (end, chainWon) = RunRace(seed);
                wins[end]++;
                wins[4] += chainWon ? 1 : 0;
            }
            catch (Exception exception)
            {
                throw new Xunit.Sdk.XunitException(
                    $"status-leg race {seed} failed: {exception.Message}\nReplay: {CrossShardWorkload.SeedVariable}={seed} dotnet test tests/RaftLedger.Ledger.Tests -c Release --filter \"FullyQualifiedName~CrossShardStatusLegRaceTests\"");
            }
        }

        if (replay is null)
        {
            Assert.True(wins[0] > 0 && wins[1] > 0 && wins[2] > 0 && wins[4] > 5,
                $"posts, voids, expiries and chains each win some races (posted {wins[0]}, voided {wins[1]}, expired {wins[2]}, pending {wins[3]}, by a chain {wins[4]})");
        }
    }

    private static Transfer Linked(Transfer t)
    {
        t.Flags |= TransferFlags.Linked;
        return t;
    }

    // Returns how the pending transfer ended (0 posted, 1 voided, 2 expired, 3 still pending) and whether a chain won.
    private static (int End, bool ChainWon) RunRace(int seed)
    {
        var cluster = new CrossShardCluster(3, seed, CrossShardWorkload.Options);
        var random = new Random(seed);
        var a = CrossShardWorkload.IdWithHome(cluster, 0);
        var b = CrossShardWorkload.IdWithHome(cluster, 1);
        var c = CrossShardWorkload.IdWithHome(cluster, 2);
        cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b), LedgerFixture.NewAccount(c));
        cluster.Step();

        // P lives on shard 1 (its status there); its accounts on 0 and 1, or both on 1 (the ledger's own expiry index).
        var pending = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 1), random.Next(3) == 0 ? c : a, b, 40, TransferFlags.Pending);
        if (random.Next(3) == 0)
        {
            pending.DebitAccountId = CrossShardWorkload.IdWithHome(cluster, 1);
            cluster.CreateAccounts(LedgerFixture.NewAccount(pending.DebitAccountId));
        }

        pending.TimeoutSeconds = random.Next(2) == 0 ? 1u : 0u;
        Assert.Equal([CreateTransferResult.Created], cluster.RunRequest([pending]));

        cluster.Chaos = random.Next(2) == 0 ? Chaos.Heavy with { CrashPerMille = 20 } : Chaos.None;
        var resolutions = new List<UInt128>();
        Transfer Resolve(int idHome)
        {
            var id = CrossShardWorkload.IdWithHome(cluster, idHome);
            resolutions.Add(id);
            return random.Next(2) == 0 ? LedgerFixture.Post(id, pending.Id, (UInt128)random.Next(0, 41)) : LedgerFixture.Void(id, pending.Id);
        }

        // Chains coordinated by shards 0 and 2 (status legs on 1), a post/void coordinated by 1, one delegated to it.
        cluster.Submit([Linked(LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, c, 1)), Resolve(random.Next(3))]);
        cluster.Submit([Linked(Resolve(2)), LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 2), c, a, 1)]);
        for (var step = random.Next(0, 12); step > 0; step--)
        {
            cluster.Step(); // the chains' status legs get ahead of the others, or not
        }

        cluster.Submit([Resolve(1)]);
        cluster.Submit([Resolve(0)]);
        if (pending.TimeoutSeconds != 0)
        {
            cluster.AdvanceNs((ulong)random.Next(0, 2) * LedgerLimits.NanosecondsPerSecond); // the expiry may race them
        }

        for (var step = 0; step < 60; step++)
        {
            cluster.Step();
        }

        cluster.Chaos = Chaos.None;
        cluster.AdvanceNs(2 * LedgerLimits.NanosecondsPerSecond);
        Assert.True(cluster.RunUntilQuiet(20_000), cluster.Describe());
        CrossShardChecks.AssertConsistent(cluster);

        // Exactly one resolution is stored (or none when it expired), and the pending status says which.
        var records = CrossShardChecks.AuthoritativeRecords(cluster);
        var stored = resolutions.FindAll(records.ContainsKey);
        var status = cluster.Shards[1].Store.GetPendingStatus(pending.Id);
        Assert.True(stored.Count <= 1, $"{stored.Count} resolutions of one pending transfer were created");
        if (stored.Count == 1)
        {
            var won = records[stored[0]];
            Assert.Equal((won.Flags & TransferFlags.PostPendingTransfer) != 0 ? PendingStatus.Posted : PendingStatus.Voided, status);
        }
        else
        {
            Assert.True(status is PendingStatus.Expired or PendingStatus.Pending, $"status {status} without a stored post or void");
        }

        // The losers got TigerBeetle's statuses (or a retryable failure under chaos).
        foreach (var request in cluster.Requests.Skip(1))
        {
            for (var i = 0; i < request.Events.Length; i++)
            {
                if (request.Known[i] && request.Results[i] == CreateTransferResult.Created && resolutions.Contains(request.Events[i].Id))
                {
                    Assert.Contains(request.Events[i].Id, stored);
                }
            }
        }

        var chainIds = cluster.Requests.Skip(1).Take(2).SelectMany(r => r.Events).Select(t => t.Id);
        var end = status switch
        {
            PendingStatus.Posted => 0,
            PendingStatus.Voided => 1,
            PendingStatus.Expired => 2,
            _ => 3,
        };
        return (end, stored.Count == 1 && chainIds.Contains(stored[0]));
    }
}
