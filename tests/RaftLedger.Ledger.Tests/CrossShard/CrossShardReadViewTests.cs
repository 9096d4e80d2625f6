using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// What clients read while a cross-shard leg is prepared but undecided: lookups, balance history and account
/// transfers leave its reservation out (no prefix of committed transfers holds it), while the ledger's own
/// checks keep counting it. Commands applied directly to one ledger.
/// </summary>
public sealed class CrossShardReadViewTests
{
    private const ulong Guarded = 1;
    private const ulong Other = 2;
    private const ulong Funder = 3;
    private const ulong WithHistory = 4;
    private static readonly UInt128 FirstTransaction = ((UInt128)1 << 64) | 7;
    private static readonly UInt128 SecondTransaction = ((UInt128)1 << 64) | 8;

    private readonly LedgerFixture fixture = new();
    private readonly byte[] results = new byte[LedgerLimits.ResultBytesMax];

    public CrossShardReadViewTests()
    {
        fixture.CreateAccounts(
            LedgerFixture.NewAccount(Guarded, flags: AccountFlags.DebitsMustNotExceedCredits),
            LedgerFixture.NewAccount(Other),
            LedgerFixture.NewAccount(Funder),
            LedgerFixture.NewAccount(WithHistory, flags: AccountFlags.History));
        Assert.Equal(CreateTransferResult.Created, fixture.CreateTransfer(LedgerFixture.NewTransfer(100, Funder, Guarded, 10)));
    }

    private void Apply(byte[] command)
    {
        fixture.ClockNanoseconds = fixture.NextBatchTimestamp(LedgerCommand.TimestampCount(command));
        LedgerCommand.SetBatchTimestamp(command, fixture.ClockNanoseconds);
        fixture.Ledger.Apply(command, results);
    }

    private void Prepare(UInt128 transactionId, params Leg[] legs)
    {
        Apply(CrossShardCommand.EncodePrepare([new PrepareItem(transactionId, Home: 5, legs)]));
        Assert.Equal(1, results[0]);
    }

    private void Finish(UInt128 transactionId, bool commit) =>
        Apply(CrossShardCommand.EncodeFinish([new FinishItem(transactionId, commit, CrossShardLimits.ParticipantLegsMax)]));

    private Account Raw(UInt128 id)
    {
        Assert.True(fixture.Ledger.TryLookupAccountWithReservations(id, out var account));
        return account;
    }

    private Account Looked(UInt128 id)
    {
        var found = new Account[1];
        Assert.Equal(1, fixture.Ledger.LookupAccounts([id], found));
        Assert.Equal(fixture.AccountOf(id), found[0]);
        return found[0];
    }

    private AccountBalance[] History(UInt128 id)
    {
        var into = new AccountBalance[LedgerLimits.QueryResultsMax];
        var filter = new AccountFilter { AccountId = id, Limit = (uint)into.Length, Flags = AccountFilterFlags.Debits | AccountFilterFlags.Credits };
        return into[..fixture.Ledger.GetAccountBalances(filter, into)];
    }

    [Fact]
    public void An_undecided_debit_leg_is_hidden_from_lookups_but_the_limit_check_still_counts_it()
    {
        Prepare(FirstTransaction, new Leg(0, LegSides.Debit, LedgerFixture.NewTransfer(500, Guarded, 900, 8)));

        Assert.Equal((UInt128)8, Raw(Guarded).DebitsPending);
        var seen = Looked(Guarded);
        Assert.Equal(UInt128.Zero, seen.DebitsPending);
        Assert.Equal(UInt128.Zero, seen.DebitsPosted);
        Assert.Equal((UInt128)10, seen.CreditsPosted);
        Assert.Equal(1, fixture.Ledger.CrossShardUnfinishedCount());

        // 8 reserved + 5 > 10 credits: refused although a client sees 10 credits and no debits.
        Assert.Equal(CreateTransferResult.ExceedsCredits, fixture.CreateTransfer(LedgerFixture.NewTransfer(101, Guarded, Other, 5)));

        Finish(FirstTransaction, commit: true);
        Assert.Equal((UInt128)8, Looked(Guarded).DebitsPosted);
        Assert.Equal(UInt128.Zero, Looked(Guarded).DebitsPending);
        Assert.Equal(Raw(Guarded), Looked(Guarded));
        Assert.False(fixture.Store.TryGetSideRecord(CrossShardTables.Reserved, Guarded, out _));
        Assert.Equal(0, fixture.Ledger.CrossShardUnfinishedCount());
    }

    [Fact]
    public void Pending_two_phase_transfers_keep_showing_next_to_a_hidden_reservation()
    {
        Assert.Equal(CreateTransferResult.Created, fixture.CreateTransfer(LedgerFixture.NewTransfer(101, Funder, Other, 3, TransferFlags.Pending)));
        Prepare(FirstTransaction, new Leg(0, LegSides.Credit, LedgerFixture.NewTransfer(500, 900, Other, 40)));

        Assert.Equal((UInt128)43, Raw(Other).CreditsPending);
        Assert.Equal((UInt128)3, Looked(Other).CreditsPending);

        Finish(FirstTransaction, commit: false);
        Assert.Equal((UInt128)3, Looked(Other).CreditsPending);
        Assert.Equal(UInt128.Zero, Looked(Other).CreditsPosted);
        Assert.Equal(Raw(Other), Looked(Other));
    }

    [Fact]
    public void A_chains_legs_on_one_account_are_hidden_on_both_sides_until_released()
    {
        Prepare(
            FirstTransaction,
            new Leg(0, LegSides.Credit, LedgerFixture.NewTransfer(500, 900, Other, 5)),
            new Leg(1, LegSides.Debit, LedgerFixture.NewTransfer(501, Other, 901, 3)));
        Prepare(SecondTransaction, new Leg(0, LegSides.Credit, LedgerFixture.NewTransfer(502, 902, Other, 2)));

        Assert.Equal((UInt128)7, Raw(Other).CreditsPending);
        Assert.Equal((UInt128)3, Raw(Other).DebitsPending);
        Assert.Equal(UInt128.Zero, Looked(Other).CreditsPending);
        Assert.Equal(UInt128.Zero, Looked(Other).DebitsPending);

        Finish(FirstTransaction, commit: false);
        Assert.Equal((UInt128)2, Raw(Other).CreditsPending);
        Assert.Equal(UInt128.Zero, Looked(Other).CreditsPending);
        Assert.Equal(1, fixture.Ledger.CrossShardUnfinishedCount());

        Finish(SecondTransaction, commit: true);
        Assert.Equal((UInt128)2, Looked(Other).CreditsPosted);
        Assert.Equal(Raw(Other), Looked(Other));
        Assert.False(fixture.Store.TryGetSideRecord(CrossShardTables.Reserved, Other, out _));
    }

    [Fact]
    public void Balance_history_and_account_transfers_never_show_an_undecided_leg()
    {
        Prepare(FirstTransaction, new Leg(0, LegSides.Credit, LedgerFixture.NewTransfer(500, 900, WithHistory, 40)));
        Prepare(SecondTransaction, new Leg(0, LegSides.Credit, LedgerFixture.NewTransfer(501, 901, WithHistory, 7)));
        Assert.Empty(History(WithHistory));
        var transfers = new Transfer[8];
        var filter = new AccountFilter { AccountId = WithHistory, Limit = 8, Flags = AccountFilterFlags.Debits | AccountFilterFlags.Credits };
        Assert.Equal(0, fixture.Ledger.GetAccountTransfers(filter, transfers));

        // A local transfer while both legs are reserved: its history entry shows committed amounts only.
        Assert.Equal(CreateTransferResult.Created, fixture.CreateTransfer(LedgerFixture.NewTransfer(102, Funder, WithHistory, 5)));
        Assert.Equal(UInt128.Zero, History(WithHistory)[^1].CreditsPending);
        Assert.Equal((UInt128)5, History(WithHistory)[^1].CreditsPosted);

        // Committing one leg: its entry shows it posted and still not the other, undecided one.
        Finish(FirstTransaction, commit: true);
        Assert.Equal((UInt128)45, History(WithHistory)[^1].CreditsPosted);
        Assert.Equal(UInt128.Zero, History(WithHistory)[^1].CreditsPending);
        Assert.Equal(2, fixture.Ledger.GetAccountTransfers(filter, transfers));

        // Releasing the other leaves no trace in the history or the transfers.
        Finish(SecondTransaction, commit: false);
        Assert.Equal(2, History(WithHistory).Length);
        Assert.Equal(2, fixture.Ledger.GetAccountTransfers(filter, transfers));
        Assert.Equal(Raw(WithHistory), Looked(WithHistory));
    }

    [Fact]
    public void Home_legs_released_by_a_tombstone_leave_no_hidden_reservation()
    {
        Prepare(FirstTransaction, new Leg(0, LegSides.Debit | LegSides.Credit, LedgerFixture.NewTransfer(600, Guarded, Other, 4)));
        Assert.Equal((UInt128)4, Raw(Guarded).DebitsPending);
        Apply(CrossShardCommand.EncodeAbortIfUndecided([FirstTransaction]));
        Assert.Equal((byte)CrossShardDecision.Aborted, results[0]);
        Assert.Equal(Raw(Guarded), Looked(Guarded));
        Assert.Equal(Raw(Other), Looked(Other));
        Assert.Equal(UInt128.Zero, Raw(Other).CreditsPending);
        Assert.DoesNotContain(fixture.Store.EnumerateSideRecords(), r => r.Table == CrossShardTables.Reserved);
        Assert.Equal(0, fixture.Ledger.CrossShardUnfinishedCount());
    }
}
