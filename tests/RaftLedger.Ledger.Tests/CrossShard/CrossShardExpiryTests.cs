using RaftLedger.Common;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// Expiry of pending transfers whose legs cross shards: the pending transfer's id home decides it with cluster
/// time (the local ledger's rule: expired from P.timestamp + timeout on), runs an expiry transaction that
/// releases the reservation on both legs, and a post or void decided after that point gets pending_transfer_expired.
/// </summary>
public sealed class CrossShardExpiryTests
{
    private const ulong SecondNs = LedgerLimits.NanosecondsPerSecond;

    private static (CrossShardCluster Cluster, UInt128 A, UInt128 B) ThreeShards(int seed = 3)
    {
        var cluster = new CrossShardCluster(3, seed, CrossShardWorkload.Options);
        var a = CrossShardWorkload.IdWithHome(cluster, 0);
        var b = CrossShardWorkload.IdWithHome(cluster, 1);
        cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b));
        cluster.Step(); // Hosts tick the drivers (cluster time) before submitting; shard 2's ledger is empty.
        return (cluster, a, b);
    }

    private static Transfer Timed(CrossShardCluster cluster, int home, UInt128 a, UInt128 b, UInt128 amount, uint timeoutSeconds)
    {
        var t = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, home), a, b, amount, TransferFlags.Pending);
        t.TimeoutSeconds = timeoutSeconds;
        return t;
    }

    private static CreateTransferResult[] RunAll(CrossShardCluster cluster, params Transfer[] events)
    {
        var request = cluster.Submit(events);
        Assert.True(cluster.RunUntilQuiet(5000), cluster.Describe());
        Assert.Empty(request.Failures);
        return request.Results;
    }

    private static void Advance(CrossShardCluster cluster, ulong ns)
    {
        cluster.AdvanceNs(ns);
        Assert.True(cluster.RunUntilQuiet(5000), cluster.Describe());
    }

    // Cluster time jumps to just before the target and the drivers are ticked at the target (hosts tick before they submit).
    private static void JumpTo(CrossShardCluster cluster, ulong targetNs)
    {
        cluster.AdvanceNs(targetNs - CrossShardCluster.StepNs - cluster.NowNs);
        cluster.Step();
        Assert.Equal(targetNs, cluster.NowNs);
    }

    // (debits pending, debits posted) of a, (credits pending, credits posted) of b, as stored (reservations included).
    private static (UInt128, UInt128, UInt128, UInt128) Balances(CrossShardCluster cluster, UInt128 a, UInt128 b)
    {
        Assert.True(cluster.Shards[cluster.ShardOf(a)].Ledger.TryLookupAccount(a, out var debit));
        Assert.True(cluster.Shards[cluster.ShardOf(b)].Ledger.TryLookupAccount(b, out var credit));
        return (debit.DebitsPending, debit.DebitsPosted, credit.CreditsPending, credit.CreditsPosted);
    }

    private static PendingStatus StatusAtHome(CrossShardCluster cluster, UInt128 id) => cluster.Shards[cluster.ShardOf(id)].Store.GetPendingStatus(id);

    [Theory]
    [InlineData(0)] // the home holds the debit account
    [InlineData(2)] // the home holds neither account
    public void A_pending_transfer_across_shards_expires_at_its_home_and_both_legs_are_released(int home)
    {
        var (cluster, a, b) = ThreeShards();
        var pending = Timed(cluster, home, a, b, 70, timeoutSeconds: 2);
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
        Assert.True(cluster.Shards[home].Ledger.TryGetCrossShardExpiry(pending.Id, out var expiresAtNs));
        Assert.Equal(cluster.Shards[home].Store.TryGetTransfer(pending.Id, out var stored) ? stored.Timestamp + (2 * SecondNs) : 0, expiresAtNs);

        Advance(cluster, 3 * SecondNs / 2); // before the expiry time: still reserved
        Assert.Equal(PendingStatus.Pending, StatusAtHome(cluster, pending.Id));
        Assert.Equal(((UInt128)70, UInt128.Zero, (UInt128)70, UInt128.Zero), Balances(cluster, a, b));
        Assert.Equal(0, cluster.Shards[home].Driver.ExpiriesStarted);

        Advance(cluster, 3 * SecondNs / 2);
        Assert.Equal(PendingStatus.Expired, StatusAtHome(cluster, pending.Id));
        Assert.Equal((UInt128.Zero, UInt128.Zero, UInt128.Zero, UInt128.Zero), Balances(cluster, a, b));
        Assert.False(cluster.Shards[home].Ledger.TryGetCrossShardExpiry(pending.Id, out _));
        Assert.Equal(1, cluster.Shards[home].Driver.ExpiriesStarted);

        // Posts and voids after the expiry, whichever shard their id lives on, get the local ledger's status.
        Assert.Equal([CreateTransferResult.PendingTransferExpired], RunAll(cluster, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, home), pending.Id, 0)));
        Assert.Equal([CreateTransferResult.PendingTransferExpired], RunAll(cluster, LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 1), pending.Id)));
        Assert.Equal((UInt128.Zero, UInt128.Zero, UInt128.Zero, UInt128.Zero), Balances(cluster, a, b));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_one_shard_pending_transfer_is_released_on_time_on_a_shard_that_gets_no_more_writes()
    {
        var cluster = new CrossShardCluster(3, seed: 5, CrossShardWorkload.Options);
        var a = CrossShardWorkload.IdWithHome(cluster, 0);
        var b = CrossShardWorkload.IdWithHome(cluster, 0);
        cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b));
        cluster.Step();
        var pending = Timed(cluster, 0, a, b, 70, timeoutSeconds: 2);
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
        Assert.False(cluster.Shards[0].Ledger.TryGetCrossShardExpiry(pending.Id, out _), "kept in the shard's own expiry table");

        Advance(cluster, 3 * SecondNs / 2); // before the expiry time: still reserved, nothing proposed for it
        Assert.Equal(((UInt128)70, UInt128.Zero, (UInt128)70, UInt128.Zero), Balances(cluster, a, b));
        Assert.Equal(0, cluster.Shards[0].Driver.ExpiryPulses);

        // Nothing else is sent: only the leader's pulse can apply a command on shard 0 now.
        Advance(cluster, SecondNs);
        Assert.Equal(PendingStatus.Expired, StatusAtHome(cluster, pending.Id));
        Assert.Equal((UInt128.Zero, UInt128.Zero, UInt128.Zero, UInt128.Zero), Balances(cluster, a, b));
        Assert.Equal(1, cluster.Shards[0].Driver.ExpiryPulses);

        Advance(cluster, 10 * SecondNs); // nothing due any more: no further pulse
        Assert.Equal(1, cluster.Shards[0].Driver.ExpiryPulses);
        Assert.Equal([CreateTransferResult.PendingTransferExpired], RunAll(cluster, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), pending.Id, 0)));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_post_decided_before_the_expiry_time_wins_and_the_expiry_releases_nothing()
    {
        var (cluster, a, b) = ThreeShards();
        var pending = Timed(cluster, 2, a, b, 70, timeoutSeconds: 2);
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
        Advance(cluster, 3 * SecondNs / 2);
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 2), pending.Id, 30)));
        Assert.False(cluster.Shards[2].Ledger.TryGetCrossShardExpiry(pending.Id, out _), "a posted transfer no longer expires");
        Advance(cluster, 3 * SecondNs);
        Assert.Equal(PendingStatus.Posted, StatusAtHome(cluster, pending.Id));
        Assert.Equal((UInt128.Zero, (UInt128)30, UInt128.Zero, (UInt128)30), Balances(cluster, a, b));
        Assert.Equal(0, cluster.Shards[2].Driver.ExpiriesStarted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_post_racing_the_expiry_either_commits_or_gets_pending_transfer_expired_and_exactly_one_wins()
    {
        var outcomes = new HashSet<CreateTransferResult>();
        for (var earlyMs = 0; earlyMs < 16; earlyMs++)
        {
            var (cluster, a, b) = ThreeShards(seed: 40 + earlyMs);
            var pending = Timed(cluster, 2, a, b, 70, timeoutSeconds: 1);
            Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
            Assert.True(cluster.Shards[2].Ledger.TryGetCrossShardExpiry(pending.Id, out var expiresAtNs));
            JumpTo(cluster, expiresAtNs - ((ulong)earlyMs * CrossShardCluster.StepNs));
            var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, earlyMs % 3), pending.Id, 30);
            var request = cluster.Submit([post]);
            Assert.True(cluster.RunUntilQuiet(5000), cluster.Describe());
            Assert.True(request.Failures.Count == 0, $"{earlyMs} ms early: {string.Join(", ", request.Failures)} {cluster.Describe()}");
            var result = request.Results[0];
            outcomes.Add(result);
            if (result == CreateTransferResult.Created)
            {
                Assert.Equal(PendingStatus.Posted, StatusAtHome(cluster, pending.Id));
                Assert.Equal((UInt128.Zero, (UInt128)30, UInt128.Zero, (UInt128)30), Balances(cluster, a, b));
            }
            else
            {
                Assert.Equal(CreateTransferResult.PendingTransferExpired, result);
                Assert.Equal(PendingStatus.Expired, StatusAtHome(cluster, pending.Id));
                Assert.Equal((UInt128.Zero, UInt128.Zero, UInt128.Zero, UInt128.Zero), Balances(cluster, a, b));
            }

            CrossShardChecks.AssertConsistent(cluster);
        }

        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.PendingTransferExpired], outcomes.Order());
    }

    [Fact]
    public void Under_chaos_a_post_or_void_racing_the_expiry_never_leaves_both_or_neither()
    {
        for (var seed = 0; seed < 40; seed++)
        {
            var (cluster, a, b) = ThreeShards(seed: 100 + seed);
            var pending = Timed(cluster, seed % 3, a, b, 70, timeoutSeconds: 1);
            Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
            Assert.True(cluster.Shards[seed % 3].Ledger.TryGetCrossShardExpiry(pending.Id, out var expiresAtNs));
            JumpTo(cluster, expiresAtNs - (10 * CrossShardCluster.StepNs));
            cluster.Chaos = Chaos.Heavy with { CrashPerMille = 40 };
            var id = CrossShardWorkload.IdWithHome(cluster, cluster.Random.Next(3));
            var request = cluster.Submit([seed % 2 == 0 ? LedgerFixture.Post(id, pending.Id, 30) : LedgerFixture.Void(id, pending.Id)]);
            for (var step = 0; step < 60; step++)
            {
                cluster.Step();
            }

            cluster.Chaos = Chaos.None;
            Assert.True(cluster.RunUntilQuiet(10_000), $"seed {seed}: {cluster.Describe()}");
            var status = StatusAtHome(cluster, pending.Id);
            Assert.True(status is PendingStatus.Posted or PendingStatus.Voided or PendingStatus.Expired, $"seed {seed}: {status}");
            var posted = status == PendingStatus.Posted ? (UInt128)30 : UInt128.Zero;
            Assert.Equal((UInt128.Zero, posted, UInt128.Zero, posted), Balances(cluster, a, b));
            if (request.Failures.Count == 0 && request.Done)
            {
                Assert.Equal(status == PendingStatus.Expired ? CreateTransferResult.PendingTransferExpired : CreateTransferResult.Created, request.Results[0]);
            }

            CrossShardChecks.AssertConsistent(cluster);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_expiry_survives_a_home_leader_crash_at_every_step_and_releases_once(bool losingLog)
    {
        var crashedBeforeDecide = false;
        var crashedAfterDecide = false;
        for (var crashAfterSteps = 0; crashAfterSteps < 14; crashAfterSteps++)
        {
            var (cluster, a, b) = ThreeShards(seed: 200 + crashAfterSteps);
            var pending = Timed(cluster, 0, a, b, 70, timeoutSeconds: 1);
            Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
            cluster.AdvanceNs(SecondNs + (SecondNs / 10));
            for (var step = 0; step < crashAfterSteps; step++)
            {
                cluster.Step();
            }

            var decided = StatusAtHome(cluster, pending.Id) == PendingStatus.Expired;
            crashedBeforeDecide |= !decided;
            crashedAfterDecide |= decided;
            if (losingLog)
            {
                cluster.Shards[0].CrashLosingLog();
            }
            else
            {
                cluster.Shards[0].Crash();
            }

            Assert.True(cluster.RunUntilQuiet(10_000), cluster.Describe());
            Assert.Equal(PendingStatus.Expired, StatusAtHome(cluster, pending.Id));
            Assert.Equal((UInt128.Zero, UInt128.Zero, UInt128.Zero, UInt128.Zero), Balances(cluster, a, b));
            CrossShardChecks.AssertConsistent(cluster);
        }

        Assert.True(crashedBeforeDecide && crashedAfterDecide, "the crashes hit both sides of the expiry's Decide");
    }

    [Fact]
    public void A_new_home_leader_finds_the_pending_transfers_to_expire_in_the_ledger()
    {
        var (cluster, a, b) = ThreeShards();
        var pending = Timed(cluster, 2, a, b, 70, timeoutSeconds: 1);
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
        cluster.Shards[2].Crash();
        Assert.Equal(0, cluster.Shards[2].Driver.ExpiriesTracked); // the new leader's memory is empty, not due soon
        Advance(cluster, 2 * SecondNs);
        Assert.Equal(PendingStatus.Expired, StatusAtHome(cluster, pending.Id));
        Assert.Equal(1, cluster.Shards[2].Driver.ExpiriesStarted);
        Assert.Equal((UInt128.Zero, UInt128.Zero, UInt128.Zero, UInt128.Zero), Balances(cluster, a, b));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Duplicated_and_reordered_expiry_messages_release_once()
    {
        for (var seed = 0; seed < 20; seed++)
        {
            var (cluster, a, b) = ThreeShards(seed: 300 + seed);
            var pending = Timed(cluster, seed % 3, a, b, 70, timeoutSeconds: 1);
            Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
            cluster.Chaos = new Chaos(LossPercent: 10, DuplicatePercent: 60, DelayStepsMax: 15, CrashPerMille: 0);
            cluster.AdvanceNs(SecondNs + (SecondNs / 10));
            Assert.True(cluster.RunUntilQuiet(10_000), cluster.Describe());
            cluster.Chaos = Chaos.None;
            Advance(cluster, SecondNs); // late duplicates arrive after the expiry finished
            Assert.Equal(PendingStatus.Expired, StatusAtHome(cluster, pending.Id));
            Assert.Equal((UInt128.Zero, UInt128.Zero, UInt128.Zero, UInt128.Zero), Balances(cluster, a, b));
            CrossShardChecks.AssertConsistent(cluster);
        }
    }

    [Fact]
    public void A_late_duplicate_prepare_and_finish_of_a_finished_expiry_release_nothing_again()
    {
        var (cluster, a, b) = ThreeShards();
        var pending = Timed(cluster, 2, a, b, 70, timeoutSeconds: 1);
        var keep = Timed(cluster, 2, a, b, 5, timeoutSeconds: 0); // still reserved: a second release would take it
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, keep));
        Advance(cluster, 2 * SecondNs);
        Assert.Equal(((UInt128)5, UInt128.Zero, (UInt128)5, UInt128.Zero), Balances(cluster, a, b));

        // A new participant leader gets the expiry's Prepare again, then its Finish(commit): nothing changes.
        var participant = cluster.Shards[1];
        var transactionId = (UInt128)0xE1;
        var leg = new Leg(0, LegSides.Credit | LegSides.Resolve, CrossShardExpiry.EventOf(pending));
        var results = new byte[LedgerLimits.ResultBytesMax];
        var prepare = CrossShardCommand.EncodePrepare([new PrepareItem(transactionId, 2, [leg])]);
        LedgerCommand.SetBatchTimestamp(prepare, participant.NextTimestamp(LedgerCommand.TimestampCount(prepare)));
        participant.Ledger.Apply(prepare, results);
        Assert.Equal(0, results[0]); // not prepared: already finished here
        Assert.Equal(LegOutcome.AlreadyFinished, (LegOutcome)results[1 + 5]);
        var finish = CrossShardCommand.EncodeFinish([new FinishItem(transactionId, Commit: true, CrossShardLimits.ParticipantLegsMax)]);
        LedgerCommand.SetBatchTimestamp(finish, participant.NextTimestamp(LedgerCommand.TimestampCount(finish)));
        participant.Ledger.Apply(finish, results);
        Assert.Equal(0, results[0]); // nothing to finish
        Assert.Equal(((UInt128)5, UInt128.Zero, (UInt128)5, UInt128.Zero), Balances(cluster, a, b));
    }

    [Fact]
    public void A_chains_pending_transfer_whose_id_lives_on_another_shard_expires_there()
    {
        var (cluster, a, b) = ThreeShards();
        var first = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, 0), a, b, 5, TransferFlags.Linked);
        var pending = Timed(cluster, 2, a, b, 20, timeoutSeconds: 1);
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], RunAll(cluster, first, pending));
        Assert.False(cluster.Shards[0].Ledger.TryGetCrossShardExpiry(pending.Id, out _), "the coordinator does not keep it");
        Assert.True(cluster.Shards[2].Ledger.TryGetCrossShardExpiry(pending.Id, out _), "its id's home does");
        Assert.Equal(((UInt128)20, (UInt128)5, (UInt128)20, (UInt128)5), Balances(cluster, a, b));
        Advance(cluster, 2 * SecondNs);
        Assert.Equal(PendingStatus.Expired, StatusAtHome(cluster, pending.Id));
        Assert.Equal((UInt128.Zero, (UInt128)5, UInt128.Zero, (UInt128)5), Balances(cluster, a, b));
        Assert.Equal([CreateTransferResult.PendingTransferExpired], RunAll(cluster, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 2), pending.Id, 0)));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_restored_snapshot_keeps_cross_shard_expiries_out_of_the_ledgers_own_index()
    {
        // Found by multi-shard seed 8: a snapshot restore indexed every pending transfer with a timeout for the
        // ledger's own expiry, which then released a cross-shard one here (its other account lives elsewhere).
        var (cluster, a, b) = ThreeShards();
        var pending = Timed(cluster, 0, a, b, 70, timeoutSeconds: 1);
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, pending));
        var home = cluster.Shards[0];
        using var snapshot = new MemoryStream();
        home.Ledger.WriteSnapshot(snapshot);
        snapshot.Position = 0;
        var restored = new LedgerStateMachine(new InMemoryLedgerStore());
        restored.RestoreSnapshot(snapshot);
        Assert.True(restored.TryGetCrossShardExpiry(pending.Id, out var expiresAtNs));

        // A batch after the expiry time: the ledger itself leaves it to the protocol.
        var results = new CreateTransferResult[1];
        restored.CreateTransfers([], expiresAtNs + SecondNs, results);
        Assert.Equal(PendingStatus.Pending, restored.GetPendingStatus(pending.Id));
        Assert.True(restored.TryLookupAccount(a, out var debit));
        Assert.Equal((UInt128)70, debit.DebitsPending);
    }

    [Fact]
    public void Pending_transfers_held_for_long_are_not_read_until_due_and_expire_when_their_time_comes()
    {
        var (cluster, a, b) = ThreeShards();
        var soon = Timed(cluster, 2, a, b, 10, timeoutSeconds: 1);
        var held = Enumerable.Range(0, 4).Select(i => Timed(cluster, 2, a, b, 20, timeoutSeconds: 3600 + (uint)i)).ToArray();
        Assert.All(RunAll(cluster, [soon, .. held]), r => Assert.Equal(CreateTransferResult.Created, r));
        var home = cluster.Shards[2].Ledger;
        home.CheckCrossShardExpiryOrder();

        // Read up to a bound, only those due by then come back; unbounded, all of them, earliest first.
        Assert.True(home.TryGetCrossShardExpiry(soon.Id, out var soonNs));
        Assert.Equal([soon.Id], home.EnumerateCrossShardExpiries(soonNs + (1000 * SecondNs)).Select(e => e.PendingId));
        Assert.Empty(home.EnumerateCrossShardExpiries(soonNs - 1));
        var all = home.EnumerateCrossShardExpiries(ulong.MaxValue).ToArray();
        Assert.Equal([soon.Id, .. held.Select(t => t.Id)], all.Select(e => e.PendingId));
        Assert.True(all.Zip(all.Skip(1)).All(p => p.First.ExpiresAtNs < p.Second.ExpiresAtNs));

        Advance(cluster, 2 * SecondNs);
        Assert.Equal(PendingStatus.Expired, StatusAtHome(cluster, soon.Id));
        Assert.Equal(0, cluster.Shards[2].Driver.ExpiriesTracked); // the held ones were never read into memory

        // A post and a void take theirs out of both expiry tables; the other two expire an hour later.
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 2), held[0].Id, 0)));
        Assert.Equal([CreateTransferResult.Created], RunAll(cluster, LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, 2), held[1].Id)));
        home.CheckCrossShardExpiryOrder();
        Assert.Equal([held[2].Id, held[3].Id], home.EnumerateCrossShardExpiries(ulong.MaxValue).Select(e => e.PendingId));

        Advance(cluster, 3610 * SecondNs);
        Assert.All(held[2..], t => Assert.Equal(PendingStatus.Expired, StatusAtHome(cluster, t.Id)));
        Assert.Empty(home.EnumerateCrossShardExpiries(ulong.MaxValue));
        Assert.Empty(cluster.Shards[2].Store.EnumerateSideRecords(CrossShardTables.ExpiryOrder));
        home.CheckCrossShardExpiryOrder();
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Pending_transfers_sharing_an_expiry_order_key_are_kept_and_removed_one_by_one()
    {
        // Same expiry time and same low 64 bits of the id: one record holds both ids.
        UInt128 first = new(1, 42);
        UInt128 second = new(2, 42);
        Assert.Equal(CrossShardExpiry.OrderKey(7, first), CrossShardExpiry.OrderKey(7, second));
        Assert.True(CrossShardExpiry.OrderKey(7, UInt128.MaxValue) < CrossShardExpiry.OrderKey(8, UInt128.Zero));

        var both = CrossShardExpiry.OrderWithId(CrossShardExpiry.OrderWithId(null, first), second);
        Assert.Equal([first, second], CrossShardExpiry.OrderIds(both));
        var left = CrossShardExpiry.OrderWithoutId(both, first);
        Assert.Equal([second], CrossShardExpiry.OrderIds(left));
        Assert.Null(CrossShardExpiry.OrderWithoutId(left!, second));
        Assert.Throws<InvariantViolationException>(() => CrossShardExpiry.OrderWithoutId(left!, first));
        Assert.Throws<InvalidDataException>(() => CrossShardExpiry.OrderIds(new byte[17]));
    }

    [Fact]
    public void Expiry_limits_fit_together()
    {
        Assert.True(CrossShardLimits.ExpiriesStartedPerTickMax <= CrossShardLimits.CoordinatorTransactionsMax);
        Assert.True(CrossShardLimits.ExpiriesStartedPerTickMax <= CrossShardLimits.ExpiriesTrackedMax);
    }
}
