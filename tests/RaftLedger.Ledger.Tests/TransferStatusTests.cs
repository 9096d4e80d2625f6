using RaftLedger.Ledger;
using static RaftLedger.Ledger.Tests.LedgerFixture;

namespace RaftLedger.Ledger.Tests;

public sealed class TransferStatusTests
{
    // Accounts of the precedence walk: 1, 2 plain (ledger 1); 3 on ledger 2; 4, 5 closed;
    // 6 debits_must_not_exceed_credits; 7 credits_must_not_exceed_debits.
    private static LedgerFixture WithAccounts()
    {
        var f = new LedgerFixture();
        Assert.All(
            f.CreateAccounts(
                NewAccount(1), NewAccount(2), NewAccount(3, ledger: 2),
                NewAccount(4, flags: AccountFlags.Closed), NewAccount(5, flags: AccountFlags.Closed),
                NewAccount(6, flags: AccountFlags.DebitsMustNotExceedCredits), NewAccount(7, flags: AccountFlags.CreditsMustNotExceedDebits)),
            r => Assert.Equal(CreateAccountResult.Created, r));
        return f;
    }

    [Fact]
    public void Every_defect_of_a_new_transfer_is_reported_in_precedence_order_as_they_are_fixed()
    {
        var f = WithAccounts();
        var t = new Transfer
        {
            Id = 0,
            Flags = TransferFlags.Imported | (TransferFlags)(1 << 12) | TransferFlags.Pending | TransferFlags.PostPendingTransfer,
            Timestamp = 3,
            PendingId = 77,
            TimeoutSeconds = 5,
            Amount = 1,
        };
        var nextId = (UInt128)1000;
        var steps = new (CreateTransferResult Expected, Func<Transfer, Transfer> Fix)[]
        {
            (CreateTransferResult.ImportedEventNotExpected, x => { x.Flags &= ~TransferFlags.Imported; return x; }),
            (CreateTransferResult.TimestampMustBeZero, x => { x.Timestamp = 0; return x; }),
            (CreateTransferResult.ReservedFlag, x => { x.Flags &= ~(TransferFlags)(1 << 12); return x; }),
            (CreateTransferResult.IdMustNotBeZero, x => { x.Id = UInt128.MaxValue; return x; }),
            (CreateTransferResult.IdMustNotBeIntMax, x => { x.Id = nextId; return x; }),
            (CreateTransferResult.FlagsAreMutuallyExclusive, x => { x.Flags = TransferFlags.ClosingDebit; return x; }),
            (CreateTransferResult.DebitAccountIdMustNotBeZero, x => { x.DebitAccountId = UInt128.MaxValue; return x; }),
            (CreateTransferResult.DebitAccountIdMustNotBeIntMax, x => { x.DebitAccountId = 1; return x; }),
            (CreateTransferResult.CreditAccountIdMustNotBeZero, x => { x.CreditAccountId = UInt128.MaxValue; return x; }),
            (CreateTransferResult.CreditAccountIdMustNotBeIntMax, x => { x.CreditAccountId = 1; return x; }),
            (CreateTransferResult.AccountsMustBeDifferent, x => { x.CreditAccountId = 2; return x; }),
            (CreateTransferResult.PendingIdMustBeZero, x => { x.PendingId = 0; return x; }),
            (CreateTransferResult.TimeoutReservedForPendingTransfer, x => { x.TimeoutSeconds = 0; return x; }),
            (CreateTransferResult.ClosingTransferMustBePending, x => { x.Flags = TransferFlags.None; return x; }),
            (CreateTransferResult.LedgerMustNotBeZero, x => { x.Ledger = 1; return x; }),
            (CreateTransferResult.CodeMustNotBeZero, x => { x.Code = 1; x.DebitAccountId = 90; x.CreditAccountId = 91; return x; }),
            (CreateTransferResult.DebitAccountNotFound, x => { x.DebitAccountId = 1; return x; }),
            (CreateTransferResult.CreditAccountNotFound, x => { x.CreditAccountId = 3; return x; }),
            (CreateTransferResult.AccountsMustHaveTheSameLedger, x => { x.CreditAccountId = 2; x.Ledger = 2; return x; }),
            (CreateTransferResult.TransferMustHaveTheSameLedgerAsAccounts, x => { x.Ledger = 1; x.DebitAccountId = 4; x.CreditAccountId = 5; return x; }),
            (CreateTransferResult.DebitAccountAlreadyClosed, x => { x.DebitAccountId = 6; return x; }),
            (CreateTransferResult.CreditAccountAlreadyClosed, x => { x.CreditAccountId = 7; return x; }),
            (CreateTransferResult.ExceedsCredits, x => { x.DebitAccountId = 1; return x; }),
            (CreateTransferResult.ExceedsDebits, x => { x.CreditAccountId = 2; return x; }),
        };
        var previous = CreateTransferResult.Created;
        foreach (var (expected, fix) in steps)
        {
            // Transient failures burn the id, so every attempt uses a fresh one.
            t.Id = t.Id == UInt128.Zero || t.Id == UInt128.MaxValue ? t.Id : nextId++;
            Assert.Equal(expected, f.CreateTransfer(t));
            Assert.True(expected > previous, $"{expected} is declared after {previous}");
            previous = expected;
            t = fix(t);
        }

        t.Id = nextId;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(t));
        Assert.Equal((UInt128)1, f.AccountOf(1).DebitsPosted);
    }

    [Fact]
    public void Every_defect_of_a_post_is_reported_in_precedence_order_as_they_are_fixed()
    {
        var f = WithAccounts();
        var pending = NewTransfer(50, 1, 2, 10, TransferFlags.Pending);
        pending.Code = 3;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(pending));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(51, 1, 2, 10)));

        var t = new Transfer { Id = 2000, Flags = TransferFlags.PostPendingTransfer, PendingId = 0, TimeoutSeconds = 1, Amount = 11, DebitAccountId = 9, CreditAccountId = 9, Ledger = 9, Code = 9 };
        var nextId = (UInt128)2000;
        var steps = new (CreateTransferResult Expected, Func<Transfer, Transfer> Fix)[]
        {
            (CreateTransferResult.PendingIdMustNotBeZero, x => { x.PendingId = UInt128.MaxValue; return x; }),
            (CreateTransferResult.PendingIdMustNotBeIntMax, x => { x.PendingId = nextId + 1; return x; }),
            (CreateTransferResult.PendingIdMustBeDifferent, x => { x.PendingId = 52; return x; }),
            (CreateTransferResult.TimeoutReservedForPendingTransfer, x => { x.TimeoutSeconds = 0; return x; }),
            (CreateTransferResult.PendingTransferNotFound, x => { x.PendingId = 51; return x; }),
            (CreateTransferResult.PendingTransferNotPending, x => { x.PendingId = 50; return x; }),
            (CreateTransferResult.PendingTransferHasDifferentDebitAccountId, x => { x.DebitAccountId = 1; return x; }),
            (CreateTransferResult.PendingTransferHasDifferentCreditAccountId, x => { x.CreditAccountId = 0; return x; }),
            (CreateTransferResult.PendingTransferHasDifferentLedger, x => { x.Ledger = 1; return x; }),
            (CreateTransferResult.PendingTransferHasDifferentCode, x => { x.Code = 3; return x; }),
            (CreateTransferResult.ExceedsPendingTransferAmount, x => { x.Amount = 4; return x; }),
        };
        var previous = CreateTransferResult.Created;
        foreach (var (expected, fix) in steps)
        {
            t.Id = nextId++;
            if (expected == CreateTransferResult.PendingIdMustBeDifferent)
            {
                t.PendingId = t.Id;
            }

            Assert.Equal(expected, f.CreateTransfer(t));
            Assert.True(expected > previous, $"{expected} is declared after {previous}");
            previous = expected;
            t = fix(t);
        }

        t.Id = nextId++;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(t));
        Assert.Equal((UInt128)14, f.AccountOf(1).DebitsPosted);
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPending);
    }

    [Theory]
    [InlineData(TransferFlags.Pending | TransferFlags.PostPendingTransfer)]
    [InlineData(TransferFlags.Pending | TransferFlags.VoidPendingTransfer)]
    [InlineData(TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)]
    [InlineData(TransferFlags.PostPendingTransfer | TransferFlags.BalancingDebit)]
    [InlineData(TransferFlags.VoidPendingTransfer | TransferFlags.BalancingCredit)]
    [InlineData(TransferFlags.PostPendingTransfer | TransferFlags.ClosingDebit)]
    [InlineData(TransferFlags.VoidPendingTransfer | TransferFlags.ClosingCredit)]
    public void Incompatible_flags_are_mutually_exclusive(TransferFlags flags)
    {
        var f = WithAccounts();
        Assert.Equal(CreateTransferResult.FlagsAreMutuallyExclusive, f.CreateTransfer(NewTransfer(10, 1, 2, 1, flags)));
    }

    [Theory]
    [InlineData(TransferFlags.Pending | TransferFlags.BalancingDebit | TransferFlags.BalancingCredit)]
    [InlineData(TransferFlags.Pending | TransferFlags.ClosingDebit | TransferFlags.ClosingCredit)]
    [InlineData(TransferFlags.BalancingDebit | TransferFlags.BalancingCredit)]
    public void Compatible_flags_are_accepted(TransferFlags flags)
    {
        var f = WithAccounts();
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, 1, flags)));
    }

    [Fact]
    public void Existing_transfer_is_compared_field_by_field_in_precedence_order()
    {
        var f = WithAccounts();
        var original = NewTransfer(10, 1, 2, 5, TransferFlags.Pending);
        original.TimeoutSeconds = 60;
        original.UserData128 = 1;
        original.UserData64 = 2;
        original.UserData32 = 3;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(original));
        Assert.Equal(CreateTransferResult.Exists, f.CreateTransfer(original));

        var retry = new Transfer { Id = 10, Flags = TransferFlags.None, PendingId = 4, TimeoutSeconds = 0, DebitAccountId = 2, CreditAccountId = 1, Amount = 6, UserData128 = 9, UserData64 = 9, UserData32 = 9, Ledger = 2, Code = 2 };
        var steps = new (CreateTransferResult Expected, Func<Transfer, Transfer> Fix)[]
        {
            (CreateTransferResult.ExistsWithDifferentFlags, x => { x.Flags = original.Flags; return x; }),
            (CreateTransferResult.ExistsWithDifferentPendingId, x => { x.PendingId = 0; return x; }),
            (CreateTransferResult.ExistsWithDifferentTimeout, x => { x.TimeoutSeconds = 60; return x; }),
            (CreateTransferResult.ExistsWithDifferentDebitAccountId, x => { x.DebitAccountId = 1; return x; }),
            (CreateTransferResult.ExistsWithDifferentCreditAccountId, x => { x.CreditAccountId = 2; return x; }),
            (CreateTransferResult.ExistsWithDifferentAmount, x => { x.Amount = 5; return x; }),
            (CreateTransferResult.ExistsWithDifferentUserData128, x => { x.UserData128 = 1; return x; }),
            (CreateTransferResult.ExistsWithDifferentUserData64, x => { x.UserData64 = 2; return x; }),
            (CreateTransferResult.ExistsWithDifferentUserData32, x => { x.UserData32 = 3; return x; }),
            (CreateTransferResult.ExistsWithDifferentLedger, x => { x.Ledger = 1; return x; }),
            (CreateTransferResult.ExistsWithDifferentCode, x => { x.Code = 1; return x; }),
        };
        foreach (var (expected, fix) in steps)
        {
            Assert.Equal(expected, f.CreateTransfer(retry));
            retry = fix(retry);
        }

        Assert.Equal(CreateTransferResult.Exists, f.CreateTransfer(retry));
        Assert.Equal((UInt128)5, f.AccountOf(1).DebitsPending);
    }

    [Fact]
    public void Exists_takes_precedence_over_flags_and_id_already_failed()
    {
        var f = WithAccounts();
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, 5)));
        Assert.Equal(CreateTransferResult.ExistsWithDifferentFlags, f.CreateTransfer(NewTransfer(10, 1, 2, 5, TransferFlags.Pending | TransferFlags.PostPendingTransfer)));
        Assert.Equal(CreateTransferResult.Exists, f.CreateTransfer(NewTransfer(10, 1, 2, 5)));
    }

    [Theory]
    [InlineData(99, 2, CreateTransferResult.DebitAccountNotFound)]
    [InlineData(1, 99, CreateTransferResult.CreditAccountNotFound)]
    [InlineData(4, 2, CreateTransferResult.DebitAccountAlreadyClosed)]
    [InlineData(1, 5, CreateTransferResult.CreditAccountAlreadyClosed)]
    [InlineData(6, 2, CreateTransferResult.ExceedsCredits)]
    [InlineData(1, 7, CreateTransferResult.ExceedsDebits)]
    public void Transient_failure_burns_the_id(int debit, int credit, CreateTransferResult transient)
    {
        var f = WithAccounts();
        Assert.Equal(transient, f.CreateTransfer(NewTransfer(10, (UInt128)debit, (UInt128)credit, 1)));
        Assert.True(LedgerResults.IsTransient(transient));

        // Even a valid transfer with that id now fails, and says why.
        Assert.Equal(CreateTransferResult.IdAlreadyFailed, f.CreateTransfer(NewTransfer(10, 1, 2, 1)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(11, 1, 2, 1)));
    }

    [Fact]
    public void Pending_transfer_not_found_is_transient()
    {
        var f = WithAccounts();
        Assert.Equal(CreateTransferResult.PendingTransferNotFound, f.CreateTransfer(Post(10, 500, 0)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(500, 1, 2, 3, TransferFlags.Pending)));
        Assert.Equal(CreateTransferResult.IdAlreadyFailed, f.CreateTransfer(Post(10, 500, 0)));
    }

    [Fact]
    public void Id_already_failed_takes_precedence_over_flags_are_mutually_exclusive()
    {
        var f = WithAccounts();
        Assert.Equal(CreateTransferResult.DebitAccountNotFound, f.CreateTransfer(NewTransfer(10, 99, 2, 1)));
        Assert.Equal(CreateTransferResult.IdAlreadyFailed, f.CreateTransfer(NewTransfer(10, 1, 2, 1, TransferFlags.Pending | TransferFlags.VoidPendingTransfer)));
    }

    [Fact]
    public void Validation_failure_does_not_burn_the_id()
    {
        var f = WithAccounts();
        Assert.Equal(CreateTransferResult.LedgerMustNotBeZero, f.CreateTransfer(NewTransfer(10, 1, 2, 1, ledger: 0)));
        Assert.Equal(CreateTransferResult.AccountsMustHaveTheSameLedger, f.CreateTransfer(NewTransfer(10, 1, 3, 1)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, 1)));
    }

    [Fact]
    public void Transient_failure_burns_the_id_within_the_same_batch()
    {
        var f = WithAccounts();
        var results = f.CreateTransfers(NewTransfer(10, 6, 2, 1), NewTransfer(10, 1, 2, 1), NewTransfer(11, 1, 2, 1), NewTransfer(11, 1, 2, 1));
        Assert.Equal([CreateTransferResult.ExceedsCredits, CreateTransferResult.IdAlreadyFailed, CreateTransferResult.Created, CreateTransferResult.Exists], results);
    }

    [Fact]
    public void Zero_amount_transfer_is_allowed_as_in_TigerBeetle_0_16()
    {
        var f = WithAccounts();
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, 0)));
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPosted);
        Assert.Equal(UInt128.Zero, f.TransferOf(10).Amount);
    }

    [Fact]
    public void Limits_count_pending_debits_against_posted_credits()
    {
        var f = WithAccounts();

        // Account 6 may only spend what it was credited: fund it with 10.
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 6, 10)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(11, 6, 2, 4, TransferFlags.Pending)));
        Assert.Equal(CreateTransferResult.ExceedsCredits, f.CreateTransfer(NewTransfer(12, 6, 2, 7)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(13, 6, 2, 6)));
        var account = f.AccountOf(6);
        Assert.Equal(account.CreditsPosted, account.DebitsPosted + account.DebitsPending);
    }

    [Fact]
    public void Balancing_debit_clamps_the_amount_to_the_debit_accounts_headroom()
    {
        var f = WithAccounts();
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 6, 10)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(11, 6, 2, 100, TransferFlags.BalancingDebit)));
        Assert.Equal((UInt128)10, f.TransferOf(11).Amount);
        Assert.Equal((UInt128)10, f.AccountOf(6).DebitsPosted);

        // A retry asking for at least what moved is `exists`; asking for less is a different amount.
        Assert.Equal(CreateTransferResult.Exists, f.CreateTransfer(NewTransfer(11, 6, 2, 100, TransferFlags.BalancingDebit)));
        Assert.Equal(CreateTransferResult.ExistsWithDifferentAmount, f.CreateTransfer(NewTransfer(11, 6, 2, 9, TransferFlags.BalancingDebit)));

        // No headroom left: a balancing transfer moves zero rather than failing.
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(12, 6, 2, 5, TransferFlags.BalancingDebit)));
        Assert.Equal(UInt128.Zero, f.TransferOf(12).Amount);
    }

    [Fact]
    public void Balancing_credit_clamps_the_amount_to_the_credit_accounts_headroom()
    {
        var f = WithAccounts();
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 7, 1, 8)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(11, 2, 7, UInt128.MaxValue, TransferFlags.BalancingCredit | TransferFlags.Pending)));
        Assert.Equal((UInt128)8, f.TransferOf(11).Amount);
        Assert.Equal((UInt128)8, f.AccountOf(7).CreditsPending);
    }
}
