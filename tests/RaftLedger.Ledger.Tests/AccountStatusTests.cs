using RaftLedger.Ledger;
using static RaftLedger.Ledger.Tests.LedgerFixture;

namespace RaftLedger.Ledger.Tests;

public sealed class AccountStatusTests
{
    public static TheoryData<string, CreateAccountResult> InvalidNewAccounts => new()
    {
        { "imported", CreateAccountResult.ImportedEventNotExpected },
        { "timestamp", CreateAccountResult.TimestampMustBeZero },
        { "reserved flag", CreateAccountResult.ReservedFlag },
        { "id zero", CreateAccountResult.IdMustNotBeZero },
        { "id max", CreateAccountResult.IdMustNotBeIntMax },
        { "both limits", CreateAccountResult.FlagsAreMutuallyExclusive },
        { "debits pending", CreateAccountResult.DebitsPendingMustBeZero },
        { "debits posted", CreateAccountResult.DebitsPostedMustBeZero },
        { "credits pending", CreateAccountResult.CreditsPendingMustBeZero },
        { "credits posted", CreateAccountResult.CreditsPostedMustBeZero },
        { "ledger zero", CreateAccountResult.LedgerMustNotBeZero },
        { "code zero", CreateAccountResult.CodeMustNotBeZero },
    };

    [Theory]
    [MemberData(nameof(InvalidNewAccounts))]
    public void Invalid_account_gets_its_status_and_is_not_created(string defect, CreateAccountResult expected)
    {
        var f = new LedgerFixture();
        var account = Break(NewAccount(7), defect);
        Assert.Equal(expected, f.CreateAccount(account));
        Assert.False(f.Ledger.TryLookupAccount(account.Id, out _));
        Assert.Equal(0, f.Store.AccountCount);
    }

    private static Account Break(Account a, string defect)
    {
        switch (defect)
        {
            case "imported": a.Flags |= AccountFlags.Imported; break;
            case "timestamp": a.Timestamp = 5; break;
            case "reserved flag": a.Flags |= (AccountFlags)(1 << 6); break;
            case "id zero": a.Id = 0; break;
            case "id max": a.Id = UInt128.MaxValue; break;
            case "both limits": a.Flags |= AccountFlags.DebitsMustNotExceedCredits | AccountFlags.CreditsMustNotExceedDebits; break;
            case "debits pending": a.DebitsPending = 1; break;
            case "debits posted": a.DebitsPosted = 1; break;
            case "credits pending": a.CreditsPending = 1; break;
            case "credits posted": a.CreditsPosted = 1; break;
            case "ledger zero": a.Ledger = 0; break;
            case "code zero": a.Code = 0; break;
            default: throw new ArgumentException(defect);
        }

        return a;
    }

    [Fact]
    public void Every_defect_at_once_reports_them_in_precedence_order_as_they_are_fixed()
    {
        // Start with every defect a new account can have; fixing them one at a time must walk the
        // statuses in TigerBeetle's documented order (which is the enum's declaration order).
        var f = new LedgerFixture();
        var a = new Account
        {
            Id = 0,
            Flags = AccountFlags.Imported | (AccountFlags)(1 << 7) | AccountFlags.DebitsMustNotExceedCredits | AccountFlags.CreditsMustNotExceedDebits,
            Timestamp = 1,
            DebitsPending = 1,
            DebitsPosted = 1,
            CreditsPending = 1,
            CreditsPosted = 1,
        };
        var fixes = new (CreateAccountResult Expected, Func<Account, Account> Fix)[]
        {
            (CreateAccountResult.ImportedEventNotExpected, x => { x.Flags &= ~AccountFlags.Imported; return x; }),
            (CreateAccountResult.TimestampMustBeZero, x => { x.Timestamp = 0; return x; }),
            (CreateAccountResult.ReservedFlag, x => { x.Flags &= ~(AccountFlags)(1 << 7); return x; }),
            (CreateAccountResult.IdMustNotBeZero, x => { x.Id = UInt128.MaxValue; return x; }),
            (CreateAccountResult.IdMustNotBeIntMax, x => { x.Id = 9; return x; }),
            (CreateAccountResult.FlagsAreMutuallyExclusive, x => { x.Flags &= ~AccountFlags.CreditsMustNotExceedDebits; return x; }),
            (CreateAccountResult.DebitsPendingMustBeZero, x => { x.DebitsPending = 0; return x; }),
            (CreateAccountResult.DebitsPostedMustBeZero, x => { x.DebitsPosted = 0; return x; }),
            (CreateAccountResult.CreditsPendingMustBeZero, x => { x.CreditsPending = 0; return x; }),
            (CreateAccountResult.CreditsPostedMustBeZero, x => { x.CreditsPosted = 0; return x; }),
            (CreateAccountResult.LedgerMustNotBeZero, x => { x.Ledger = 3; return x; }),
            (CreateAccountResult.CodeMustNotBeZero, x => { x.Code = 4; return x; }),
        };
        var previous = CreateAccountResult.Created;
        foreach (var (expected, fix) in fixes)
        {
            Assert.Equal(expected, f.CreateAccount(a));
            Assert.True(expected > previous, $"{expected} is declared after {previous}");
            previous = expected;
            a = fix(a);
        }

        Assert.Equal(CreateAccountResult.Created, f.CreateAccount(a));
    }

    [Fact]
    public void Existing_id_is_compared_field_by_field_in_precedence_order()
    {
        var f = new LedgerFixture();
        var original = NewAccount(5, ledger: 2, flags: AccountFlags.History);
        original.UserData128 = 1;
        original.UserData64 = 2;
        original.UserData32 = 3;
        Assert.Equal(CreateAccountResult.Created, f.CreateAccount(original));

        // Every field differs, and the request is also invalid (both limit flags, ledger 0, a
        // balance set): the exists_* statuses come first, in order, as each field is put back.
        var retry = original;
        retry.Flags = AccountFlags.DebitsMustNotExceedCredits | AccountFlags.CreditsMustNotExceedDebits;
        retry.UserData128 = 10;
        retry.UserData64 = 20;
        retry.UserData32 = 30;
        retry.Ledger = 0;
        retry.Code = 0;
        retry.DebitsPosted = 99;
        var steps = new (CreateAccountResult Expected, Func<Account, Account> Fix)[]
        {
            (CreateAccountResult.ExistsWithDifferentFlags, x => { x.Flags = original.Flags; return x; }),
            (CreateAccountResult.ExistsWithDifferentUserData128, x => { x.UserData128 = 1; return x; }),
            (CreateAccountResult.ExistsWithDifferentUserData64, x => { x.UserData64 = 2; return x; }),
            (CreateAccountResult.ExistsWithDifferentUserData32, x => { x.UserData32 = 3; return x; }),
            (CreateAccountResult.ExistsWithDifferentLedger, x => { x.Ledger = 2; return x; }),
            (CreateAccountResult.ExistsWithDifferentCode, x => { x.Code = original.Code; return x; }),
        };
        foreach (var (expected, fix) in steps)
        {
            Assert.Equal(expected, f.CreateAccount(retry));
            retry = fix(retry);
        }

        // Balances are not compared: `exists` even though the request carries a balance.
        Assert.Equal(CreateAccountResult.Exists, f.CreateAccount(retry));
        Assert.Equal(UInt128.Zero, f.AccountOf(5).DebitsPosted);
    }

    [Fact]
    public void Exists_takes_precedence_over_field_validation()
    {
        var f = new LedgerFixture();
        Assert.Equal(CreateAccountResult.Created, f.CreateAccount(NewAccount(5)));
        var retry = NewAccount(5);
        retry.CreditsPending = 7;
        Assert.Equal(CreateAccountResult.Exists, f.CreateAccount(retry));
    }

    [Fact]
    public void Imported_is_refused_before_a_nonzero_timestamp()
    {
        var f = new LedgerFixture();
        var a = NewAccount(5, flags: AccountFlags.Imported);
        a.Timestamp = 123;
        Assert.Equal(CreateAccountResult.ImportedEventNotExpected, f.CreateAccount(a));
    }

    [Fact]
    public void Same_id_twice_in_one_batch_creates_once_then_reports_exists()
    {
        var f = new LedgerFixture();
        var results = f.CreateAccounts(NewAccount(5), NewAccount(5), NewAccount(5, ledger: 9));
        Assert.Equal([CreateAccountResult.Created, CreateAccountResult.Exists, CreateAccountResult.ExistsWithDifferentLedger], results);
    }

    [Fact]
    public void Created_account_gets_the_event_timestamp_and_keeps_its_fields()
    {
        var f = new LedgerFixture();
        var a = NewAccount(5, ledger: 7, flags: AccountFlags.History | AccountFlags.CreditsMustNotExceedDebits);
        a.UserData128 = UInt128.MaxValue;
        a.UserData64 = ulong.MaxValue;
        a.UserData32 = uint.MaxValue;
        var batchTimestamp = f.NextBatchTimestamp(2);
        var results = new CreateAccountResult[2];
        f.Ledger.CreateAccounts([NewAccount(4), a], batchTimestamp, results);
        var stored = f.AccountOf(5);
        Assert.Equal(batchTimestamp, stored.Timestamp);
        Assert.Equal(batchTimestamp - 1, f.AccountOf(4).Timestamp);
        stored.Timestamp = 0;
        Assert.Equal(a, stored);
    }

    [Fact]
    public void Account_created_closed_refuses_transfers()
    {
        var f = new LedgerFixture();
        Assert.Equal(CreateAccountResult.Created, f.CreateAccount(NewAccount(1, flags: AccountFlags.Closed)));
        Assert.Equal(CreateAccountResult.Created, f.CreateAccount(NewAccount(2)));
        Assert.Equal(CreateTransferResult.DebitAccountAlreadyClosed, f.CreateTransfer(NewTransfer(10, 1, 2, 1)));
        Assert.Equal(CreateTransferResult.CreditAccountAlreadyClosed, f.CreateTransfer(NewTransfer(11, 2, 1, 1)));
    }
}
