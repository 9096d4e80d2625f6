using RaftLedger.Common;

namespace RaftLedger.Ledger;

/// <summary>
/// Every write of one applied batch, handed to <see cref="ILedgerStore.Commit"/> at once. The ledger
/// reuses one instance (buffers grow to the largest batch and stay), so a store must not keep the
/// spans after Commit returns.
/// </summary>
public sealed class LedgerWriteSet
{
    private readonly Buffer<Account> accounts = new();
    private readonly Buffer<Transfer> transfers = new();
    private readonly Buffer<AccountsHere> transferAccountsHere = new();
    private readonly Buffer<(UInt128 Id, PendingStatus Status)> pendingStatuses = new();
    private readonly Buffer<ExpiryEntry> expiryAdds = new();
    private readonly Buffer<ExpiryEntry> expiryRemoves = new();
    private readonly Buffer<UInt128> transientFailures = new();
    private readonly Buffer<AccountBalanceEntry> accountBalances = new();
    private readonly Buffer<SideRecord> sideRecords = new();

    // In-memory fast path (internal, not part of the store contract): the store slot each account
    // was read from (-1: new or unknown), and for each transfer the positions of its debit and
    // credit accounts in Accounts. Only the ledger's own batches carry them (HasHints).
    private readonly Buffer<int> accountStoreSlots = new();
    private readonly Buffer<(int Debit, int Credit)> transferAccountPositions = new();

    /// <summary>Final value of every account created or changed by the batch (upsert), each once.</summary>
    public ReadOnlySpan<Account> Accounts => accounts.Span;

    /// <summary>Transfers created by the batch, ascending by timestamp.</summary>
    public ReadOnlySpan<Transfer> Transfers => transfers.Span;

    /// <summary>
    /// For each of <see cref="Transfers"/>, which of its accounts are stored on this shard: the per-account index
    /// needs entries for those only, since a query of an account goes to the account's shard. A cross-shard
    /// transfer stored on a shard that holds one of its accounts, or none, names fewer than both.
    /// </summary>
    public ReadOnlySpan<AccountsHere> TransferAccountsHere => transferAccountsHere.Span;

    /// <summary>New statuses of pending transfers, in the order they happened (last one wins).</summary>
    public ReadOnlySpan<(UInt128 Id, PendingStatus Status)> PendingStatuses => pendingStatuses.Span;

    /// <summary>Expiry-index entries to add (pending transfers with a timeout).</summary>
    public ReadOnlySpan<ExpiryEntry> ExpiryAdds => expiryAdds.Span;

    /// <summary>Expiry-index entries to remove (posted, voided or expired), applied after the adds.</summary>
    public ReadOnlySpan<ExpiryEntry> ExpiryRemoves => expiryRemoves.Span;

    /// <summary>Transfer ids that failed with a transient status (they are burnt).</summary>
    public ReadOnlySpan<UInt128> TransientFailures => transientFailures.Span;

    /// <summary>Balance-history records to append (accounts with the history flag).</summary>
    public ReadOnlySpan<AccountBalanceEntry> AccountBalances => accountBalances.Span;

    /// <summary>Side-table puts (value set) and deletes (value null), in order: the last write of a key wins.</summary>
    public ReadOnlySpan<SideRecord> SideRecords => sideRecords.Span;

    /// <summary>The store's new <see cref="ILedgerStore.LastTimestamp"/>.</summary>
    public ulong LastTimestamp { get; set; }

    /// <summary>
    /// The Raft log index this batch came from (0 when unknown). Stores that persist an applied
    /// index write it in the same atomic commit as the state it describes.
    /// </summary>
    public ulong AppliedIndex { get; set; }

    internal bool HasHints { get; set; }

    internal ReadOnlySpan<int> AccountStoreSlots => accountStoreSlots.Span;

    internal ReadOnlySpan<(int Debit, int Credit)> TransferAccountPositions => transferAccountPositions.Span;

    internal Span<(int Debit, int Credit)> TransferAccountPositionsForUpdate => transferAccountPositions.WritableSpan;

    internal void AddAccount(in Account account, int storeSlot)
    {
        accounts.Add(account);
        accountStoreSlots.Add(storeSlot);
    }

    internal void AddTransfer(in Transfer transfer, int debitPosition, int creditPosition)
    {
        AddTransfer(transfer);
        transferAccountPositions.Add((debitPosition, creditPosition));
    }

    /// <summary>Empties the set, keeping its buffers.</summary>
    public void Clear()
    {
        HasHints = false;
        accountStoreSlots.Clear();
        transferAccountPositions.Clear();
        accounts.Clear();
        transfers.Clear();
        transferAccountsHere.Clear();
        pendingStatuses.Clear();
        expiryAdds.Clear();
        expiryRemoves.Clear();
        transientFailures.Clear();
        accountBalances.Clear();
        sideRecords.Clear();
        LastTimestamp = 0;
        AppliedIndex = 0;
    }

    /// <summary>True when nothing but the timestamp would be written.</summary>
    public bool IsEmpty =>
        accounts.Count == 0 && transfers.Count == 0 && pendingStatuses.Count == 0 &&
        expiryAdds.Count == 0 && expiryRemoves.Count == 0 && transientFailures.Count == 0 &&
        accountBalances.Count == 0 && sideRecords.Count == 0;

    public void AddAccount(in Account account) => accounts.Add(account);

    /// <summary>Adds a created transfer whose accounts are both taken as stored here (see <see cref="TransferAccountsHere"/>).</summary>
    public void AddTransfer(in Transfer transfer) => AddTransfer(transfer, AccountsHere.Both);

    public void AddTransfer(in Transfer transfer, AccountsHere accountsHere)
    {
        Invariant.Check(transfers.Count == 0 || transfers.Span[^1].Timestamp < transfer.Timestamp);
        Invariant.Check((accountsHere & ~AccountsHere.Both) == 0, "only the debit and credit accounts can be here");
        transfers.Add(transfer);
        transferAccountsHere.Add(accountsHere);
    }

    public void AddPendingStatus(UInt128 id, PendingStatus status) => pendingStatuses.Add((id, status));

    public void AddExpiry(ExpiryEntry entry) => expiryAdds.Add(entry);

    public void RemoveExpiry(ExpiryEntry entry) => expiryRemoves.Add(entry);

    public void AddTransientFailure(UInt128 id) => transientFailures.Add(id);

    public void AddAccountBalance(in AccountBalanceEntry entry) => accountBalances.Add(entry);

    /// <summary>Puts (non-null value) or deletes (null) a side-table record.</summary>
    public void AddSideRecord(in SideRecord record)
    {
        Invariant.Check(record.Value is null || record.Value.Length <= LedgerLimits.SideRecordBytesMax);
        sideRecords.Add(record);
    }

    /// <summary>Drops the newest writes (a linked chain that failed); accounts are rolled back by the ledger before they get here.</summary>
    internal void Truncate(int transferCount, int pendingStatusCount, int expiryAddCount, int expiryRemoveCount, int accountBalanceCount)
    {
        Invariant.Check(accounts.Count == 0);
        transfers.Truncate(transferCount);
        transferAccountsHere.Truncate(transferCount);
        transferAccountPositions.Truncate(Math.Min(transferCount, transferAccountPositions.Count));
        pendingStatuses.Truncate(pendingStatusCount);
        expiryAdds.Truncate(expiryAddCount);
        expiryRemoves.Truncate(expiryRemoveCount);
        accountBalances.Truncate(accountBalanceCount);
    }

    /// <summary>A growable array that keeps its storage across batches (no allocation in steady state).</summary>
    private sealed class Buffer<T>
    {
        private T[] items = new T[16];

        public int Count { get; private set; }

        public ReadOnlySpan<T> Span => items.AsSpan(0, Count);

        public Span<T> WritableSpan => items.AsSpan(0, Count);

        public void Add(in T item)
        {
            if (Count == items.Length)
            {
                Array.Resize(ref items, items.Length * 2);
            }

            items[Count++] = item;
        }

        public void Clear() => Count = 0;

        public void Truncate(int count)
        {
            Invariant.Check(count >= 0 && count <= Count);
            Count = count;
        }
    }
}
