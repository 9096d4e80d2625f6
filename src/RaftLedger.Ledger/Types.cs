namespace RaftLedger.Ledger;

// The ledger's data model, following TigerBeetle's docs/reference/{account,transfer}.md.
// Amounts and ids are u128; there is no floating point anywhere near money.

/// <summary>Account flags (TigerBeetle bit positions).</summary>
[Flags]
public enum AccountFlags : ushort
{
    None = 0,
    Linked = 1 << 0,
    DebitsMustNotExceedCredits = 1 << 1,
    CreditsMustNotExceedDebits = 1 << 2,
    History = 1 << 3,
    Imported = 1 << 4,
    Closed = 1 << 5,
}

/// <summary>Transfer flags (TigerBeetle bit positions).</summary>
[Flags]
public enum TransferFlags : ushort
{
    None = 0,
    Linked = 1 << 0,
    Pending = 1 << 1,
    PostPendingTransfer = 1 << 2,
    VoidPendingTransfer = 1 << 3,
    BalancingDebit = 1 << 4,
    BalancingCredit = 1 << 5,
    ClosingDebit = 1 << 6,
    ClosingCredit = 1 << 7,
    Imported = 1 << 8,
}

/// <summary>Which of a transfer's two accounts a shard stores (<see cref="LedgerWriteSet.TransferAccountsHere"/>).</summary>
[Flags]
public enum AccountsHere : byte
{
    None = 0,
    Debit = 1,
    Credit = 2,
    Both = Debit | Credit,
}

/// <summary>An account: identity, ledger (asset), flags, user data and its four balances.</summary>
public struct Account
{
    public UInt128 Id;
    public UInt128 DebitsPending;
    public UInt128 DebitsPosted;
    public UInt128 CreditsPending;
    public UInt128 CreditsPosted;
    public UInt128 UserData128;
    public ulong UserData64;
    public uint UserData32;
    public uint Ledger;
    public ushort Code;
    public AccountFlags Flags;

    /// <summary>Assigned by the cluster when the account is created; 0 in a request.</summary>
    public ulong Timestamp;
}

/// <summary>A transfer of <see cref="Amount"/> from the debit account to the credit account.</summary>
public struct Transfer
{
    public UInt128 Id;
    public UInt128 DebitAccountId;
    public UInt128 CreditAccountId;
    public UInt128 Amount;
    public UInt128 PendingId;
    public UInt128 UserData128;
    public ulong UserData64;
    public uint UserData32;

    /// <summary>Seconds of cluster time after which a pending transfer expires (0 = never).</summary>
    public uint TimeoutSeconds;
    public uint Ledger;
    public ushort Code;
    public TransferFlags Flags;

    /// <summary>Assigned by the cluster when the transfer is created; 0 in a request.</summary>
    public ulong Timestamp;
}

/// <summary>Where a pending (two-phase) transfer stands. Stored per pending transfer id.</summary>
public enum PendingStatus : byte
{
    /// <summary>Not a pending transfer (or unknown).</summary>
    None = 0,

    /// <summary>Reserved, not yet resolved.</summary>
    Pending = 1,

    /// <summary>Resolved by a <see cref="TransferFlags.PostPendingTransfer"/> transfer.</summary>
    Posted = 2,

    /// <summary>Resolved by a <see cref="TransferFlags.VoidPendingTransfer"/> transfer.</summary>
    Voided = 3,

    /// <summary>Released because its timeout passed (cluster time).</summary>
    Expired = 4,
}

/// <summary>An account's four balances right after a transfer touched it (for accounts with <see cref="AccountFlags.History"/>).</summary>
public struct AccountBalance
{
    public UInt128 DebitsPending;
    public UInt128 DebitsPosted;
    public UInt128 CreditsPending;
    public UInt128 CreditsPosted;

    /// <summary>The timestamp of the transfer that produced these balances.</summary>
    public ulong Timestamp;
}

/// <summary>Flags of an <see cref="AccountFilter"/> (TigerBeetle bit positions).</summary>
[Flags]
public enum AccountFilterFlags : uint
{
    None = 0,

    /// <summary>Include transfers where the account is the debit account.</summary>
    Debits = 1 << 0,

    /// <summary>Include transfers where the account is the credit account.</summary>
    Credits = 1 << 1,

    /// <summary>Newest first instead of oldest first.</summary>
    Reversed = 1 << 2,
}

/// <summary>The query of get_account_transfers and get_account_balances.</summary>
public struct AccountFilter
{
    public UInt128 AccountId;

    /// <summary>Inclusive lower bound; 0 means no bound.</summary>
    public ulong TimestampMin;

    /// <summary>Inclusive upper bound; 0 means no bound.</summary>
    public ulong TimestampMax;

    /// <summary>Results wanted, 1..<see cref="LedgerLimits.QueryResultsMax"/> (larger values are clamped).</summary>
    public uint Limit;
    public AccountFilterFlags Flags;
}

/// <summary>One entry of the expiry index: a pending transfer that expires at <see cref="ExpiresAt"/> (cluster ns).</summary>
public readonly record struct ExpiryEntry(ulong ExpiresAt, UInt128 TransferId) : IComparable<ExpiryEntry>
{
    /// <summary>Orders by expiry time, then by transfer id, so that expiry is deterministic.</summary>
    public int CompareTo(ExpiryEntry other)
    {
        var byTime = ExpiresAt.CompareTo(other.ExpiresAt);
        return byTime != 0 ? byTime : TransferId.CompareTo(other.TransferId);
    }
}

/// <summary>A balance-history record of one account (see <see cref="AccountBalance"/>).</summary>
public readonly record struct AccountBalanceEntry(UInt128 AccountId, AccountBalance Balance);
