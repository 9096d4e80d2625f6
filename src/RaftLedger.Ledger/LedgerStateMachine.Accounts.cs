namespace RaftLedger.Ledger;

public sealed partial class LedgerStateMachine
{
    /// <summary>Validates and creates one account; checks run in TigerBeetle's precedence order.</summary>
    private CreateAccountResult CreateAccount(in Account a, ulong timestamp)
    {
        if ((a.Flags & AccountFlags.Imported) != 0)
        {
            return CreateAccountResult.ImportedEventNotExpected;
        }

        if (a.Timestamp != 0)
        {
            return CreateAccountResult.TimestampMustBeZero;
        }

        if ((a.Flags & ~AccountFlagsKnown) != 0)
        {
            return CreateAccountResult.ReservedFlag;
        }

        if (a.Id == UInt128.Zero)
        {
            return CreateAccountResult.IdMustNotBeZero;
        }

        if (a.Id == UInt128.MaxValue)
        {
            return CreateAccountResult.IdMustNotBeIntMax;
        }

        var slot = batch.LoadAccount(a.Id);
        if (batch.Account(slot).Exists)
        {
            return AccountExists(a, batch.Account(slot).Account);
        }

        var invalid = ValidateNewAccount(a);
        if (invalid != CreateAccountResult.Created)
        {
            return invalid;
        }

        var created = a;
        created.Timestamp = timestamp;
        batch.CreateAccount(slot, created);
        return CreateAccountResult.Created;
    }

    private static CreateAccountResult ValidateNewAccount(in Account a)
    {
        const AccountFlags bothLimits = AccountFlags.DebitsMustNotExceedCredits | AccountFlags.CreditsMustNotExceedDebits;
        if ((a.Flags & bothLimits) == bothLimits)
        {
            return CreateAccountResult.FlagsAreMutuallyExclusive;
        }

        if (a.DebitsPending != UInt128.Zero)
        {
            return CreateAccountResult.DebitsPendingMustBeZero;
        }

        if (a.DebitsPosted != UInt128.Zero)
        {
            return CreateAccountResult.DebitsPostedMustBeZero;
        }

        if (a.CreditsPending != UInt128.Zero)
        {
            return CreateAccountResult.CreditsPendingMustBeZero;
        }

        if (a.CreditsPosted != UInt128.Zero)
        {
            return CreateAccountResult.CreditsPostedMustBeZero;
        }

        if (a.Ledger == 0)
        {
            return CreateAccountResult.LedgerMustNotBeZero;
        }

        return a.Code == 0 ? CreateAccountResult.CodeMustNotBeZero : CreateAccountResult.Created;
    }

    /// <summary>
    /// The result for an id that exists. `closed` is ignored in the comparison: closing transfers
    /// change it after creation, and a retried create must still get `exists`.
    /// </summary>
    private static CreateAccountResult AccountExists(in Account a, in Account existing)
    {
        if ((a.Flags & ~AccountFlags.Closed) != (existing.Flags & ~AccountFlags.Closed))
        {
            return CreateAccountResult.ExistsWithDifferentFlags;
        }

        if (a.UserData128 != existing.UserData128)
        {
            return CreateAccountResult.ExistsWithDifferentUserData128;
        }

        if (a.UserData64 != existing.UserData64)
        {
            return CreateAccountResult.ExistsWithDifferentUserData64;
        }

        if (a.UserData32 != existing.UserData32)
        {
            return CreateAccountResult.ExistsWithDifferentUserData32;
        }

        if (a.Ledger != existing.Ledger)
        {
            return CreateAccountResult.ExistsWithDifferentLedger;
        }

        return a.Code != existing.Code ? CreateAccountResult.ExistsWithDifferentCode : CreateAccountResult.Exists;
    }
}
