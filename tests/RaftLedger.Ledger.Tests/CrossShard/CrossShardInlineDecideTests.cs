using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// Decide with the home shard's own sides checked and posted in the decision's write (DecideFlags.HomeInline): the
/// home's checks run at Decide, combine with the other participants' reports, and nothing is reserved or recorded on
/// the home but the coordinator record.
/// </summary>
public sealed class CrossShardInlineDecideTests
{
    private static readonly UInt128 TransactionId = ((UInt128)3 << 64) | 11;

    private static LedgerApplyResult Apply(LedgerFixture fixture, byte[] command, byte[] results)
    {
        fixture.ClockNanoseconds = fixture.NextBatchTimestamp(LedgerCommand.TimestampCount(command));
        LedgerCommand.SetBatchTimestamp(command, fixture.ClockNanoseconds);
        return fixture.Ledger.Apply(command, results);
    }

    // The home holds debit account 1 (here, with a debit limit); credit account 900 lives on participant shard 2.
    private static LedgerFixture HomeWithLimitedDebitAccount()
    {
        var fixture = new LedgerFixture();
        Assert.Equal(CreateAccountResult.Created, fixture.CreateAccount(LedgerFixture.NewAccount(1, flags: AccountFlags.DebitsMustNotExceedCredits)));
        Assert.Equal(CreateAccountResult.Created, fixture.CreateAccount(LedgerFixture.NewAccount(2)));
        Assert.Equal(CreateTransferResult.Created, fixture.CreateTransfer(LedgerFixture.NewTransfer(100, 2, 1, 50)));
        return fixture;
    }

    private static DecideItem InlineItem(Transfer[] events, SideReport remoteCredit)
    {
        var statuses = new byte[events.Length];
        return new DecideItem(TransactionId, DecideFlags.HomeInline, [2], events, statuses)
        {
            HomeSides = events.Select(_ => LegSides.Debit).ToArray(),
            Remote = events.Select((_, i) => new LegReport((ushort)i, SideReport.Ok, remoteCredit)).ToArray(),
        };
    }

    [Fact]
    public void Inline_decide_round_trips_its_home_sides_and_remote_reports()
    {
        var item = InlineItem([LedgerFixture.NewTransfer(500, 1, 900, 5)], new SideReport(LegOutcome.LedgerMismatch, 7));
        var fixture = HomeWithLimitedDebitAccount();
        var results = new byte[LedgerLimits.ResultBytesMax];
        Apply(fixture, CrossShardCommand.EncodeDecide([item]), results);

        // The remote credit side's ledger mismatch decides the status: the item's reports reached the apply intact.
        Assert.Equal((byte)CrossShardDecision.Aborted, results[0]);
        Assert.Equal((byte)CreateTransferResult.AccountsMustHaveTheSameLedger, results[1]);
    }

    [Fact]
    public void Inline_decide_commits_and_posts_the_home_side_with_no_side_records_but_the_coordinator_record()
    {
        var fixture = HomeWithLimitedDebitAccount();
        var results = new byte[LedgerLimits.ResultBytesMax];
        Apply(fixture, CrossShardCommand.EncodeDecide([InlineItem([LedgerFixture.NewTransfer(500, 1, 900, 30)], SideReport.Ok)]), results);
        Assert.Equal((byte)CrossShardDecision.Committed, results[0]);
        Assert.Equal((byte)CreateTransferResult.Created, results[1]);
        var account = fixture.AccountOf(1);
        Assert.Equal((UInt128)30, account.DebitsPosted);
        Assert.Equal(UInt128.Zero, account.DebitsPending);
        Assert.Equal((UInt128)30, fixture.TransferOf(500).Amount);
        var tables = fixture.Store.EnumerateSideRecords().Select(r => r.Table).ToArray();
        Assert.Equal([CrossShardTables.Coordinator], tables);
    }

    [Fact]
    public void Inline_decide_checks_a_chain_against_the_home_account_and_leaves_it_unchanged_when_a_later_event_fails()
    {
        // 30 then 30 more: the second exceeds the 50 of credits once the first counts as posted (a chain's view).
        var fixture = HomeWithLimitedDebitAccount();
        var results = new byte[LedgerLimits.ResultBytesMax];
        var chain = new[]
        {
            LedgerFixture.NewTransfer(500, 1, 900, 30, TransferFlags.Linked),
            LedgerFixture.NewTransfer(501, 1, 900, 30),
        };
        Apply(fixture, CrossShardCommand.EncodeDecide([InlineItem(chain, SideReport.Ok)]), results);
        Assert.Equal((byte)CrossShardDecision.Aborted, results[0]);
        Assert.Equal((byte)CreateTransferResult.LinkedEventFailed, results[1]);
        Assert.Equal((byte)CreateTransferResult.ExceedsCredits, results[2]);
        var account = fixture.AccountOf(1);
        Assert.Equal(UInt128.Zero, account.DebitsPosted);
        Assert.Equal(UInt128.Zero, account.DebitsPending);
        Assert.False(fixture.Ledger.TryLookupTransfer(500, out _));
    }

    [Fact]
    public void Inline_decide_aborts_without_statuses_while_an_earlier_attempt_holds_legs_of_the_event_here()
    {
        var fixture = HomeWithLimitedDebitAccount();
        var results = new byte[LedgerLimits.ResultBytesMax];
        var transfer = LedgerFixture.NewTransfer(500, 1, 900, 5);
        var orphan = new PrepareItem(TransactionId - 1, 0, [new Leg(0, LegSides.Debit, transfer)]);
        Apply(fixture, CrossShardCommand.EncodePrepare([orphan]), results);
        Assert.Equal(1, results[0]);
        Apply(fixture, CrossShardCommand.EncodeDecide([InlineItem([transfer], SideReport.Ok)]), results);
        Assert.Equal((byte)CrossShardDecision.AbortedWithoutStatus, results[0]);
        Assert.Equal(UInt128.Zero, fixture.AccountOf(1).DebitsPosted);
    }
}
