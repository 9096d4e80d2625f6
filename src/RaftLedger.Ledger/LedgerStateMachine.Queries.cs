namespace RaftLedger.Ledger;

public sealed partial class LedgerStateMachine
{
    /// <summary>
    /// The result for a transfer id that exists, comparing fields in TigerBeetle's precedence order.
    /// A post or void may leave debit/credit account, ledger and code zero (they come from the
    /// pending transfer), so zero matches there; amounts follow the rules of each kind.
    /// </summary>
    private CreateTransferResult TransferExists(in Transfer t, in Transfer e)
    {
        var resolving = (t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0;
        if (t.Flags != e.Flags)
        {
            return CreateTransferResult.ExistsWithDifferentFlags;
        }

        if (t.PendingId != e.PendingId)
        {
            return CreateTransferResult.ExistsWithDifferentPendingId;
        }

        if (t.TimeoutSeconds != e.TimeoutSeconds)
        {
            return CreateTransferResult.ExistsWithDifferentTimeout;
        }

        if (t.DebitAccountId != e.DebitAccountId && !(resolving && t.DebitAccountId == UInt128.Zero))
        {
            return CreateTransferResult.ExistsWithDifferentDebitAccountId;
        }

        if (t.CreditAccountId != e.CreditAccountId && !(resolving && t.CreditAccountId == UInt128.Zero))
        {
            return CreateTransferResult.ExistsWithDifferentCreditAccountId;
        }

        if (!SameAmount(t, e))
        {
            return CreateTransferResult.ExistsWithDifferentAmount;
        }

        if (t.UserData128 != e.UserData128)
        {
            return CreateTransferResult.ExistsWithDifferentUserData128;
        }

        if (t.UserData64 != e.UserData64)
        {
            return CreateTransferResult.ExistsWithDifferentUserData64;
        }

        if (t.UserData32 != e.UserData32)
        {
            return CreateTransferResult.ExistsWithDifferentUserData32;
        }

        if (t.Ledger != e.Ledger && !(resolving && t.Ledger == 0))
        {
            return CreateTransferResult.ExistsWithDifferentLedger;
        }

        return t.Code != e.Code && !(resolving && t.Code == 0) ? CreateTransferResult.ExistsWithDifferentCode : CreateTransferResult.Exists;
    }

    private bool SameAmount(in Transfer t, in Transfer e)
    {
        if (t.Amount == e.Amount)
        {
            return true;
        }

        // A balancing transfer may have moved less than it asked for.
        if ((t.Flags & (TransferFlags.BalancingDebit | TransferFlags.BalancingCredit)) != 0)
        {
            return t.Amount >= e.Amount;
        }

        // A post or void that resolved the full pending amount matches a request for "full" (0 or max).
        if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0 &&
            batch.TryGetTransfer(e.PendingId, out var pending) && e.Amount == pending.Amount)
        {
            return t.Amount == UInt128.Zero || t.Amount == UInt128.MaxValue;
        }

        return false;
    }

    /// <summary>Finds one transfer (committed state).</summary>
    public bool TryLookupTransfer(UInt128 id, out Transfer transfer) => store.TryGetTransfer(id, out transfer);

    /// <summary>The status of a pending transfer (<see cref="PendingStatus.None"/> for anything else).</summary>
    public PendingStatus GetPendingStatus(UInt128 pendingId) => store.GetPendingStatus(pendingId);

    /// <summary>
    /// lookup_accounts: the accounts that exist, in the order of <paramref name="ids"/>, as clients see them
    /// (<see cref="TryLookupAccount"/>: without undecided cross-shard reservations); returns how many were written.
    /// </summary>
    public int LookupAccounts(ReadOnlySpan<UInt128> ids, Span<Account> into)
    {
        CheckLookup(ids.Length, into.Length);
        var found = 0;
        foreach (var id in ids)
        {
            if (TryLookupAccount(id, out var account))
            {
                into[found++] = account;
            }
        }

        return found;
    }

    /// <summary>lookup_transfers: the transfers that exist, in the order of <paramref name="ids"/>; returns how many were written.</summary>
    public int LookupTransfers(ReadOnlySpan<UInt128> ids, Span<Transfer> into)
    {
        CheckLookup(ids.Length, into.Length);
        var found = 0;
        foreach (var id in ids)
        {
            if (store.TryGetTransfer(id, out var transfer))
            {
                into[found++] = transfer;
            }
        }

        return found;
    }

    /// <summary>
    /// get_account_transfers: transfers of the account, filtered and ordered as the filter says.
    /// An invalid filter (account id 0 or max, min above max, limit 0, neither debits nor credits)
    /// gives no results, as in TigerBeetle. Writes at most min(limit, QueryResultsMax, into.Length).
    /// </summary>
    public int GetAccountTransfers(in AccountFilter filter, Span<Transfer> into)
    {
        if (!IsValid(filter) || (filter.Flags & (AccountFilterFlags.Debits | AccountFilterFlags.Credits)) == 0)
        {
            return 0;
        }

        return store.GetAccountTransfers(Clamped(filter), into[..Math.Min(into.Length, LedgerLimits.QueryResultsMax)]);
    }

    /// <summary>get_account_balances: balance history of an account with the history flag (none otherwise).</summary>
    public int GetAccountBalances(in AccountFilter filter, Span<AccountBalance> into)
    {
        if (!IsValid(filter) || !store.TryGetAccount(filter.AccountId, out var account) || (account.Flags & AccountFlags.History) == 0)
        {
            return 0;
        }

        return store.GetAccountBalances(Clamped(filter), into[..Math.Min(into.Length, LedgerLimits.QueryResultsMax)]);
    }

    private static bool IsValid(in AccountFilter filter) =>
        filter.AccountId != UInt128.Zero && filter.AccountId != UInt128.MaxValue && filter.Limit != 0 &&
        (filter.TimestampMin == 0 || filter.TimestampMax == 0 || filter.TimestampMin <= filter.TimestampMax) &&
        (filter.Flags & ~(AccountFilterFlags.Debits | AccountFilterFlags.Credits | AccountFilterFlags.Reversed)) == 0;

    private static AccountFilter Clamped(in AccountFilter filter)
    {
        var clamped = filter;
        clamped.Limit = Math.Min(filter.Limit, (uint)LedgerLimits.QueryResultsMax);
        return clamped;
    }

    private static void CheckLookup(int idCount, int intoLength)
    {
        if (idCount > LedgerLimits.LookupIdsMax)
        {
            throw new ArgumentException($"A lookup takes at most {LedgerLimits.LookupIdsMax} ids, this one has {idCount}: split it.", nameof(idCount));
        }

        if (intoLength < idCount)
        {
            throw new ArgumentException($"Room for {intoLength} results is less than the {idCount} ids looked up.", nameof(intoLength));
        }
    }
}
