using RaftLedger.Common;

namespace RaftLedger.Ledger;

public sealed partial class LedgerStateMachine
{
    /// <summary>Validates and creates one transfer; checks run in TigerBeetle's precedence order.</summary>
    private CreateTransferResult CreateTransfer(in Transfer t, ulong timestamp)
    {
        var header = ValidateTransferHeader(t);
        if (header != CreateTransferResult.Created)
        {
            return header;
        }

        if (batch.TryGetTransfer(t.Id, out var existing))
        {
            return TransferExists(t, existing);
        }

        if (batch.IsTransientFailure(t.Id))
        {
            return CreateTransferResult.IdAlreadyFailed;
        }

        if (FlagsAreMutuallyExclusive(t.Flags))
        {
            return CreateTransferResult.FlagsAreMutuallyExclusive;
        }

        if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0)
        {
            return PostOrVoidPendingTransfer(t, timestamp);
        }

        var fields = ValidateNewTransferFields(t);
        if (fields != CreateTransferResult.Created)
        {
            return fields;
        }

        return CreateSingleOrPendingTransfer(t, timestamp);
    }

    private static CreateTransferResult ValidateTransferHeader(in Transfer t)
    {
        if ((t.Flags & TransferFlags.Imported) != 0)
        {
            return CreateTransferResult.ImportedEventNotExpected;
        }

        if (t.Timestamp != 0)
        {
            return CreateTransferResult.TimestampMustBeZero;
        }

        if ((t.Flags & ~TransferFlagsKnown) != 0)
        {
            return CreateTransferResult.ReservedFlag;
        }

        if (t.Id == UInt128.Zero)
        {
            return CreateTransferResult.IdMustNotBeZero;
        }

        return t.Id == UInt128.MaxValue ? CreateTransferResult.IdMustNotBeIntMax : CreateTransferResult.Created;
    }

    private static bool FlagsAreMutuallyExclusive(TransferFlags flags)
    {
        var pending = (flags & TransferFlags.Pending) != 0;
        var post = (flags & TransferFlags.PostPendingTransfer) != 0;
        var @void = (flags & TransferFlags.VoidPendingTransfer) != 0;
        const TransferFlags onlyForNew = TransferFlags.BalancingDebit | TransferFlags.BalancingCredit |
            TransferFlags.ClosingDebit | TransferFlags.ClosingCredit;
        return (pending && (post || @void)) || (post && @void) || ((post || @void) && (flags & onlyForNew) != 0);
    }

    // The field checks of a single-phase or pending transfer that need no state.
    private static CreateTransferResult ValidateNewTransferFields(in Transfer t)
    {
        if (t.DebitAccountId == UInt128.Zero)
        {
            return CreateTransferResult.DebitAccountIdMustNotBeZero;
        }

        if (t.DebitAccountId == UInt128.MaxValue)
        {
            return CreateTransferResult.DebitAccountIdMustNotBeIntMax;
        }

        if (t.CreditAccountId == UInt128.Zero)
        {
            return CreateTransferResult.CreditAccountIdMustNotBeZero;
        }

        if (t.CreditAccountId == UInt128.MaxValue)
        {
            return CreateTransferResult.CreditAccountIdMustNotBeIntMax;
        }

        if (t.CreditAccountId == t.DebitAccountId)
        {
            return CreateTransferResult.AccountsMustBeDifferent;
        }

        if (t.PendingId != UInt128.Zero)
        {
            return CreateTransferResult.PendingIdMustBeZero;
        }

        var pending = (t.Flags & TransferFlags.Pending) != 0;
        if (!pending && t.TimeoutSeconds != 0)
        {
            return CreateTransferResult.TimeoutReservedForPendingTransfer;
        }

        if (!pending && (t.Flags & (TransferFlags.ClosingDebit | TransferFlags.ClosingCredit)) != 0)
        {
            return CreateTransferResult.ClosingTransferMustBePending;
        }

        if (t.Ledger == 0)
        {
            return CreateTransferResult.LedgerMustNotBeZero;
        }

        return t.Code == 0 ? CreateTransferResult.CodeMustNotBeZero : CreateTransferResult.Created;
    }

    private CreateTransferResult CreateSingleOrPendingTransfer(in Transfer t, ulong timestamp)
    {
        var debit = batch.LoadAccount(t.DebitAccountId);
        if (!batch.Account(debit).Exists)
        {
            return CreateTransferResult.DebitAccountNotFound;
        }

        var credit = batch.LoadAccount(t.CreditAccountId);
        if (!batch.Account(credit).Exists)
        {
            return CreateTransferResult.CreditAccountNotFound;
        }

        ref readonly var dr = ref batch.Account(debit).Account;
        ref readonly var cr = ref batch.Account(credit).Account;
        var checkedResult = CheckAccounts(t, dr, cr, timestamp, out var amount);
        if (checkedResult != CreateTransferResult.Created)
        {
            return checkedResult;
        }

        var created = t;
        created.Amount = amount;
        created.Timestamp = timestamp;
        ApplyNewTransfer(created, debit, credit);
        return CreateTransferResult.Created;
    }

    /// <summary>The checks that need both accounts: ledgers, closed, balancing amount, overflows, timeout, limits.</summary>
    private static CreateTransferResult CheckAccounts(in Transfer t, in Account dr, in Account cr, ulong timestamp, out UInt128 amount)
    {
        amount = t.Amount;
        if (dr.Ledger != cr.Ledger)
        {
            return CreateTransferResult.AccountsMustHaveTheSameLedger;
        }

        if (t.Ledger != dr.Ledger)
        {
            return CreateTransferResult.TransferMustHaveTheSameLedgerAsAccounts;
        }

        if ((dr.Flags & AccountFlags.Closed) != 0)
        {
            return CreateTransferResult.DebitAccountAlreadyClosed;
        }

        if ((cr.Flags & AccountFlags.Closed) != 0)
        {
            return CreateTransferResult.CreditAccountAlreadyClosed;
        }

        // Balancing transfers move at most `amount`, clamped to what the account's limit allows.
        if ((t.Flags & TransferFlags.BalancingDebit) != 0)
        {
            amount = UInt128.Min(amount, BalanceSteps.Headroom(dr, BalanceSide.Debit));
        }

        if ((t.Flags & TransferFlags.BalancingCredit) != 0)
        {
            amount = UInt128.Min(amount, BalanceSteps.Headroom(cr, BalanceSide.Credit));
        }

        var overflow = CheckOverflows(t, dr, cr, amount, timestamp);
        if (overflow != CreateTransferResult.Created)
        {
            return overflow;
        }

        if (BalanceSteps.ExceedsLimit(dr, BalanceSide.Debit, amount))
        {
            return CreateTransferResult.ExceedsCredits;
        }

        return BalanceSteps.ExceedsLimit(cr, BalanceSide.Credit, amount) ? CreateTransferResult.ExceedsDebits : CreateTransferResult.Created;
    }

    private static CreateTransferResult CheckOverflows(in Transfer t, in Account dr, in Account cr, UInt128 amount, ulong timestamp)
    {
        var pending = (t.Flags & TransferFlags.Pending) != 0;
        if (pending && BalanceSteps.PendingOverflows(dr, BalanceSide.Debit, amount))
        {
            return CreateTransferResult.OverflowsDebitsPending;
        }

        if (pending && BalanceSteps.PendingOverflows(cr, BalanceSide.Credit, amount))
        {
            return CreateTransferResult.OverflowsCreditsPending;
        }

        // Posted overflow is checked for pending transfers too, so that a later post cannot overflow.
        if (BalanceSteps.PostedOverflows(dr, BalanceSide.Debit, amount))
        {
            return CreateTransferResult.OverflowsDebitsPosted;
        }

        if (BalanceSteps.PostedOverflows(cr, BalanceSide.Credit, amount))
        {
            return CreateTransferResult.OverflowsCreditsPosted;
        }

        if (BalanceSteps.TotalOverflows(dr, BalanceSide.Debit, amount))
        {
            return CreateTransferResult.OverflowsDebits;
        }

        if (BalanceSteps.TotalOverflows(cr, BalanceSide.Credit, amount))
        {
            return CreateTransferResult.OverflowsCredits;
        }

        return t.TimeoutSeconds != 0 && ExpiresAt(timestamp, t.TimeoutSeconds) > LedgerLimits.TimestampMax
            ? CreateTransferResult.OverflowsTimeout
            : CreateTransferResult.Created;
    }

    // In u128 so that the sum itself cannot overflow; callers compare with TimestampMax.
    private static UInt128 ExpiresAt(ulong timestamp, uint timeoutSeconds) =>
        (UInt128)timestamp + ((UInt128)timeoutSeconds * LedgerLimits.NanosecondsPerSecond);

    private void ApplyNewTransfer(in Transfer t, int debit, int credit)
    {
        ref var dr = ref batch.Modify(debit);
        ref var cr = ref batch.Modify(credit);
        if ((t.Flags & TransferFlags.Pending) != 0)
        {
            BalanceSteps.Reserve(ref dr, BalanceSide.Debit, t.Amount);
            BalanceSteps.Reserve(ref cr, BalanceSide.Credit, t.Amount);
        }
        else
        {
            BalanceSteps.Post(ref dr, BalanceSide.Debit, UInt128.Zero, t.Amount);
            BalanceSteps.Post(ref cr, BalanceSide.Credit, UInt128.Zero, t.Amount);
        }

        if ((t.Flags & TransferFlags.ClosingDebit) != 0)
        {
            dr.Flags |= AccountFlags.Closed;
        }

        if ((t.Flags & TransferFlags.ClosingCredit) != 0)
        {
            cr.Flags |= AccountFlags.Closed;
        }

        batch.CreateTransfer(t, debit, credit);
        if ((t.Flags & TransferFlags.Pending) != 0)
        {
            batch.SetPendingStatus(t.Id, PendingStatus.Pending);
            if (t.TimeoutSeconds != 0)
            {
                batch.Writes.AddExpiry(new ExpiryEntry((ulong)ExpiresAt(t.Timestamp, t.TimeoutSeconds), t.Id));
            }
        }

        RecordHistory(dr, cr, t.Timestamp);
    }

    private void RecordHistory(in Account dr, in Account cr, ulong timestamp)
    {
        if ((dr.Flags & AccountFlags.History) != 0)
        {
            batch.Writes.AddAccountBalance(new AccountBalanceEntry(dr.Id, HistoryBalanceOf(dr, timestamp)));
        }

        if ((cr.Flags & AccountFlags.History) != 0)
        {
            batch.Writes.AddAccountBalance(new AccountBalanceEntry(cr.Id, HistoryBalanceOf(cr, timestamp)));
        }
    }

    private static AccountBalance BalanceOf(in Account a, ulong timestamp) => new()
    {
        DebitsPending = a.DebitsPending,
        DebitsPosted = a.DebitsPosted,
        CreditsPending = a.CreditsPending,
        CreditsPosted = a.CreditsPosted,
        Timestamp = timestamp,
    };

    /// <summary>Posts (all or part) or voids a pending transfer.</summary>
    private CreateTransferResult PostOrVoidPendingTransfer(in Transfer t, ulong timestamp)
    {
        var status = ResolvePostOrVoid(t, timestamp, out var resolved, out var p);
        if (status != CreateTransferResult.Created)
        {
            return status;
        }

        var debit = batch.LoadAccount(p.DebitAccountId);
        var credit = batch.LoadAccount(p.CreditAccountId);
        if (!batch.Account(debit).Exists || !batch.Account(credit).Exists)
        {
            // A cross-shard pending transfer (its accounts live elsewhere) committed after this post/void was
            // classified local: only the cross-shard path can finish it; a retry takes that path.
            return CreateTransferResult.NeedsCrossShardPath;
        }

        // A closed account takes no more posts or voids, except those of the transfer that closed it.
        if ((batch.Account(debit).Account.Flags & AccountFlags.Closed) != 0 && (p.Flags & TransferFlags.ClosingDebit) == 0)
        {
            return CreateTransferResult.DebitAccountAlreadyClosed;
        }

        if ((batch.Account(credit).Account.Flags & AccountFlags.Closed) != 0 && (p.Flags & TransferFlags.ClosingCredit) == 0)
        {
            return CreateTransferResult.CreditAccountAlreadyClosed;
        }

        resolved.Timestamp = timestamp;
        ApplyPostOrVoid(resolved, p, debit, credit);
        return CreateTransferResult.Created;
    }

    private static CreateTransferResult ValidatePostOrVoidRequest(in Transfer t)
    {
        if (t.PendingId == UInt128.Zero)
        {
            return CreateTransferResult.PendingIdMustNotBeZero;
        }

        if (t.PendingId == UInt128.MaxValue)
        {
            return CreateTransferResult.PendingIdMustNotBeIntMax;
        }

        if (t.PendingId == t.Id)
        {
            return CreateTransferResult.PendingIdMustBeDifferent;
        }

        return t.TimeoutSeconds != 0 ? CreateTransferResult.TimeoutReservedForPendingTransfer : CreateTransferResult.Created;
    }

    private CreateTransferResult ValidateAgainstPending(in Transfer t, in Transfer p, ulong timestamp, out UInt128 amount)
    {
        var fields = ValidatePendingFields(t, p, out amount);
        return fields != CreateTransferResult.Created ? fields : CheckPendingStatus(p, timestamp, batch.GetPendingStatus(p.Id));
    }

    // The checks against the pending transfer's fields (which never change once it exists), before its status.
    private static CreateTransferResult ValidatePendingFields(in Transfer t, in Transfer p, out UInt128 amount)
    {
        amount = p.Amount;
        if ((p.Flags & TransferFlags.Pending) == 0)
        {
            return CreateTransferResult.PendingTransferNotPending;
        }

        if (t.DebitAccountId != UInt128.Zero && t.DebitAccountId != p.DebitAccountId)
        {
            return CreateTransferResult.PendingTransferHasDifferentDebitAccountId;
        }

        if (t.CreditAccountId != UInt128.Zero && t.CreditAccountId != p.CreditAccountId)
        {
            return CreateTransferResult.PendingTransferHasDifferentCreditAccountId;
        }

        if (t.Ledger != 0 && t.Ledger != p.Ledger)
        {
            return CreateTransferResult.PendingTransferHasDifferentLedger;
        }

        if (t.Code != 0 && t.Code != p.Code)
        {
            return CreateTransferResult.PendingTransferHasDifferentCode;
        }

        // Amount 0 or u128 max means "the full pending amount".
        var full = t.Amount == UInt128.Zero || t.Amount == UInt128.MaxValue;
        if (!full && t.Amount > p.Amount)
        {
            return CreateTransferResult.ExceedsPendingTransferAmount;
        }

        if ((t.Flags & TransferFlags.VoidPendingTransfer) != 0 && !full && t.Amount != p.Amount)
        {
            return CreateTransferResult.PendingTransferHasDifferentAmount;
        }

        if ((t.Flags & TransferFlags.PostPendingTransfer) != 0 && !full)
        {
            amount = t.Amount;
        }

        return CreateTransferResult.Created;
    }

    private static CreateTransferResult CheckPendingStatus(in Transfer p, ulong timestamp, PendingStatus status)
    {
        switch (status)
        {
            case PendingStatus.Posted:
                return CreateTransferResult.PendingTransferAlreadyPosted;
            case PendingStatus.Voided:
                return CreateTransferResult.PendingTransferAlreadyVoided;
            case PendingStatus.Expired:
                return CreateTransferResult.PendingTransferExpired;
            default:
                break;
        }

        Invariant.Check(status == PendingStatus.Pending);

        // Expired by time within this batch, though the sweep at the batch's start did not release it yet.
        return p.TimeoutSeconds != 0 && ExpiresAt(p.Timestamp, p.TimeoutSeconds) <= timestamp
            ? CreateTransferResult.PendingTransferExpired
            : CreateTransferResult.Created;
    }

    private void ApplyPostOrVoid(in Transfer t, in Transfer p, int debit, int credit)
    {
        ref var dr = ref batch.Modify(debit);
        ref var cr = ref batch.Modify(credit);
        var post = (t.Flags & TransferFlags.PostPendingTransfer) != 0;
        if (post)
        {
            BalanceSteps.Post(ref dr, BalanceSide.Debit, p.Amount, t.Amount);
            BalanceSteps.Post(ref cr, BalanceSide.Credit, p.Amount, t.Amount);
        }
        else
        {
            BalanceSteps.Release(ref dr, BalanceSide.Debit, p.Amount);
            BalanceSteps.Release(ref cr, BalanceSide.Credit, p.Amount);
            Reopen(p, ref dr, ref cr);
        }

        batch.CreateTransfer(t, debit, credit);
        batch.SetPendingStatus(p.Id, post ? PendingStatus.Posted : PendingStatus.Voided);
        if (p.TimeoutSeconds != 0)
        {
            batch.Writes.RemoveExpiry(new ExpiryEntry((ulong)ExpiresAt(p.Timestamp, p.TimeoutSeconds), p.Id));
        }

        RecordHistory(dr, cr, t.Timestamp);
    }
}
