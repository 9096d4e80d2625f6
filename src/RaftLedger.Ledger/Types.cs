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
