using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// Two-phase transfers across shards (calm network): a pending transfer reserves on both legs and stays
/// pending; its post/void is coordinated by its home (where its status is) and finished on the legs.
/// </summary>
public sealed class CrossShardTwoPhaseTests
{
    private static (CrossShardCluster Cluster, UInt128 A, UInt128 B) TwoShards(AccountFlags debitFlags = AccountFlags.None)
    {
        var cluster = new CrossShardCluster(2, seed: 3, CrossShardWorkload.Options);
        var a = CrossShardWorkload.IdWithHome(cluster, 0);
        var b = CrossShardWorkload.IdWithHome(cluster, 1);
        cluster.CreateAccounts(LedgerFixture.NewAccount(a, flags: debitFlags), LedgerFixture.NewAccount(b));
        return (cluster, a, b);
    }

    private static CreateTransferResult Run(CrossShardCluster cluster, params Transfer[] events) => RunAll(cluster, events)[0];

    private static CreateTransferResult[] RunAll(CrossShardCluster cluster, params Transfer[] events) => cluster.RunRequest(events);

    private static Account Lookup(CrossShardCluster cluster, UInt128 id) => cluster.LookupAccount(id);

    private static (UInt128 DebitsPending, UInt128 DebitsPosted, UInt128 CreditsPending, UInt128 CreditsPosted) Balances(CrossShardCluster cluster, UInt128 a, UInt128 b)
    {
        var debit = Lookup(cluster, a);
        var credit = Lookup(cluster, b);
        Assert.Equal(UInt128.Zero, debit.CreditsPending + debit.CreditsPosted);
        Assert.Equal(UInt128.Zero, credit.DebitsPending + credit.DebitsPosted);
        return (debit.DebitsPending, debit.DebitsPosted, credit.CreditsPending, credit.CreditsPosted);
    }

    private static Transfer Pending(CrossShardCluster cluster, int home, UInt128 a, UInt128 b, UInt128 amount) =>
        LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, home), a, b, amount, TransferFlags.Pending);

    [Fact]
    public void Pending_across_shards_reserves_on_both_legs_and_stays_pending()
    {
        var (cluster, a, b) = TwoShards();
        var pending = Pending(cluster, 0, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));
        Assert.Equal(((UInt128)70, UInt128.Zero, (UInt128)70, UInt128.Zero), Balances(cluster, a, b));
        Assert.Equal(PendingStatus.Pending, cluster.Shards[0].Store.GetPendingStatus(pending.Id));
        Assert.True(cluster.Shards[1].Ledger.TryLookupTransfer(pending.Id, out var copy), "the credit shard keeps a copy");
        Assert.Equal(TransferFlags.Pending, copy.Flags & TransferFlags.Pending);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Theory]
    [InlineData(0, 70)] // amount 0: the full pending amount
    [InlineData(30, 30)] // a partial post: the rest is released
    public void Post_moves_the_reservation_to_posted_on_both_shards(int postAmount, int posted)
    {
        var (cluster, a, b) = TwoShards();
        var pending = Pending(cluster, 1, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 1), pending.Id, (UInt128)postAmount);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, post));
        Assert.Equal((UInt128.Zero, (UInt128)posted, UInt128.Zero, (UInt128)posted), Balances(cluster, a, b));
        Assert.Equal(PendingStatus.Posted, cluster.Shards[1].Store.GetPendingStatus(pending.Id));
        Assert.True(cluster.Shards[1].Ledger.TryLookupTransfer(post.Id, out var record));
        Assert.Equal((a, b, (UInt128)posted), (record.DebitAccountId, record.CreditAccountId, record.Amount));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Void_releases_both_reservations_and_a_second_post_or_void_loses()
    {
        var (cluster, a, b) = TwoShards();
        var pending = Pending(cluster, 0, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));
        Assert.Equal(CreateTransferResult.Created, Run(cluster, LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id)));
        Assert.Equal((UInt128.Zero, UInt128.Zero, UInt128.Zero, UInt128.Zero), Balances(cluster, a, b));
        Assert.Equal(CreateTransferResult.PendingTransferAlreadyVoided, Run(cluster, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 0)));
        Assert.Equal(CreateTransferResult.PendingTransferAlreadyVoided, Run(cluster, LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id)));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Of_two_concurrent_posts_one_is_created_and_the_other_gets_already_posted()
    {
        var (cluster, a, b) = TwoShards();
        var pending = Pending(cluster, 0, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));
        var first = cluster.Submit([LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 20)]);
        var second = cluster.Submit([LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id)]);
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Equal(CreateTransferResult.Created, first.Results[0]);
        Assert.Equal(CreateTransferResult.PendingTransferAlreadyPosted, second.Results[0]);
        Assert.Equal((UInt128.Zero, (UInt128)20, UInt128.Zero, (UInt128)20), Balances(cluster, a, b));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Post_of_an_unknown_pending_transfer_is_not_found_then_its_id_has_already_failed()
    {
        var (cluster, _, _) = TwoShards();
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), CrossShardWorkload.IdWithHome(cluster, 0), 0);
        Assert.Equal(CreateTransferResult.PendingTransferNotFound, Run(cluster, post));
        Assert.Equal(CreateTransferResult.IdAlreadyFailed, Run(cluster, post));
    }

    [Fact]
    public void Post_or_void_with_fields_that_differ_from_the_pending_transfer_gets_tigerbeetles_status()
    {
        var (cluster, a, b) = TwoShards();
        var pending = Pending(cluster, 1, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));
        Transfer Post(Action<Transfer[]> change)
        {
            var post = new[] { LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 1), pending.Id, 0) };
            change(post);
            return post[0];
        }

        Assert.Equal(CreateTransferResult.PendingTransferHasDifferentDebitAccountId, Run(cluster, Post(p => p[0].DebitAccountId = b)));
        Assert.Equal(CreateTransferResult.PendingTransferHasDifferentCreditAccountId, Run(cluster, Post(p => p[0].CreditAccountId = a)));
        Assert.Equal(CreateTransferResult.PendingTransferHasDifferentLedger, Run(cluster, Post(p => p[0].Ledger = 9)));
        Assert.Equal(CreateTransferResult.PendingTransferHasDifferentCode, Run(cluster, Post(p => p[0].Code = 9)));
        Assert.Equal(CreateTransferResult.ExceedsPendingTransferAmount, Run(cluster, Post(p => p[0].Amount = 71)));
        Assert.Equal(CreateTransferResult.PendingIdMustBeDifferent, Run(cluster, Post(p => p[0].PendingId = p[0].Id)));
        var wrongVoid = LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 1), pending.Id);
        wrongVoid.Amount = 10;
        Assert.Equal(CreateTransferResult.PendingTransferHasDifferentAmount, Run(cluster, wrongVoid));
        var notPending = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 5);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, notPending));
        Assert.Equal(CreateTransferResult.PendingTransferNotPending, Run(cluster, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), notPending.Id, 0)));
        Assert.Equal(((UInt128)70, (UInt128)5, (UInt128)70, (UInt128)5), Balances(cluster, a, b));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Pending_amounts_count_against_the_limit_of_the_debit_account_on_its_shard()
    {
        var (cluster, a, b) = TwoShards(AccountFlags.DebitsMustNotExceedCredits);
        var funder = CrossShardWorkload.IdWithHome(cluster, 1);
        cluster.CreateAccounts(LedgerFixture.NewAccount(funder));
        Assert.Equal(CreateTransferResult.Created, Run(cluster, LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 1), funder, a, 100)));
        Assert.Equal(CreateTransferResult.Created, Run(cluster, Pending(cluster, 1, a, b, 80)));
        Assert.Equal(CreateTransferResult.ExceedsCredits, Run(cluster, Pending(cluster, 1, a, b, 30)));
        Assert.Equal(CreateTransferResult.ExceedsCredits, Run(cluster, LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 21)));
        Assert.Equal(CreateTransferResult.Created, Run(cluster, LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 20)));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_post_in_a_cross_shard_chain_whose_pending_transfer_lives_on_another_shard_commits_through_a_status_leg()
    {
        var (cluster, a, b) = TwoShards();
        var pending = Pending(cluster, 1, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));

        // The chain is coordinated by shard 0; the pending transfer's status lives on shard 1 (a status leg holds it there).
        var chained = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 5, TransferFlags.Linked);
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 30);
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], RunAll(cluster, chained, post));
        Assert.Equal((UInt128.Zero, (UInt128)35, UInt128.Zero, (UInt128)35), Balances(cluster, a, b));
        Assert.Equal(PendingStatus.Posted, cluster.Shards[1].Store.GetPendingStatus(pending.Id));
        Assert.False(cluster.Shards[1].Store.TryGetSideRecord(CrossShardTables.LegHold, pending.Id, out _), "the hold is released at Finish");

        // A second post/void of it, in a chain or alone, finds it posted.
        var again = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 5, TransferFlags.Linked);
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.PendingTransferAlreadyPosted],
            RunAll(cluster, again, LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id)));
        Assert.Equal(CreateTransferResult.PendingTransferAlreadyPosted, Run(cluster, LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 1), pending.Id)));
        Assert.Equal((UInt128.Zero, (UInt128)35, UInt128.Zero, (UInt128)35), Balances(cluster, a, b));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_chain_that_fails_after_a_status_leg_leaves_the_other_shards_pending_transfer_pending_and_free()
    {
        var (cluster, a, b) = TwoShards();
        var pending = Pending(cluster, 1, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));
        var voided = LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id);
        voided.Flags |= TransferFlags.Linked;
        var missing = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, 424242, 1); // no such credit account
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.CreditAccountNotFound], RunAll(cluster, voided, missing));
        Assert.Equal(PendingStatus.Pending, cluster.Shards[1].Store.GetPendingStatus(pending.Id));
        Assert.False(cluster.Shards[1].Store.TryGetSideRecord(CrossShardTables.LegHold, pending.Id, out _), "the hold is released on abort");

        // Field checks against the other shard's pending transfer give TigerBeetle's statuses at the coordinator.
        var chained = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 5, TransferFlags.Linked);
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.ExceedsPendingTransferAmount],
            RunAll(cluster, chained, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 71)));
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.PendingTransferNotFound],
            RunAll(cluster, chained, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), CrossShardWorkload.IdWithHome(cluster, 1), 1)));

        // Then a post alone, on its home, still works.
        Assert.Equal(CreateTransferResult.Created, Run(cluster, LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 1), pending.Id)));
        Assert.Equal((UInt128.Zero, UInt128.Zero, UInt128.Zero, UInt128.Zero), Balances(cluster, a, b));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Post_or_void_whose_id_lives_on_another_shard_is_delegated_to_the_pending_transfers_home(bool post)
    {
        var cluster = new CrossShardCluster(3, seed: 5, CrossShardWorkload.Options);
        var a = CrossShardWorkload.IdWithHome(cluster, 0);
        var b = CrossShardWorkload.IdWithHome(cluster, 1);
        cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b));
        cluster.Step(); // Hosts tick the drivers (cluster time) before submitting; shard 2's ledger is empty.
        var pending = Pending(cluster, 2, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));
        foreach (var idHome in new[] { 0, 1 })
        {
            // The second one loses at the pending transfer's home, whichever shard its id lives on.
            var id = CrossShardWorkload.IdWithHome(cluster, idHome);
            var t = post ? LedgerFixture.Post(id, pending.Id, 25) : LedgerFixture.Void(id, pending.Id);
            var expected = idHome == 0 ? CreateTransferResult.Created : post ? CreateTransferResult.PendingTransferAlreadyPosted : CreateTransferResult.PendingTransferAlreadyVoided;
            Assert.Equal(expected, Run(cluster, t));
            Assert.Equal(idHome == 0, cluster.Shards[idHome].Ledger.TryLookupTransfer(id, out _));
        }

        var posted = post ? (UInt128)25 : UInt128.Zero;
        Assert.Equal((UInt128.Zero, posted, UInt128.Zero, posted), Balances(cluster, a, b));
        Assert.Equal(post ? PendingStatus.Posted : PendingStatus.Voided, cluster.Shards[2].Store.GetPendingStatus(pending.Id));
        var retry = cluster.Submit([post ? LedgerFixture.Post(cluster.Requests[1].Events[0].Id, pending.Id, 25) : cluster.Requests[1].Events[0]]);
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Equal(CreateTransferResult.Exists, retry.Results[0]);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_post_applied_on_the_fast_path_before_its_cross_shard_pending_transfer_was_known_is_refused_not_applied()
    {
        // The race: a post classified local (its pending transfer unknown yet) is applied after the cross-shard
        // pending transfer was decided on the same shard; its accounts live elsewhere, so the fast path refuses.
        var (cluster, a, b) = TwoShards();
        var pending = Pending(cluster, 0, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));
        var node = cluster.Shards[0];
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 0);
        var results = new CreateTransferResult[1];
        node.Ledger.CreateTransfers([post], node.NextTimestamp(1), results);
        Assert.Equal(CreateTransferResult.NeedsCrossShardPath, results[0]);
        Assert.Equal(PendingStatus.Pending, node.Store.GetPendingStatus(pending.Id));
        Assert.Equal(CreateTransferResult.Created, Run(cluster, post)); // a retry goes through the cross-shard path
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_chain_the_fast_path_refused_for_a_cross_shard_pending_transfer_is_marked_whole_and_created_through_the_driver()
    {
        // The same race inside a linked chain, then what the host does with it: the refused chain (and only it) is
        // marked, nothing of it was applied, and the driver creates it whole.
        var (cluster, a, b) = TwoShards();
        UInt128 a2 = a + 1;
        while (cluster.ShardOf(a2) != 0)
        {
            a2++;
        }

        cluster.CreateAccounts(LedgerFixture.NewAccount(a2));
        var pending = Pending(cluster, 0, a, b, 70);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, pending));
        var local = CrossShardWorkload.Transfer(cluster, 0, a2, a, 5);
        local.Flags = TransferFlags.Linked;
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 0);
        var alone = CrossShardWorkload.Transfer(cluster, 0, a, a2, 1);
        Transfer[] events = [local, post, alone];
        var node = cluster.Shards[0];
        var results = new CreateTransferResult[events.Length];
        node.Ledger.CreateTransfers(events, node.NextTimestamp(events.Length), results);
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.NeedsCrossShardPath, CreateTransferResult.Created], results);
        Assert.False(node.Ledger.TryLookupTransfer(local.Id, out _), "nothing of the refused chain was applied");

        var reroute = new bool[events.Length];
        Assert.True(CrossShardDriver.MarkChainsRefusedOnFastPath(events, results, reroute));
        Assert.Equal([true, true, false], reroute);
        Assert.False(CrossShardDriver.MarkChainsRefusedOnFastPath([alone], [CreateTransferResult.Created], new bool[1]));

        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], RunAll(cluster, local, post));
        Assert.Equal(PendingStatus.Posted, node.Store.GetPendingStatus(pending.Id));
        var debit = Lookup(cluster, a);
        var credit = Lookup(cluster, b);
        Assert.Equal((UInt128.Zero, (UInt128)(70 + 1)), (debit.DebitsPending, debit.DebitsPosted));
        Assert.Equal((UInt128)5, debit.CreditsPosted);
        Assert.Equal((UInt128.Zero, (UInt128)70), (credit.CreditsPending, credit.CreditsPosted));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Status_leg_messages_round_trip_and_a_full_pending_lookup_answer_fits_the_message_bound()
    {
        var pending = LedgerFixture.NewTransfer(UInt128.MaxValue - 3, 1, 2, 70, TransferFlags.Pending);
        var found = new ForeignPending[CrossShardMessage.PendingLookupMax];
        for (var i = 0; i < found.Length; i++)
        {
            found[i] = new ForeignPending(pending.Id - (UInt128)i, true, PendingStatus.Pending, pending);
        }

        var answer = new CrossShardMessage(CrossShardMessageKind.PendingFound, 2, 1, 7) { Pendings = found };
        Assert.True(answer.Encode().Length <= CrossShardLimits.MessageBytesMax, "a PendingFound for a full transaction fits a message");
        Assert.True(CrossShardMessage.TryDecode(answer.Encode(), out var decoded));
        Assert.Equal(found, decoded.Pendings);
        var lookup = new CrossShardMessage(CrossShardMessageKind.PendingLookup, 2, 2, 7) { AccountIds = [pending.Id, 5] };
        Assert.True(CrossShardMessage.TryDecode(lookup.Encode(), out decoded));
        Assert.Equal([pending.Id, (UInt128)5], decoded.AccountIds);

        // A status leg's refusal (the pending transfer is no longer pending) travels in a Prepared report.
        var refused = new SideReport(LegOutcome.PendingStatus, (uint)CreateTransferResult.PendingTransferAlreadyPosted);
        var prepared = new CrossShardMessage(CrossShardMessageKind.Prepared, 2, 1, 7) { Reports = [new LegReport(1, refused, refused)] };
        Assert.True(CrossShardMessage.TryDecode(prepared.Encode(), out decoded));
        Assert.Equal(refused, decoded.Reports[0].Debit);
        var leg = new CrossShardMessage(CrossShardMessageKind.Prepare, 2, 2, 7) { Legs = [new Leg(1, LegSides.Status | LegSides.Id, LedgerFixture.Post(9, pending.Id, 0))] };
        Assert.True(CrossShardMessage.TryDecode(leg.Encode(), out decoded));
        Assert.Equal(LegSides.Status | LegSides.Id, decoded.Legs[0].Sides);
    }

    [Fact]
    public void Delegation_messages_round_trip_and_fit_the_message_bound()
    {
        var post = LedgerFixture.Post(UInt128.MaxValue - 1, 77, 5);
        var delegate_ = new CrossShardMessage(CrossShardMessageKind.Delegate, 3, 3, 99) { Legs = [new Leg(0, LegSides.Id, post)], Sends = CrossShardLimits.DelegationSendsCountedMax + 1 };
        Assert.True(CrossShardMessage.TryDecode(delegate_.Encode(), out var decoded));
        Assert.Equal((CrossShardMessageKind.Delegate, post, CrossShardLimits.DelegationSendsCountedMax + 1), (decoded.Kind, decoded.Legs[0].Transfer, decoded.Sends));
        var answer = new CrossShardMessage(CrossShardMessageKind.Delegated, 3, 1, 99)
        {
            Outcome = DelegatedOutcome.Answered,
            Status = CreateTransferResult.PendingTransferAlreadyVoided,
            Timestamp = 12345,
            Sends = 3,
        };
        Assert.True(CrossShardMessage.TryDecode(answer.Encode(), out decoded));
        Assert.Equal((DelegatedOutcome.Answered, CreateTransferResult.PendingTransferAlreadyVoided, 12345UL, 3), (decoded.Outcome, decoded.Status, decoded.Timestamp, decoded.Sends));
        Assert.True(delegate_.Encode().Length <= CrossShardLimits.MessageBytesMax);
        var corrupt = answer.Encode();
        corrupt[22] = 9; // after the 22-byte header: an unknown outcome is dropped, never thrown
        Assert.False(CrossShardMessage.TryDecode(corrupt, out _));
        Assert.True(CrossShardLimits.DelegationsRememberedMax >= CrossShardLimits.CoordinatorTransactionsMax, "a home can remember as many delegations as one peer coordinates");
    }

    [Fact]
    public void Pending_then_post_survive_message_loss_duplication_and_leader_crashes()
    {
        for (var seed = 0; seed < 40; seed++)
        {
            var cluster = new CrossShardCluster(3, seed, CrossShardWorkload.Options);
            var a = CrossShardWorkload.IdWithHome(cluster, 0);
            var b = CrossShardWorkload.IdWithHome(cluster, 1);
            cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b));
            cluster.Chaos = Chaos.Heavy;
            var pending = Pending(cluster, 2, a, b, 70);
            var created = false;
            for (var attempt = 0; attempt < 20 && !created; attempt++)
            {
                var request = cluster.Submit([pending]);
                Assert.True(cluster.RunUntilQuiet(20_000), $"seed {seed}: {cluster.Describe()}");
                created = request.Results[0] is CreateTransferResult.Created or CreateTransferResult.Exists && request.Failures.Count == 0;
            }

            Assert.True(created, $"seed {seed}: the pending transfer was created within 20 retries");
            var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, seed % 3), pending.Id, 50);
            var posted = false;
            for (var attempt = 0; attempt < 20 && !posted; attempt++)
            {
                var request = cluster.Submit([post]);
                Assert.True(cluster.RunUntilQuiet(20_000), $"seed {seed}: {cluster.Describe()}");
                posted = request.Results[0] is CreateTransferResult.Created or CreateTransferResult.Exists && request.Failures.Count == 0;
            }

            Assert.True(posted, $"seed {seed}: the post was created within 20 retries");
            cluster.Chaos = Chaos.None;
            Assert.True(cluster.RunUntilQuiet(20_000), $"seed {seed}: {cluster.Describe()}");
            Assert.Equal((UInt128.Zero, (UInt128)50, UInt128.Zero, (UInt128)50), Balances(cluster, a, b));
            CrossShardChecks.AssertConsistent(cluster);
        }
    }
}
