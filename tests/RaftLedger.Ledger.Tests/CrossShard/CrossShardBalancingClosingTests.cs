using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// Balancing and closing transfers whose accounts live on other shards, with TigerBeetle's semantics as the local
/// ledger applies them: a balancing amount is clamped to the balancing side's headroom (on a snapshot, re-checked
/// where it is applied), a closing transfer closes its account from its Prepare on, reopened by its void or abort.
/// </summary>
public sealed class CrossShardBalancingClosingTests
{
    // A (shard 0) and B (shard 1); A has credits_posted 100 (funded from F on shard 0), B has debits_posted 40 (paid to G on shard 1).
    private static (CrossShardCluster Cluster, UInt128 A, UInt128 B) Funded(int seed = 5)
    {
        var cluster = new CrossShardCluster(2, seed, CrossShardWorkload.Options);
        var a = CrossShardWorkload.IdWithHome(cluster, 0);
        var b = CrossShardWorkload.IdWithHome(cluster, 1);
        var f = CrossShardWorkload.IdWithHome(cluster, 0);
        var g = CrossShardWorkload.IdWithHome(cluster, 1);
        cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b), LedgerFixture.NewAccount(f), LedgerFixture.NewAccount(g));
        Assert.Equal(CreateTransferResult.Created, Run(cluster, CrossShardWorkload.Transfer(cluster, 0, f, a, 100))[0]);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, CrossShardWorkload.Transfer(cluster, 1, b, g, 40))[0]);
        return (cluster, a, b);
    }

    private static CreateTransferResult[] Run(CrossShardCluster cluster, params Transfer[] events) => cluster.RunRequest(events);

    private static Account Lookup(CrossShardCluster cluster, UInt128 id) => cluster.LookupAccount(id);

    private static Transfer Record(CrossShardCluster cluster, UInt128 id)
    {
        Assert.True(cluster.Shards[cluster.ShardOf(id)].Ledger.TryLookupTransfer(id, out var t));
        return t;
    }

    private static Transfer New(CrossShardCluster cluster, int home, UInt128 debit, UInt128 credit, UInt128 amount, TransferFlags flags) =>
        LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, home), debit, credit, amount, flags);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Balancing_debit_across_shards_moves_at_most_the_debit_accounts_credit_balance(int home)
    {
        var (cluster, a, b) = Funded();
        var t = New(cluster, home, a, b, 1000, TransferFlags.BalancingDebit);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, t)[0]);
        Assert.Equal((UInt128)100, Record(cluster, t.Id).Amount);
        Assert.Equal((UInt128)100, Lookup(cluster, a).DebitsPosted);
        Assert.Equal((UInt128)100, Lookup(cluster, b).CreditsPosted);

        // Nothing left to balance: a second one moves 0 (and is created, as TigerBeetle does).
        var again = New(cluster, 1 - home, a, b, 1000, TransferFlags.BalancingDebit);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, again)[0]);
        Assert.Equal(UInt128.Zero, Record(cluster, again.Id).Amount);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Theory]
    [InlineData(TransferFlags.BalancingCredit, 40)] // B's headroom: debits_posted 40 - credits 0
    [InlineData(TransferFlags.BalancingDebit | TransferFlags.BalancingCredit, 40)] // both: the smaller
    [InlineData(TransferFlags.BalancingDebit | TransferFlags.BalancingCredit | TransferFlags.Pending, 40)] // pending reserves the clamped amount
    public void Balancing_credit_and_both_clamp_to_each_balancing_side(TransferFlags flags, int expected)
    {
        var (cluster, a, b) = Funded();
        var t = New(cluster, 0, a, b, 1000, flags);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, t)[0]);
        Assert.Equal((UInt128)expected, Record(cluster, t.Id).Amount);
        var pending = (flags & TransferFlags.Pending) != 0;
        Assert.Equal((UInt128)expected, pending ? Lookup(cluster, a).DebitsPending : Lookup(cluster, a).DebitsPosted);
        Assert.Equal((UInt128)expected, pending ? Lookup(cluster, b).CreditsPending : Lookup(cluster, b).CreditsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Balancing_amount_below_the_headroom_is_kept_and_a_retry_with_the_same_id_answers_exists()
    {
        var (cluster, a, b) = Funded();
        var small = New(cluster, 1, a, b, 30, TransferFlags.BalancingDebit);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, small)[0]);
        Assert.Equal((UInt128)30, Record(cluster, small.Id).Amount);

        var big = New(cluster, 1, a, b, 500, TransferFlags.BalancingDebit);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, big)[0]);
        Assert.Equal((UInt128)70, Record(cluster, big.Id).Amount);

        // TigerBeetle compares the requested amount with the stored one: a retry (now clamped to 0) is exists.
        Assert.Equal(CreateTransferResult.Exists, Run(cluster, big)[0]);
        var less = big with { Amount = 69 };
        Assert.Equal(CreateTransferResult.ExistsWithDifferentAmount, Run(cluster, less)[0]);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Balancing_in_a_chain_sees_the_earlier_events_of_the_chain_on_the_same_account()
    {
        var (cluster, a, b) = Funded();
        var c = CrossShardWorkload.IdWithHome(cluster, 1);
        cluster.CreateAccounts(LedgerFixture.NewAccount(c));

        // b → a 25 (a's credits 125), then balancing a → b moves 125, then balancing b → c: b's credits 125 - debits (40 + 25) = 60.
        var first = New(cluster, 0, b, a, 25, TransferFlags.Linked);
        var second = New(cluster, 1, a, b, 1000, TransferFlags.Linked | TransferFlags.BalancingDebit);
        var third = New(cluster, 0, b, c, 1000, TransferFlags.BalancingDebit);
        Assert.Equal(new[] { CreateTransferResult.Created, CreateTransferResult.Created, CreateTransferResult.Created }, Run(cluster, first, second, third));
        Assert.Equal((UInt128)125, Record(cluster, second.Id).Amount);
        Assert.Equal((UInt128)60, Record(cluster, third.Id).Amount);
        var bAccount = Lookup(cluster, b);
        Assert.Equal((bAccount.DebitsPosted, bAccount.CreditsPosted), ((UInt128)125, (UInt128)125));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Balancing_transfers_racing_on_one_account_never_move_more_than_its_balance()
    {
        var (cluster, a, b) = Funded(seed: 11);
        var requests = new List<ClientRequest>();
        var events = new List<Transfer>();
        for (var i = 0; i < 6; i++)
        {
            var t = New(cluster, i % 2, a, b, 30, TransferFlags.BalancingDebit);
            events.Add(t);
            requests.Add(cluster.Submit([t]));
            cluster.Step();
        }

        Assert.True(cluster.RunUntilQuiet(5000), cluster.Describe());
        var stale = 0;
        for (var attempt = 0; attempt < 20 && requests.Exists(r => r.Failures.Count > 0); attempt++)
        {
            for (var i = 0; i < requests.Count; i++)
            {
                if (requests[i].Failures.Count > 0)
                {
                    stale++;
                    requests[i] = cluster.Submit([events[i]]); // 503 (a stale snapshot): retry with the same id
                }
            }

            Assert.True(cluster.RunUntilQuiet(5000), cluster.Describe());
        }

        var moved = UInt128.Zero;
        foreach (var t in events)
        {
            moved += Record(cluster, t.Id).Amount;
        }

        Assert.Equal((UInt128)100, moved);
        var restarts = cluster.Shards[0].Driver.StaleClampRestarts + cluster.Shards[1].Driver.StaleClampRestarts;
        Assert.True(restarts > 0, "some transfer was prepared on a snapshot another one had made stale (the guard refused it, the coordinator restarted it)");
        Assert.True(stale < events.Count, $"{stale} clients had to retry: the coordinators restart stale clamps themselves");
        Assert.Equal((UInt128)100, Lookup(cluster, a).DebitsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Theory]
    [InlineData(TransferFlags.ClosingDebit)]
    [InlineData(TransferFlags.ClosingCredit)]
    public void Closing_across_shards_closes_the_account_and_later_transfers_are_refused_until_the_void(TransferFlags closing)
    {
        var (cluster, a, b) = Funded();
        var closed = closing == TransferFlags.ClosingDebit ? a : b;
        var close = New(cluster, 1, a, b, 10, TransferFlags.Pending | closing);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, close)[0]);
        Assert.Equal(AccountFlags.Closed, Lookup(cluster, closed).Flags & AccountFlags.Closed);

        // Any later transfer on the closed account, local or across shards, is refused.
        var across = New(cluster, 0, a, b, 1, TransferFlags.None);
        var expected = closing == TransferFlags.ClosingDebit ? CreateTransferResult.DebitAccountAlreadyClosed : CreateTransferResult.CreditAccountAlreadyClosed;
        Assert.Equal(expected, Run(cluster, across)[0]);
        var local = closing == TransferFlags.ClosingDebit
            ? New(cluster, 0, a, LocalPeer(cluster, a), 1, TransferFlags.None)
            : New(cluster, 1, LocalPeer(cluster, b), b, 1, TransferFlags.None);
        Assert.Equal(expected, Run(cluster, local)[0]);

        // The void reopens it; the transfer then goes through.
        Assert.Equal(CreateTransferResult.Created, Run(cluster, LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 0), close.Id))[0]);
        Assert.Equal(AccountFlags.None, Lookup(cluster, closed).Flags & AccountFlags.Closed);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, across with { Id = CrossShardWorkload.IdWithHome(cluster, 0) })[0]);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Posting_a_closing_transfer_keeps_the_account_closed()
    {
        var (cluster, a, b) = Funded();
        var close = New(cluster, 0, a, b, 10, TransferFlags.Pending | TransferFlags.ClosingDebit | TransferFlags.ClosingCredit);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, close)[0]);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 1), close.Id, 0))[0]);
        Assert.Equal(AccountFlags.Closed, Lookup(cluster, a).Flags & AccountFlags.Closed);
        Assert.Equal(AccountFlags.Closed, Lookup(cluster, b).Flags & AccountFlags.Closed);
        Assert.Equal((UInt128)10, Lookup(cluster, a).DebitsPosted);
        Assert.Equal(CreateTransferResult.DebitAccountAlreadyClosed, Run(cluster, New(cluster, 1, a, b, 1, TransferFlags.None))[0]);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Closing_that_is_not_pending_is_refused_and_closing_a_closed_account_fails()
    {
        var (cluster, a, b) = Funded();
        Assert.Equal(CreateTransferResult.ClosingTransferMustBePending, Run(cluster, New(cluster, 0, a, b, 1, TransferFlags.ClosingDebit))[0]);
        Assert.Equal(CreateTransferResult.Created, Run(cluster, New(cluster, 0, a, b, 1, TransferFlags.Pending | TransferFlags.ClosingCredit))[0]);
        Assert.Equal(CreateTransferResult.CreditAccountAlreadyClosed, Run(cluster, New(cluster, 1, a, b, 1, TransferFlags.Pending | TransferFlags.ClosingCredit))[0]);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_closing_chain_that_fails_later_leaves_the_account_open_and_a_later_event_of_it_sees_the_close()
    {
        var (cluster, a, b) = Funded();
        var close = New(cluster, 0, a, b, 5, TransferFlags.Pending | TransferFlags.ClosingDebit | TransferFlags.Linked);
        var after = New(cluster, 1, a, b, 1, TransferFlags.None);
        Assert.Equal(new[] { CreateTransferResult.LinkedEventFailed, CreateTransferResult.DebitAccountAlreadyClosed }, Run(cluster, close, after));
        Assert.Equal(AccountFlags.None, Lookup(cluster, a).Flags & AccountFlags.Closed);
        Assert.Equal(UInt128.Zero, Lookup(cluster, a).DebitsPending);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void An_undecided_closing_leg_closes_its_account_for_checks_but_not_for_reads()
    {
        var (cluster, a, b) = Funded();
        var close = New(cluster, 0, a, b, 5, TransferFlags.Pending | TransferFlags.ClosingCredit);
        var request = cluster.Submit([close]);
        var seenHeld = false;
        for (var step = 0; step < 2000 && !request.Done; step++)
        {
            cluster.Step();
            if (cluster.Shards[1].Store.TryGetSideRecord(CrossShardTables.Closing, b, out _))
            {
                seenHeld = true;
                Assert.True(cluster.Shards[1].Ledger.TryLookupAccountWithReservations(b, out var checkedView));
                Assert.Equal(AccountFlags.Closed, checkedView.Flags & AccountFlags.Closed);
                Assert.Equal(AccountFlags.None, Lookup(cluster, b).Flags & AccountFlags.Closed);
            }
        }

        Assert.True(seenHeld, "the credit shard held the closing leg prepared for a while");
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Equal(AccountFlags.Closed, Lookup(cluster, b).Flags & AccountFlags.Closed);
        Assert.False(cluster.Shards[1].Store.TryGetSideRecord(CrossShardTables.Closing, b, out _));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Balancing_and_closing_survive_message_loss_duplication_and_leader_crashes()
    {
        for (var seed = 0; seed < 30; seed++)
        {
            var (cluster, a, b) = Funded(seed);
            var c = CrossShardWorkload.IdWithHome(cluster, 1);
            cluster.CreateAccounts(LedgerFixture.NewAccount(c));
            cluster.Chaos = Chaos.Heavy;
            var balance = New(cluster, seed % 2, a, b, 1000, TransferFlags.BalancingDebit | TransferFlags.Linked);
            var close = New(cluster, 1 - (seed % 2), b, c, 1000, TransferFlags.Pending | TransferFlags.BalancingDebit | TransferFlags.ClosingDebit);
            Assert.True(Eventually(cluster, [balance, close]), $"seed {seed}: the chain was created within 30 retries: {cluster.Describe()} {string.Join("\n", Attempts)}");
            var @void = LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, seed % 2), close.Id);
            Assert.True(Eventually(cluster, [@void]), $"seed {seed}: the void was created within 30 retries: {cluster.Describe()}");
            cluster.Chaos = Chaos.None;
            Assert.True(cluster.RunUntilQuiet(20_000), $"seed {seed}: {cluster.Describe()}");
            Assert.Equal((UInt128)100, Record(cluster, balance.Id).Amount);
            Assert.Equal((UInt128)60, Record(cluster, close.Id).Amount); // b: credits 100 - debits 40
            Assert.Equal(AccountFlags.None, Lookup(cluster, b).Flags & AccountFlags.Closed);
            Assert.Equal((UInt128.Zero, (UInt128)40), (Lookup(cluster, b).DebitsPending, Lookup(cluster, b).DebitsPosted));
            CrossShardChecks.AssertConsistent(cluster);
        }
    }

    private static readonly List<string> Attempts = [];

    [Fact]
    public void A_closing_leg_orphaned_by_a_coordinator_crash_reopens_its_account_after_the_abandonment_timeout()
    {
        var (cluster, a, b) = Funded();
        var close = New(cluster, 0, a, b, 7, TransferFlags.Pending | TransferFlags.ClosingCredit);
        var request = cluster.Submit([close]);
        for (var steps = 0; cluster.Shards[1].Driver.PreparedTransactionCount == 0; steps++)
        {
            cluster.Step();
            Assert.True(steps < 100, "the participant prepares");
        }

        Assert.True(cluster.Shards[1].Ledger.TryLookupAccountWithReservations(b, out var held));
        Assert.Equal(AccountFlags.Closed, held.Flags & AccountFlags.Closed);
        cluster.Shards[0].CrashLosingLog(); // The Decide never happens: presumed abort.
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Single(request.Failures);
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccountWithReservations(b, out var reopened));
        Assert.Equal(AccountFlags.None, reopened.Flags & AccountFlags.Closed);
        Assert.False(cluster.Shards[1].Store.TryGetSideRecord(CrossShardTables.Closing, b, out _));
        Assert.Equal(CreateTransferResult.Created, Run(cluster, New(cluster, 1, a, b, 1, TransferFlags.None))[0]);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_balancing_transfer_decided_before_a_coordinator_crash_is_finished_by_the_next_leader_and_a_retry_answers_exists()
    {
        var (cluster, a, b) = Funded();
        var sweep = New(cluster, 0, a, b, 1000, TransferFlags.BalancingDebit);
        var request = cluster.Submit([sweep]);
        for (var steps = 0; !cluster.Shards[0].Store.EnumerateSideRecords().Any(r => r.Table == CrossShardTables.Coordinator); steps++)
        {
            cluster.Step();
            Assert.True(steps < 200, "the coordinator decides");
        }

        cluster.Shards[0].Crash(); // Decided: the next leader finishes it.
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Equal(CreateTransferResult.Exists, Run(cluster, sweep)[0]);
        Assert.Equal((UInt128)100, Record(cluster, sweep.Id).Amount);
        Assert.Equal((UInt128)100, Lookup(cluster, b).CreditsPosted);
        Assert.Empty(request.Failures.FindAll(f => !f.Contains("leadership", StringComparison.Ordinal)));
        CrossShardChecks.AssertConsistent(cluster);
    }

    private static bool Eventually(CrossShardCluster cluster, Transfer[] events)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            var request = cluster.Submit(events);
            Assert.True(cluster.RunUntilQuiet(20_000), cluster.Describe());
            // A chain retried after an unknown outcome answers exists, linked_event_failed: what is stored counts.
            if (Array.TrueForAll(events, t => cluster.Shards[cluster.ShardOf(t.Id)].Ledger.TryLookupTransfer(t.Id, out _)))
            {
                return true;
            }

            Attempts.Add($"attempt {attempt}: {string.Join(",", request.Results)} {string.Join(";", request.Failures)}");
        }

        return false;
    }

    // Another account on the same shard as <paramref name="account"/>.
    private static UInt128 LocalPeer(CrossShardCluster cluster, UInt128 account)
    {
        var peer = CrossShardWorkload.IdWithHome(cluster, cluster.ShardOf(account));
        cluster.CreateAccounts(LedgerFixture.NewAccount(peer));
        return peer;
    }
}

