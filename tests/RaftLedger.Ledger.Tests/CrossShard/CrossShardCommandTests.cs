using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>The cross-shard commands applied directly to one ledger: idempotency, tombstones, snapshots, encodings and limits.</summary>
public sealed class CrossShardCommandTests
{
    private static readonly UInt128 TransactionId = ((UInt128)1 << 64) | 7;

    private static (LedgerFixture Fixture, byte[] Results) LedgerWithAccounts()
    {
        var fixture = new LedgerFixture();
        fixture.CreatePlainAccounts(3);
        return (fixture, new byte[LedgerLimits.ResultBytesMax]);
    }

    private static LedgerApplyResult Apply(LedgerFixture fixture, byte[] command, byte[] results)
    {
        fixture.ClockNanoseconds = fixture.NextBatchTimestamp(LedgerCommand.TimestampCount(command));
        LedgerCommand.SetBatchTimestamp(command, fixture.ClockNanoseconds);
        return fixture.Ledger.Apply(command, results);
    }

    private static PrepareItem CreditLeg(UInt128 amount) =>
        new(TransactionId, Home: 1, [new Leg(0, LegSides.Credit, LedgerFixture.NewTransfer(500, 900, 2, amount))]);

    [Fact]
    public void Prepare_reserves_the_amount_and_a_duplicate_prepare_reserves_nothing_more()
    {
        var (fixture, results) = LedgerWithAccounts();
        var applied = Apply(fixture, CrossShardCommand.EncodePrepare([CreditLeg(40)]), results);
        Assert.Equal(1 + CrossShardCommand.LegReportBytes, applied.EventCount);
        Assert.Equal(1, results[0]);
        Apply(fixture, CrossShardCommand.EncodePrepare([CreditLeg(40)]), results);
        Assert.Equal(1, results[0]);
        Assert.True(fixture.Ledger.TryLookupAccountWithReservations(2, out var reserved));
        Assert.Equal((UInt128)40, reserved.CreditsPending);
        Assert.True(CrossShardCommand.TryGetPreparedRecord(fixture.Store, TransactionId, out var record));
        Assert.Equal(1, record.Home);
    }

    [Fact]
    public void A_second_transaction_of_the_same_event_is_busy_while_the_first_holds_legs_and_prepares_once_it_is_released()
    {
        // A retry's new transaction must not reserve (or be refused for funds) while an earlier attempt's legs
        // are still held here; once those are released it prepares normally, and nothing is held after.
        var (fixture, results) = LedgerWithAccounts();
        Apply(fixture, CrossShardCommand.EncodePrepare([CreditLeg(40)]), results);
        var retry = CreditLeg(40) with { TransactionId = TransactionId + 1 };
        Apply(fixture, CrossShardCommand.EncodePrepare([retry]), results);
        Assert.Equal(0, results[0]);
        Assert.Equal((byte)LegOutcome.IdBusy, results[1]);
        Assert.True(fixture.Ledger.TryLookupAccountWithReservations(2, out var held));
        Assert.Equal((UInt128)40, held.CreditsPending);
        Apply(fixture, CrossShardCommand.EncodeFinish([new FinishItem(TransactionId, Commit: false, CrossShardLimits.ParticipantLegsMax)]), results);
        Apply(fixture, CrossShardCommand.EncodePrepare([retry]), results);
        Assert.Equal(1, results[0]);
        Apply(fixture, CrossShardCommand.EncodeFinish([new FinishItem(retry.TransactionId, Commit: true, CrossShardLimits.ParticipantLegsMax)]), results);
        Assert.DoesNotContain(fixture.Store.EnumerateSideRecords(), r => r.Table == CrossShardTables.LegHold);
    }

    [Fact]
    public void Prepare_of_a_missing_account_is_refused_with_not_found_and_reserves_nothing()
    {
        var (fixture, results) = LedgerWithAccounts();
        var item = new PrepareItem(TransactionId, 1, [new Leg(0, LegSides.Debit, LedgerFixture.NewTransfer(500, 77, 2, 5))]);
        Apply(fixture, CrossShardCommand.EncodePrepare([item]), results);
        Assert.Equal(0, results[0]);
        Assert.Equal((byte)LegOutcome.NotFound, results[1]);
        Assert.False(CrossShardCommand.TryGetPreparedRecord(fixture.Store, TransactionId, out _));
    }

    [Fact]
    public void Finish_commit_posts_and_stores_a_copy_once_and_a_second_finish_does_nothing()
    {
        var (fixture, results) = LedgerWithAccounts();
        Apply(fixture, CrossShardCommand.EncodePrepare([CreditLeg(40)]), results);
        Apply(fixture, CrossShardCommand.EncodeFinish([new FinishItem(TransactionId, Commit: true, CrossShardLimits.ParticipantLegsMax)]), results);
        Assert.Equal(1, results[0]);
        Apply(fixture, CrossShardCommand.EncodeFinish([new FinishItem(TransactionId, Commit: true, CrossShardLimits.ParticipantLegsMax)]), results);
        Assert.Equal(0, results[0]);
        var account = fixture.AccountOf(2);
        Assert.Equal((UInt128)40, account.CreditsPosted);
        Assert.Equal(UInt128.Zero, account.CreditsPending);
        Assert.Equal((UInt128)40, fixture.TransferOf(500).Amount);
        Assert.False(CrossShardCommand.TryGetPreparedRecord(fixture.Store, TransactionId, out _));
    }

    [Fact]
    public void A_late_duplicate_prepare_after_the_commit_is_refused_as_already_finished()
    {
        var (fixture, results) = LedgerWithAccounts();
        Apply(fixture, CrossShardCommand.EncodePrepare([CreditLeg(40)]), results);
        Apply(fixture, CrossShardCommand.EncodeFinish([new FinishItem(TransactionId, Commit: true, CrossShardLimits.ParticipantLegsMax)]), results);
        Apply(fixture, CrossShardCommand.EncodePrepare([CreditLeg(40)]), results);
        Assert.Equal(0, results[0]);
        Assert.Equal((byte)LegOutcome.AlreadyFinished, results[6]);
        Assert.Equal(UInt128.Zero, fixture.AccountOf(2).CreditsPending);
    }

    [Fact]
    public void Finish_abort_releases_the_reservation_without_a_copy()
    {
        var (fixture, results) = LedgerWithAccounts();
        Apply(fixture, CrossShardCommand.EncodePrepare([CreditLeg(40)]), results);
        Apply(fixture, CrossShardCommand.EncodeFinish([new FinishItem(TransactionId, Commit: false, CrossShardLimits.ParticipantLegsMax)]), results);
        Assert.Equal(UInt128.Zero, fixture.AccountOf(2).CreditsPending);
        Assert.Equal(UInt128.Zero, fixture.AccountOf(2).CreditsPosted);
        Assert.False(fixture.Ledger.TryLookupTransfer(500, out _));
    }

    [Fact]
    public void Decide_after_a_tombstone_loses_and_the_home_legs_are_released()
    {
        var (fixture, results) = LedgerWithAccounts();
        var t = LedgerFixture.NewTransfer(600, 1, 2, 10);
        var legs = new PrepareItem(TransactionId, 0, [new Leg(0, LegSides.Debit | LegSides.Credit, t)]);
        Apply(fixture, CrossShardCommand.EncodePrepare([legs]), results);
        Apply(fixture, CrossShardCommand.EncodeAbortIfUndecided([TransactionId]), results);
        Assert.Equal((byte)CrossShardDecision.Aborted, results[0]);
        var decide = new DecideItem(TransactionId, DecideFlags.HomeHasLegs, [], [t], [(byte)CreateTransferResult.Created]);
        Apply(fixture, CrossShardCommand.EncodeDecide([decide]), results);
        Assert.Equal((byte)CrossShardDecision.AlreadyDecided, results[0]);
        Assert.False(fixture.Ledger.TryLookupTransfer(600, out _));
        Assert.Equal(UInt128.Zero, fixture.AccountOf(1).DebitsPending);
        Assert.Equal(UInt128.Zero, fixture.AccountOf(1).DebitsPosted);
    }

    [Fact]
    public void Decide_commit_writes_the_record_posts_home_legs_and_a_query_then_answers_committed()
    {
        var (fixture, results) = LedgerWithAccounts();
        var t = LedgerFixture.NewTransfer(600, 1, 900, 10); // Account 900 lives on participant 3.
        Apply(fixture, CrossShardCommand.EncodePrepare([new PrepareItem(TransactionId, 0, [new Leg(0, LegSides.Debit, t)])]), results);
        var decide = new DecideItem(TransactionId, DecideFlags.HomeHasLegs, [3], [t], [(byte)CreateTransferResult.Created]);
        Apply(fixture, CrossShardCommand.EncodeDecide([decide]), results);
        Assert.Equal((byte)CrossShardDecision.Committed, results[0]);
        Assert.Equal((byte)CreateTransferResult.Created, results[1]);
        Assert.Equal((UInt128)10, fixture.AccountOf(1).DebitsPosted);
        Assert.Equal(UInt128.Zero, fixture.AccountOf(1).DebitsPending);
        Apply(fixture, CrossShardCommand.EncodeAbortIfUndecided([TransactionId]), results);
        Assert.Equal((byte)CrossShardDecision.Committed, results[0]);
        Assert.True(CrossShardCommand.TryGetCoordinatorRecord(fixture.Store, TransactionId, out var record));
        Assert.Equal([3], record.Participants);
        Apply(fixture, CrossShardCommand.EncodeRetire([TransactionId]), results);
        Assert.Equal(1, results[0]);
        Assert.False(CrossShardCommand.TryGetCoordinatorRecord(fixture.Store, TransactionId, out _));
    }

    [Fact]
    public void Snapshot_and_fingerprint_carry_prepared_legs()
    {
        var (fixture, results) = LedgerWithAccounts();
        var before = fixture.Ledger.Fingerprint();
        Apply(fixture, CrossShardCommand.EncodePrepare([CreditLeg(40)]), results);
        var after = fixture.Ledger.Fingerprint();
        Assert.NotEqual(before, after);
        using var snapshot = new MemoryStream();
        fixture.Ledger.WriteSnapshot(snapshot);
        snapshot.Position = 0;
        var restored = new LedgerFixture();
        restored.Ledger.RestoreSnapshot(snapshot);
        Assert.Equal(after, restored.Ledger.Fingerprint());
        Assert.True(CrossShardCommand.TryGetPreparedRecord(restored.Store, TransactionId, out var record));
        Assert.Equal((UInt128)40, record.Legs[0].Transfer.Amount);
    }

    [Fact]
    public void Messages_round_trip_and_corrupt_ones_are_dropped()
    {
        var message = new CrossShardMessage(CrossShardMessageKind.Prepared, 2, 1, TransactionId)
        {
            Prepared = false,
            Reports = [new LegReport(3, new SideReport(LegOutcome.LedgerMismatch, 9), SideReport.Ok)],
        };
        var bytes = message.Encode();
        Assert.True(CrossShardMessage.TryDecode(bytes, out var decoded));
        Assert.Equal(message.Reports, decoded.Reports);
        Assert.Equal((message.Kind, message.Home, message.From, message.TransactionId), (decoded.Kind, decoded.Home, decoded.From, decoded.TransactionId));
        Assert.False(CrossShardMessage.TryDecode(bytes.AsSpan(0, bytes.Length - 1), out _));
        var wrongVersion = (byte[])bytes.Clone();
        wrongVersion[0] = 9;
        Assert.False(CrossShardMessage.TryDecode(wrongVersion, out _));

        var ledger = new LedgerStateMachine(new InMemoryLedgerStore());
        var driver = new CrossShardDriver(1, 3, ledger, CrossShardOptions.Default);
        driver.OnRoleChanged(true, 1);
        driver.OnMessage(2, wrongVersion);
        driver.OnMessage(0, bytes); // says it is from shard 1, arrives from shard 0
        Assert.Equal(2, driver.MessagesDropped);
    }

    private static DecideItem FullDecide(int[] participants, Transfer[] events)
    {
        var n = events.Length;
        return new DecideItem(TransactionId, DecideFlags.HomeInline | DecideFlags.ExpiresElsewhere | DecideFlags.Clamped | DecideFlags.PendingElsewhere,
            participants, events, new byte[n])
        {
            HomeSides = new LegSides[n],
            Remote = new LegReport[n],
            ExpiresElsewhere = Enumerable.Repeat(true, n).ToArray(),
            Guards = new BalancingGuard[n],
            Requested = new UInt128[n],
            PendingExpiresAt = new ulong[n],
        };
    }

    [Fact]
    public void A_decide_of_a_full_chain_round_trips_its_expires_elsewhere_mask_and_a_finish_its_copy_count()
    {
        var events = Enumerable.Range(0, CrossShardLimits.TransactionEventsMax).Select(i => new Transfer { Id = (UInt128)(i + 1) }).ToArray();
        var mask = events.Select((_, i) => i % 3 == 0 || i == events.Length - 1).ToArray();
        var item = new DecideItem(TransactionId, DecideFlags.ExpiresElsewhere, [1, 2], events, new byte[events.Length]) { ExpiresElsewhere = mask };
        var decoded = LedgerStateMachine.DecodeDecide(CrossShardCommand.EncodeDecide([item]).AsSpan(LedgerLimits.CommandHeaderBytes))[0];
        Assert.Equal(mask, decoded.ExpiresElsewhere);
        Assert.True(decoded.ExpiresElsewhereAt(events.Length - 1));
        Assert.False(decoded.ExpiresElsewhereAt(1));

        var finish = CrossShardCommand.EncodeFinish([new FinishItem(TransactionId, true, 5000), new FinishItem(TransactionId + 1, false, 0)]);
        Assert.Equal(5001, LedgerCommand.TimestampCount(finish));
    }

    [Fact]
    public void Limits_fit_together()
    {
        var fullLegs = new Leg[CrossShardLimits.TransactionEventsMax];
        var fullReports = new LegReport[CrossShardLimits.TransactionEventsMax];
        var prepare = new CrossShardMessage(CrossShardMessageKind.Prepare, 0, 0, TransactionId) { Legs = fullLegs.Select(_ => new Leg(0, LegSides.Debit, default)).ToArray() };
        Assert.True(prepare.Encode().Length <= CrossShardLimits.MessageBytesMax);
        Assert.True(new CrossShardMessage(CrossShardMessageKind.Prepared, 0, 0, TransactionId) { Reports = fullReports }.Encode().Length <= CrossShardLimits.MessageBytesMax);
        Assert.Equal(LedgerLimits.BatchEventsMax, CrossShardLimits.TransactionEventsMax); // any chain a request holds is one transaction
        Assert.True(CrossShardLimits.CoordinatorEventsMax >= CrossShardLimits.TransactionEventsMax, "an idle coordinator takes a full chain");
        Assert.True(1 + (CrossShardLimits.ParticipantLegsMax * CrossShardCommand.LegReportBytes) <= LedgerLimits.ResultBytesMax, "one full prepare's results fit");
        Assert.True(CrossShardCommand.WritePreparedRecord(0, 0, prepare.Legs).Length <= LedgerLimits.SideRecordBytesMax, "a full prepared record fits the side table");
        Assert.True(CrossShardLimits.ParticipantLegsMax <= LedgerLimits.BatchEventsMax, "one full finish item's timestamps fit a command");
        var fullParticipants = Enumerable.Range(0, CrossShardLimits.TransactionShardsMax).ToArray();
        var fullEvents = new Transfer[CrossShardLimits.TransactionEventsMax];
        Assert.True(CrossShardCommand.WriteCoordinatorRecord(CrossShardDecision.Committed, fullParticipants, fullEvents).Length <= LedgerLimits.SideRecordBytesMax, "a full coordinator record fits the side table");
        Assert.True(CrossShardLimits.RecentlyFinishedMax >= CrossShardLimits.ParticipantTransactionsMax, "a participant remembers at least as many finished transactions as it can hold prepared");
        Assert.True(1 + CrossShardLimits.TransactionEventsMax <= LedgerLimits.ResultBytesMax, "one full decide's results fit");
        Assert.True(CrossShardLimits.TransactionEventsMax <= LedgerLimits.BatchEventsMax, "one full decide's timestamps fit a command");

        // The largest items, encoded, fit one cross-shard command, which is the largest ledger command of all.
        var clampedLegs = fullLegs.Select((_, i) => new Leg((ushort)i, LegSides.Debit, default) { Guard = BalancingGuard.Clamped }).ToArray();
        var fullPrepare = CrossShardCommand.EncodePrepare([new PrepareItem(TransactionId, 0, clampedLegs)]);
        Assert.Equal(CrossShardLimits.PrepareItemBytesMax, CrossShardCommand.PrepareItemBytes(new PrepareItem(TransactionId, 0, clampedLegs)));
        Assert.True(fullPrepare.Length <= CrossShardLimits.CommandBytesMax, "a full prepare fits a command");
        var fullDecide = FullDecide(fullParticipants, fullEvents);
        Assert.Equal(CrossShardCommand.DecideItemBytes(fullDecide) + LedgerLimits.CommandHeaderBytes + 2, CrossShardCommand.EncodeDecide([fullDecide]).Length);
        Assert.True(CrossShardCommand.DecideItemBytes(fullDecide) <= CrossShardLimits.DecideItemBytesMax, "a full decide item is within its bound");
        Assert.True(CrossShardCommand.EncodeDecide([fullDecide]).Length <= CrossShardLimits.CommandBytesMax, "a full decide fits a command");
        Assert.True(LedgerLimits.CommandBytesMax <= CrossShardLimits.CommandBytesMax);
        Assert.True(CrossShardLimits.PrepareItemBytesMax + CrossShardLimits.MessageHeaderBytes <= CrossShardLimits.MessageBytesMax, "a full prepare's legs fit one message");
        Assert.True(LedgerCommand.TryReadHeader(fullPrepare, out _, out _, out _), "a full prepare is a valid command");
        Assert.True(CrossShardOptions.Default.CoordinatorTimeoutNs < CrossShardOptions.Default.AbandonTimeoutNs);
        Assert.Throws<ArgumentException>(() => new CrossShardOptions { RetryIntervalNs = 10, AbandonTimeoutNs = 20 }.Validate());
    }
}
