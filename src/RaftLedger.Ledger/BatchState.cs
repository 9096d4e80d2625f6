using RaftLedger.Common;

namespace RaftLedger.Ledger;

/// <summary>
/// The ledger's view of the batch in flight: the store's committed state plus this batch's writes.
/// Reads go here first, then to the store. Writes land in the <see cref="LedgerWriteSet"/> (handed
/// to the store at the end of the batch) and in small caches. Inside a linked chain every change
/// is logged so that a failing chain can be rolled back (<see cref="Savepoint"/>/<see cref="Rollback"/>).
/// All buffers are reused across batches: nothing is allocated per event in steady state.
/// </summary>
internal sealed class BatchState
{
    private readonly ILedgerStore store;

    // The in-memory store's fast path: reads report the slot a record lives in, and the write set
    // carries those slots back, which saves the store its id lookups at commit.
    private readonly InMemoryLedgerStore? memoryStore;
    private readonly IdTable accountSlotById = new(2 * LedgerLimits.BatchEventsMax);
    private AccountSlot[] accountSlots = new AccountSlot[64];
    private int[] writePositionOfSlot = new int[64];
    private int accountSlotCount;

    // Transfers created in this batch: id -> index in Writes.Transfers.
    private readonly IdTable createdTransferById = new(LedgerLimits.BatchEventsMax);
    // Pending-status changes of this batch: id -> (int)PendingStatus. An IdTable rather than a
    // Dictionary: two-phase batches look a status up for every post or void.
    private readonly IdTable statusById = new(2 * LedgerLimits.BatchEventsMax);
    private readonly HashSet<UInt128> transientFailures = [];

    // Side-table writes of this batch (cross-shard commands only): null value = deleted.
    private readonly Dictionary<(byte Table, UInt128 Key), byte[]?> sideRecords = [];

    // Invariant: undo is empty unless a chain is open (savepointTaken).
    private UndoRecord[] undo = new UndoRecord[64];
    private int undoCount;
    private bool savepointTaken;
    private Mark savepoint;

    public BatchState(ILedgerStore store)
    {
        this.store = store;
        memoryStore = store as InMemoryLedgerStore;
    }

    public LedgerWriteSet Writes { get; } = new();

    /// <summary>Starts loading what a later transfer event will read from the in-memory store (no-op for other stores).</summary>
    public void Prefetch(UInt128 transferId, UInt128 debitAccountId, UInt128 creditAccountId) =>
        memoryStore?.Prefetch(transferId, debitAccountId, creditAccountId);

    /// <summary>Second prefetch stage for the in-memory store: the account records themselves.</summary>
    public void PrefetchAccountRecords(UInt128 debitAccountId, UInt128 creditAccountId) =>
        memoryStore?.PrefetchAccountRecords(debitAccountId, creditAccountId);

    /// <summary>Prefetch stage 0..3 of a post or void (in-memory store only): see <see cref="InMemoryLedgerStore.PrefetchPending"/>.</summary>
    public void PrefetchPending(UInt128 transferId, UInt128 pendingId, int stage) => memoryStore?.PrefetchPending(transferId, pendingId, stage);

    /// <summary>Finds (and caches) an account; returns its slot, whose <c>Exists</c> says whether it is there.</summary>
    public int LoadAccount(UInt128 id)
    {
        ref var slot = ref accountSlotById.GetOrAdd(id, out var added);
        if (added)
        {
            slot = accountSlotCount;
            if (accountSlotCount == accountSlots.Length)
            {
                Array.Resize(ref accountSlots, accountSlots.Length * 2);
                Array.Resize(ref writePositionOfSlot, accountSlots.Length);
            }

            ref var fresh = ref accountSlots[accountSlotCount++];
            fresh.StoreSlot = -1;
            fresh.Exists = memoryStore is not null
                ? memoryStore.TryGetAccount(id, out fresh.Account, out fresh.StoreSlot)
                : store.TryGetAccount(id, out fresh.Account);
            fresh.Dirty = false;
        }

        return slot;
    }

    public ref AccountSlot Account(int slot) => ref accountSlots[slot];

    /// <summary>Call before changing or creating the account in <paramref name="slot"/>: logs it for rollback, marks it dirty.</summary>
    public ref Account Modify(int slot)
    {
        ref var account = ref accountSlots[slot];
        if (savepointTaken)
        {
            Push(new UndoRecord { Kind = UndoKind.Account, Slot = slot, Account = account.Account, Exists = account.Exists, Dirty = account.Dirty });
        }

        account.Dirty = true;
        return ref account.Account;
    }

    public void CreateAccount(int slot, in Account account)
    {
        Invariant.Check(!accountSlots[slot].Exists);
        Modify(slot) = account;
        accountSlots[slot].Exists = true;
    }

    public bool TryGetTransfer(UInt128 id, out Transfer transfer)
    {
        if (createdTransferById.TryGetValue(id, out var index))
        {
            transfer = Writes.Transfers[index];
            return true;
        }

        return store.TryGetTransfer(id, out transfer);
    }

    /// <summary>Records a created transfer; <paramref name="debitSlot"/> and <paramref name="creditSlot"/> are its accounts' slots.</summary>
    public void CreateTransfer(in Transfer transfer, int debitSlot, int creditSlot)
    {
        createdTransferById.GetOrAdd(transfer.Id, out var added) = Writes.Transfers.Length;
        Invariant.Check(added, "a transfer id is created once");
        Writes.AddTransfer(transfer, debitSlot, creditSlot);
    }

    /// <summary>
    /// Records a transfer that is not indexed through this batch's account slots: a cross-shard
    /// transfer whose accounts (one or both) live on other shards; <paramref name="accountsHere"/> names
    /// those stored on this one. A batch that uses this commits without the in-memory store's slot hints.
    /// </summary>
    public void CreateForeignTransfer(in Transfer transfer, AccountsHere accountsHere)
    {
        Invariant.Check(!savepointTaken, "cross-shard writes are not rolled back");
        createdTransferById.GetOrAdd(transfer.Id, out var added) = Writes.Transfers.Length;
        Invariant.Check(added, "a transfer id is created once");
        Writes.AddTransfer(transfer, accountsHere);
    }

    public bool TryGetSideRecord(byte table, UInt128 key, out byte[] value)
    {
        if (sideRecords.TryGetValue((table, key), out var written))
        {
            value = written ?? [];
            return written is not null;
        }

        return store.TryGetSideRecord(table, key, out value);
    }

    /// <summary>Puts (or, with a null value, deletes) a side-table record. Not rolled back: cross-shard commands take no savepoints around it.</summary>
    public void SetSideRecord(byte table, UInt128 key, byte[]? value)
    {
        Invariant.Check(!savepointTaken, "side records are written outside linked-chain savepoints");
        sideRecords[(table, key)] = value;
        Writes.AddSideRecord(new SideRecord(table, key, value));
    }

    public PendingStatus GetPendingStatus(UInt128 id) =>
        statusById.TryGetValue(id, out var status) ? (PendingStatus)status : store.GetPendingStatus(id);

    public void SetPendingStatus(UInt128 id, PendingStatus status)
    {
        ref var entry = ref statusById.GetOrAdd(id, out var added);
        if (savepointTaken)
        {
            Push(new UndoRecord { Kind = UndoKind.Status, Id = id, Exists = !added, Status = (PendingStatus)entry });
        }

        entry = (int)status;
        Writes.AddPendingStatus(id, status);
    }

    public bool IsTransientFailure(UInt128 id) =>
        (transientFailures.Count != 0 && transientFailures.Contains(id)) || store.IsTransientFailure(id);

    /// <summary>Burns an id. Never rolled back: the event that failed keeps its status.</summary>
    public void AddTransientFailure(UInt128 id)
    {
        Invariant.Check(!createdTransferById.TryGetValue(id, out _));
        if (transientFailures.Add(id))
        {
            Writes.AddTransientFailure(id);
        }
    }

    public void Savepoint()
    {
        Invariant.Check(!savepointTaken);
        savepointTaken = true;
        savepoint = new Mark(Writes.Transfers.Length, Writes.PendingStatuses.Length, Writes.ExpiryAdds.Length, Writes.ExpiryRemoves.Length, Writes.AccountBalances.Length);
    }

    /// <summary>The chain succeeded: its changes stay.</summary>
    public void Release()
    {
        savepointTaken = false;
        undoCount = 0;
    }

    /// <summary>The chain failed: undo every change since <see cref="Savepoint"/>, newest first.</summary>
    public void Rollback()
    {
        Invariant.Check(savepointTaken);
        for (var i = undoCount - 1; i >= 0; i--)
        {
            ref readonly var record = ref undo[i];
            if (record.Kind == UndoKind.Account)
            {
                ref var slot = ref accountSlots[record.Slot];
                slot.Account = record.Account;
                slot.Exists = record.Exists;
                slot.Dirty = record.Dirty;
            }
            else if (record.Exists)
            {
                statusById.GetOrAdd(record.Id, out _) = (int)record.Status;
            }
            else
            {
                statusById.Remove(record.Id);
            }
        }

        var transfers = Writes.Transfers;
        for (var i = savepoint.Transfers; i < transfers.Length; i++)
        {
            createdTransferById.Remove(transfers[i].Id);
        }

        Writes.Truncate(savepoint.Transfers, savepoint.PendingStatuses, savepoint.ExpiryAdds, savepoint.ExpiryRemoves, savepoint.AccountBalances);
        Release();
    }

    /// <summary>Moves the dirty accounts into the write set, commits it, and forgets the batch.</summary>
    public void Commit(ulong lastTimestamp, ulong appliedIndex, bool hints = true)
    {
        Invariant.Check(!savepointTaken, "a chain cannot stay open past the end of a batch");
        var written = 0;
        for (var i = 0; i < accountSlotCount; i++)
        {
            writePositionOfSlot[i] = -1;
            if (accountSlots[i].Dirty)
            {
                Invariant.Check(accountSlots[i].Exists);
                Writes.AddAccount(accountSlots[i].Account, accountSlots[i].StoreSlot);
                writePositionOfSlot[i] = written++;
            }
        }

        // Transfers named their accounts by batch slot; the store wants positions in Writes.Accounts.
        foreach (ref var positions in Writes.TransferAccountPositionsForUpdate)
        {
            positions = (writePositionOfSlot[positions.Debit], writePositionOfSlot[positions.Credit]);
            Invariant.Check(positions.Debit >= 0 && positions.Credit >= 0, "a created transfer's accounts are written");
        }

        Writes.HasHints = hints;

        Writes.LastTimestamp = lastTimestamp;
        Writes.AppliedIndex = appliedIndex;
        store.Commit(Writes);
        Reset();
    }

    public void Reset()
    {
        Writes.Clear();
        accountSlotById.Clear();
        accountSlotCount = 0;
        createdTransferById.Clear();
        statusById.Clear();
        transientFailures.Clear();
        if (sideRecords.Count != 0)
        {
            sideRecords.Clear();
        }

        undoCount = 0;
        savepointTaken = false;
    }

    private void Push(in UndoRecord record)
    {
        if (undoCount == undo.Length)
        {
            Array.Resize(ref undo, undo.Length * 2);
        }

        undo[undoCount++] = record;
    }

    internal struct AccountSlot
    {
        public Account Account;

        // Where the in-memory store keeps this account (-1: new, or another store).
        public int StoreSlot;
        public bool Exists;

        // True when the batch changed the account: it goes to the write set.
        public bool Dirty;
    }

    private enum UndoKind : byte
    {
        Account,
        Status,
    }

    private struct UndoRecord
    {
        public Account Account;
        public UInt128 Id;
        public int Slot;
        public UndoKind Kind;
        public bool Exists;
        public bool Dirty;
        public PendingStatus Status;
    }

    private readonly record struct Mark(int Transfers, int PendingStatuses, int ExpiryAdds, int ExpiryRemoves, int AccountBalances);
}
