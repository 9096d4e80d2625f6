using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>The protocol step by step on a calm network: commits, refusals with TigerBeetle's statuses, and recovery.</summary>
public sealed class CrossShardProtocolTests
{
    private static (CrossShardCluster Cluster, UInt128 A, UInt128 B) TwoShardsWithAccountsOnEach(int shardCount = 2)
    {
        var cluster = new CrossShardCluster(shardCount, seed: 1, CrossShardWorkload.Options);
        UInt128 a = 0, b = 0;
        for (UInt128 id = 1; a == 0 || b == 0; id++)
        {
            if (cluster.ShardOf(id) == 0 && a == 0)
            {
                a = id;
            }
            else if (cluster.ShardOf(id) == 1 && b == 0)
            {
                b = id;
            }
        }

        cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b));
        return (cluster, a, b);
    }

    [Fact]
    public void Transfer_between_two_shards_is_created_and_posted_on_both_legs()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        var request = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, a, b, 70)]);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.Equal(CreateTransferResult.Created, request.Results[0]);
        Assert.True(request.Known[0]);
        Assert.True(cluster.Shards[0].Ledger.TryLookupAccount(a, out var debit));
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var credit));
        Assert.Equal((UInt128)70, debit.DebitsPosted);
        Assert.Equal((UInt128)70, credit.CreditsPosted);
        Assert.True(cluster.Shards[1].Ledger.TryLookupTransfer(request.Events[0].Id, out _), "the credit shard keeps a copy for the account's queries");
        CrossShardChecks.AssertConsistent(cluster);
    }

    /// <summary>Steps until the request is answered; true when it was within the budget.</summary>
    private static bool StepUntilDone(CrossShardCluster cluster, ClientRequest request, int stepsMax)
    {
        for (var steps = 0; steps < stepsMax && !request.Done; steps++)
        {
            cluster.Step();
        }

        return request.Done;
    }

    [Fact]
    public void Created_is_answered_once_decided_with_the_credit_leg_fenced_until_it_is_posted()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        var request = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, a, b, 70)]);
        var decidedBeforeAnswer = false;
        for (var steps = 0; steps < 1000 && !request.Done; steps++)
        {
            cluster.Step();
            decidedBeforeAnswer |= !request.Done && cluster.Shards[0].Ledger.TryLookupTransfer(request.Events[0].Id, out _);
        }

        Assert.True(request.Done, cluster.Describe());
        Assert.True(decidedBeforeAnswer, "the home decides (stores the record) a round before the client is answered");
        Assert.Equal(CreateTransferResult.Created, request.Results[0]);

        // Answered before the participant's Finish: its leader fences the credit account, so no read or write of it can miss the transfer.
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var atAnswer));
        Assert.Equal(UInt128.Zero, atAnswer.CreditsPosted);
        Assert.True(cluster.Shards[1].Driver.IsAccountFenced(b), "the credit account is fenced while its leg is not finished");
        Assert.False(cluster.Shards[0].Driver.IsAccountFenced(a), "the home posted its side in the Decide: nothing to fence there");

        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var credit));
        Assert.Equal((UInt128)70, credit.CreditsPosted);
        Assert.Equal(UInt128.Zero, credit.CreditsPending);
        Assert.False(cluster.Shards[1].Driver.HasPreparedLegs(b));
        Assert.False(cluster.Shards[1].Driver.IsAccountFenced(b), "the fence ends with the Finish");
    }

    /// <summary>A transfer a → b answered on a cluster whose drivers tick every 50 steps, and the steps it took.</summary>
    private static (CrossShardCluster Cluster, UInt128 A, UInt128 B, ClientRequest Request) AnsweredWithSlowTicks()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        cluster.Step(); // The first step ticks: the drivers learn the time.
        cluster.TickIntervalNs = 50 * CrossShardCluster.StepNs;
        var request = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, a, b, 70)]);
        Assert.True(StepUntilDone(cluster, request, 40), cluster.Describe());
        Assert.Equal(CreateTransferResult.Created, request.Results[0]);
        return (cluster, a, b, request);
    }

    private static void Steps(CrossShardCluster cluster, int count)
    {
        for (var i = 0; i < count; i++)
        {
            cluster.Step();
        }
    }

    private static UInt128 CreditsPosted(CrossShardCluster cluster, int shard, UInt128 account)
    {
        Assert.True(cluster.Shards[shard].Ledger.TryLookupAccount(account, out var found));
        return found.CreditsPosted;
    }

    [Fact]
    public void A_fenced_leg_s_finish_waits_for_the_next_tick_when_nothing_else_is_proposed()
    {
        var (cluster, _, b, _) = AnsweredWithSlowTicks();
        Steps(cluster, 5);
        Assert.Empty(cluster.Shards[1].Log); // No entry of its own: the Finish waits to share a round with other work.
        Assert.Equal(UInt128.Zero, CreditsPosted(cluster, 1, b));

        Assert.True(cluster.RunUntilQuiet(200), cluster.Describe());
        Assert.Equal((UInt128)70, CreditsPosted(cluster, 1, b));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_read_that_finds_the_fence_makes_the_finish_go_out_at_once()
    {
        var (cluster, _, b, _) = AnsweredWithSlowTicks();
        Steps(cluster, 2);
        Assert.Empty(cluster.Shards[1].Log);

        Assert.True(cluster.Shards[1].Driver.HasDueProposals is false);
        Assert.True(cluster.Shards[1].Driver.IsAccountFenced(b), "the read must wait for the Finish");
        Assert.True(cluster.Shards[1].Driver.HasDueProposals, "a host runs a round for it");
        Steps(cluster, 6); // Fewer than a tick interval: the Finish went out in the next round.
        Assert.Equal((UInt128)70, CreditsPosted(cluster, 1, b));
        Assert.False(cluster.Shards[1].Driver.IsAccountFenced(b));
    }

    [Fact]
    public void A_lingering_finish_goes_out_with_the_shard_s_next_prepare()
    {
        var (cluster, a, b, _) = AnsweredWithSlowTicks();
        Steps(cluster, 2);
        Assert.Empty(cluster.Shards[1].Log);

        // Another transfer into shard 1 (another account there): its Prepare and the lingering Finish share one flush.
        var other = LedgerFixture.NewAccount(CrossShardWorkload.IdWithHome(cluster, 1));
        cluster.CreateAccounts(other);
        var second = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, a, other.Id, 5)]);
        Assert.True(StepUntilDone(cluster, second, 40), cluster.Describe());
        Assert.Equal(CreateTransferResult.Created, second.Results[0]);
        Assert.Equal((UInt128)70, CreditsPosted(cluster, 1, b));
    }

    [Fact]
    public void Refusal_is_answered_only_once_the_reservation_on_the_other_shard_is_released()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        var guarded = LedgerFixture.NewAccount(CrossShardWorkload.IdWithHome(cluster, 0));
        guarded.Flags = AccountFlags.DebitsMustNotExceedCredits;
        cluster.CreateAccounts(guarded);

        // The credit leg (shard 1) prepares and reserves; the debit leg (the home, shard 0) is refused.
        var request = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, guarded.Id, b, 5)]);
        var reserved = false;
        for (var steps = 0; steps < 1000 && !request.Done; steps++)
        {
            cluster.Step();
            reserved |= cluster.Shards[1].Ledger.TryLookupAccountWithReservations(b, out var during) && during.CreditsPending == 5;
        }

        Assert.True(request.Done, cluster.Describe());
        Assert.True(reserved, "the credit leg was reserved while the transaction was in doubt");
        Assert.Equal(CreateTransferResult.ExceedsCredits, request.Results[0]);
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var credit));
        Assert.Equal(UInt128.Zero, credit.CreditsPending);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Retry_of_a_decided_but_unfinished_transfer_answers_exists_only_after_the_finish()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        Transfer[] events = [CrossShardWorkload.Transfer(cluster, 0, a, b, 4)];
        var first = cluster.Submit(events);
        for (var steps = 0; !cluster.Shards[0].Ledger.TryLookupTransfer(events[0].Id, out _); steps++)
        {
            cluster.Step();
            Assert.True(steps < 1000, cluster.Describe());
        }

        // Decided at home, not yet finished on the credit shard: the retry must wait like the original.
        Assert.True(cluster.Shards[1].Driver.HasPreparedLegs(b));
        var retry = cluster.Submit(events);
        Assert.False(retry.Done);
        Assert.True(StepUntilDone(cluster, retry, 1000), cluster.Describe());
        Assert.True(first.Done);
        Assert.Equal(CreateTransferResult.Exists, retry.Results[0]);
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var credit));
        Assert.Equal((UInt128)4, credit.CreditsPosted);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_new_coordinator_leader_finishes_a_decided_transfer_before_a_retry_answers_exists()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        Transfer[] events = [CrossShardWorkload.Transfer(cluster, 0, a, b, 6)];
        var first = cluster.Submit(events);
        for (var steps = 0; !cluster.Shards[0].Ledger.TryLookupTransfer(events[0].Id, out _); steps++)
        {
            cluster.Step();
            Assert.True(steps < 1000, cluster.Describe());
        }

        cluster.Shards[0].Crash();
        var retry = cluster.Submit(events);
        Assert.True(StepUntilDone(cluster, retry, 2000), cluster.Describe());
        Assert.Equal(CreateTransferResult.Exists, retry.Results[0]);
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var credit));
        Assert.Equal((UInt128)6, credit.CreditsPosted);
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.True(first.Done);
        CrossShardChecks.AssertConsistent(cluster);
    }

    private static Transfer[] ChainWithSecondIdHomedOn(CrossShardCluster cluster, int secondHome, UInt128 debit, UInt128 credit, UInt128 secondId = default)
    {
        var first = CrossShardWorkload.Transfer(cluster, 0, debit, credit, 2);
        first.Flags = TransferFlags.Linked;
        var second = LedgerFixture.NewTransfer(secondId != 0 ? secondId : CrossShardWorkload.IdWithHome(cluster, secondHome), debit, credit, 3);
        return [first, second];
    }

    /// <summary>Three shards: a on 0, b on 1, and two accounts on shard 2 that no chain below touches.</summary>
    private static (CrossShardCluster Cluster, UInt128 A, UInt128 B, UInt128 C1, UInt128 C2) ThreeShards()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach(shardCount: 3);
        var c1 = CrossShardWorkload.IdWithHome(cluster, 2);
        var c2 = CrossShardWorkload.IdWithHome(cluster, 2);
        cluster.CreateAccounts(LedgerFixture.NewAccount(c1), LedgerFixture.NewAccount(c2));
        return (cluster, a, b, c1, c2);
    }

    [Fact]
    public void Chain_event_whose_id_exists_on_its_own_home_shard_gets_exists_with_different_fields()
    {
        var (cluster, a, b, c1, c2) = ThreeShards();
        var earlier = cluster.Submit([CrossShardWorkload.Transfer(cluster, 2, c1, c2, 9)]);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.Equal(CreateTransferResult.Created, earlier.Results[0]);

        // A chain homed on shard 0 (accounts on 0 and 1) whose second event reuses that id, homed on shard 2.
        var chain = cluster.Submit(ChainWithSecondIdHomedOn(cluster, 2, a, b, earlier.Events[0].Id));
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.ExistsWithDifferentDebitAccountId], chain.Results);
        Assert.True(cluster.Shards[0].Ledger.TryLookupAccount(a, out var debit));
        Assert.Equal(UInt128.Zero, debit.DebitsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Chain_event_ids_are_recorded_on_their_home_so_a_later_transfer_reusing_one_gets_exists()
    {
        var (cluster, a, b, c1, c2) = ThreeShards();
        var events = ChainWithSecondIdHomedOn(cluster, 2, a, b);
        var chain = cluster.Submit(events);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], chain.Results);
        Assert.True(cluster.Shards[2].Ledger.TryLookupTransfer(events[1].Id, out _), "the id's home holds the record");

        var later = cluster.Submit([LedgerFixture.NewTransfer(events[1].Id, c1, c2, 4)]);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.Equal(CreateTransferResult.ExistsWithDifferentDebitAccountId, later.Results[0]);
        Assert.True(cluster.Shards[2].Ledger.TryLookupAccount(c2, out var untouched));
        Assert.Equal(UInt128.Zero, untouched.CreditsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Local_transfer_reusing_an_id_claimed_by_a_chain_in_flight_waits_and_gets_exists()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        var b2 = CrossShardWorkload.IdWithHome(cluster, 1);
        cluster.CreateAccounts(LedgerFixture.NewAccount(b2));
        var events = ChainWithSecondIdHomedOn(cluster, 1, a, b);
        var chain = cluster.Submit(events);
        for (var steps = 0; !cluster.Shards[1].Store.EnumerateSideRecords().Any(r => r.Table == CrossShardTables.IdClaim); steps++)
        {
            cluster.Step();
            Assert.True(steps < 1000, cluster.Describe());
        }

        // Both accounts and the id on shard 1: the fast path, were the id not claimed by the chain.
        var local = LedgerFixture.NewTransfer(events[1].Id, b, b2, 1);
        var duplicate = cluster.Submit([local]);
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], chain.Results);
        Assert.Equal(CreateTransferResult.ExistsWithDifferentDebitAccountId, duplicate.Results[0]);
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b2, out var untouched));
        Assert.Equal(UInt128.Zero, untouched.CreditsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Local_transfer_reusing_the_id_of_a_cross_shard_transfer_in_flight_is_answered_after_its_finish()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        UInt128 a2 = a + 1;
        while (cluster.ShardOf(a2) != 0)
        {
            a2++;
        }

        cluster.CreateAccounts(LedgerFixture.NewAccount(a2));
        var transfer = CrossShardWorkload.Transfer(cluster, 0, a, b, 6);
        var first = cluster.Submit([transfer]);
        for (var steps = 0; !cluster.Shards[0].Ledger.TryLookupTransfer(transfer.Id, out _); steps++)
        {
            cluster.Step(); // until the home's Decide is applied: the id exists at home, the credit is not posted yet
            Assert.True(steps < 1000, cluster.Describe());
        }

        // Id and both accounts on shard 0: the fast path, were the id not an event of a transaction in flight.
        var reuse = cluster.Submit([LedgerFixture.NewTransfer(transfer.Id, a, a2, 1)]);
        for (var steps = 0; !reuse.Done; steps++)
        {
            cluster.Step();
            Assert.True(steps < 2000, cluster.Describe());
        }

        // Answered only now, so every leg of the first transfer is posted: a read of b after this answer sees it.
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var posted));
        Assert.Equal((UInt128)6, posted.CreditsPosted);
        Assert.Equal(CreateTransferResult.ExistsWithDifferentCreditAccountId, reuse.Results[0]);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.Equal(CreateTransferResult.Created, first.Results[0]);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Concurrent_duplicates_create_the_transfer_once_and_the_loser_gets_exists()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        Transfer[] events = [CrossShardWorkload.Transfer(cluster, 1, a, b, 5)];
        var first = cluster.Submit(events);
        var second = cluster.Submit(events);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.Equal(
            new[] { CreateTransferResult.Created, CreateTransferResult.Exists }.Order(),
            new[] { first.Results[0], second.Results[0] }.Order());
        Assert.True(cluster.Shards[0].Ledger.TryLookupAccount(a, out var debit));
        Assert.Equal((UInt128)5, debit.DebitsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Coordinator_crash_after_prepare_aborts_the_legs_after_the_abandonment_timeout()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        var request = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, a, b, 9)]);
        var steps = 0;
        while (cluster.Shards[1].Driver.PreparedTransactionCount == 0)
        {
            cluster.Step();
            Assert.True(++steps < 100, "the participant prepares");
        }

        Assert.True(cluster.Shards[1].Ledger.TryLookupAccountWithReservations(b, out var reserved));
        Assert.Equal((UInt128)9, reserved.CreditsPending);
        Assert.True(cluster.Shards[1].Driver.HasPreparedLegs(b));
        Assert.False(cluster.Shards[1].Driver.HasPreparedLegs(a));
        cluster.Shards[0].CrashLosingLog();
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Single(request.Failures);
        Assert.False(request.Known[0]);
        Assert.False(cluster.Shards[0].Ledger.TryLookupTransfer(request.Events[0].Id, out _));
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var released));
        Assert.Equal(UInt128.Zero, released.CreditsPending);
        Assert.Equal(UInt128.Zero, released.CreditsPosted);
        Assert.Contains(cluster.Shards[0].Store.EnumerateSideRecords(), r => r.Table == CrossShardTables.Tombstone);
        Assert.False(cluster.Shards[1].Driver.HasPreparedLegs(b));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Legs_of_a_replaced_coordinator_are_released_once_its_successor_is_heard_from()
    {
        // The home's leader dies before deciding; its successor drops every undecided transaction of the earlier term.
        // The participant learns the newer term from the successor's next Prepare and asks about the old leg at once,
        // instead of after the abandonment timeout.
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        var first = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, a, b, 9)]);
        for (var steps = 0; cluster.Shards[1].Driver.PreparedTransactionCount == 0; steps++)
        {
            cluster.Step();
            Assert.True(steps < 100, "the participant prepares");
        }

        cluster.Shards[0].CrashLosingLog();
        var second = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, a, b, 5)]);
        var abandonSteps = (int)(CrossShardWorkload.Options.AbandonTimeoutNs / CrossShardCluster.StepNs);
        var released = -1;
        for (var steps = 0; steps < abandonSteps && released < 0; steps++)
        {
            cluster.Step();
            Assert.True(cluster.Shards[1].Ledger.TryLookupAccountWithReservations(b, out var account));
            released = account.CreditsPending + account.CreditsPosted <= 5 && second.Done ? steps : -1;
        }

        Assert.True(released >= 0 && released < abandonSteps / 2, $"the old leg was released after {released} steps (abandonment: {abandonSteps})\n{cluster.Describe()}");
        Assert.Single(first.Failures);
        Assert.Equal(CreateTransferResult.Created, second.Results[0]);
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Equal((UInt128)5, cluster.LookupAccount(b).CreditsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Retry_after_an_unknown_outcome_with_the_same_id_creates_it_once()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        Transfer[] events = [CrossShardWorkload.Transfer(cluster, 0, a, b, 3)];
        var first = cluster.Submit(events);
        cluster.Step();
        cluster.Shards[0].Crash();
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        var retry = cluster.Submit(events);
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Contains(retry.Results[0], new[] { CreateTransferResult.Created, CreateTransferResult.Exists });
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var credit));
        Assert.Equal((UInt128)3, credit.CreditsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Classify_keeps_a_chain_whole_when_one_event_crosses_shards()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        UInt128 a2 = a + 1;
        while (cluster.ShardOf(a2) != 0)
        {
            a2++;
        }

        var local = CrossShardWorkload.Transfer(cluster, 0, a, a2, 1);
        var cross = CrossShardWorkload.Transfer(cluster, 0, a, b, 1);
        var linkedLocal = local;
        linkedLocal.Flags = TransferFlags.Linked;
        Transfer[] events = [local, linkedLocal, cross, local];
        var flags = new bool[events.Length];
        cluster.Shards[0].Driver.Classify(events, flags);
        Assert.Equal(new[] { false, true, true, false }, flags);
    }
}
