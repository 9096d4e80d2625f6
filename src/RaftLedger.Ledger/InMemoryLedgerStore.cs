using RaftLedger.Common;

namespace RaftLedger.Ledger;

/// <summary>
/// An <see cref="ILedgerStore"/> in memory, built for throughput: records live in arrays of structs
/// indexed by slot, ids map to slots through struct-keyed dictionaries, and the per-account transfer
/// and balance indexes are linked lists threaded through those arrays. Nothing is allocated per
/// record once the arrays have grown (pass capacities to avoid growth altogether).
/// </summary>
public sealed class InMemoryLedgerStore : ILedgerStore
{
    private const int NoSlot = -1;

    private readonly IdTable accountSlotById;
    private readonly IdTable transferSlotById;
    private readonly HashSet<UInt128> transientFailures = [];
    private readonly Dictionary<(byte Table, UInt128 Key), byte[]> sideRecords = [];
    private readonly List<int> queryScratch = [];
    private int[] resolvedSlots = new int[64];

    private AccountRecord[] accounts;
    private int accountCount;
    private TransferRecord[] transfers;
    private int transferCount;
    private BalanceRecord[] balances = new BalanceRecord[16];
    private int balanceCount;

    // Invariant: expiry[expiryHead .. expiryHead + expiryCount) is sorted ascending. Removed entries
    // stay until they reach the head (lazy deletion): an entry is live only while its transfer is Pending.
    private ExpiryEntry[] expiry = new ExpiryEntry[16];
    private int expiryHead;
    private int expiryCount;

    public InMemoryLedgerStore(int accountCapacity = 1024, int transferCapacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(accountCapacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(transferCapacity);
        accountSlotById = new IdTable(accountCapacity);
        transferSlotById = new IdTable(transferCapacity);
        accounts = new AccountRecord[accountCapacity];
        transfers = new TransferRecord[transferCapacity];

        // Sized up front, like TigerBeetle's static allocation: touch the pages now so that the
        // operating system's first-touch page faults do not land in the middle of applying batches.
        TouchPages<AccountRecord>(accounts);
        TouchPages<TransferRecord>(transfers);
    }

    private static void TouchPages<T>(T[] array)
        where T : struct
    {
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(array.AsSpan());
        for (var offset = 0; offset < bytes.Length; offset += 4096)
        {
            bytes[offset] = 0;
        }
    }

    public ulong LastTimestamp { get; private set; }

    /// <summary>Number of accounts stored.</summary>
    public int AccountCount => accountCount;

    /// <summary>Number of transfers stored.</summary>
    public int TransferCount => transferCount;

    public bool TryGetAccount(UInt128 id, out Account account)
    {
        if (accountSlotById.TryGetValue(id, out var slot))
        {
            account = accounts[slot].Account;
            return true;
        }

        account = default;
        return false;
    }

    /// <summary>The ledger's fast path: starts loading what a transfer event will look up (its id, its accounts).</summary>
    internal void Prefetch(UInt128 transferId, UInt128 debitAccountId, UInt128 creditAccountId)
    {
        transferSlotById.Prefetch(transferId);
        accountSlotById.Prefetch(debitAccountId);
        accountSlotById.Prefetch(creditAccountId);
    }

    /// <summary>Second stage, a few events later: the id table lines are cached by now, so find the account records and start loading them.</summary>
    internal unsafe void PrefetchAccountRecords(UInt128 debitAccountId, UInt128 creditAccountId)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported)
        {
            return;
        }

        if (accountSlotById.TryGetValue(debitAccountId, out var debit))
        {
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(System.Runtime.CompilerServices.Unsafe.AsPointer(ref accounts[debit]));
        }

        if (accountSlotById.TryGetValue(creditAccountId, out var credit))
        {
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(System.Runtime.CompilerServices.Unsafe.AsPointer(ref accounts[credit]));
        }
    }

    /// <summary>
    /// The ledger's fast path for a post or void, in four stages a few events apart, each using what
    /// the previous one brought into cache: 0 the id entries of the event and its pending transfer,
    /// 1 the pending transfer's record, 2 its accounts' id entries, 3 its accounts' records.
    /// </summary>
    internal unsafe void PrefetchPending(UInt128 transferId, UInt128 pendingId, int stage)
    {
        if (stage == 0)
        {
            transferSlotById.Prefetch(transferId);
            transferSlotById.Prefetch(pendingId);
            return;
        }

        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported || !transferSlotById.TryGetValue(pendingId, out var slot))
        {
            return;
        }

        ref readonly var pending = ref transfers[slot].Transfer;
        if (stage == 1)
        {
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(System.Runtime.CompilerServices.Unsafe.AsPointer(ref transfers[slot]));
        }
        else if (stage == 2)
        {
            accountSlotById.Prefetch(pending.DebitAccountId);
            accountSlotById.Prefetch(pending.CreditAccountId);
        }
        else
        {
            PrefetchAccountRecords(pending.DebitAccountId, pending.CreditAccountId);
        }
    }

    /// <summary>The ledger's fast path: also says which slot the account lives in (-1 when absent), for <see cref="LedgerWriteSet"/> hints.</summary>
    internal bool TryGetAccount(UInt128 id, out Account account, out int slot)
    {
        if (accountSlotById.TryGetValue(id, out slot))
        {
            account = accounts[slot].Account;
            return true;
        }

        slot = -1;
        account = default;
        return false;
    }

    public bool TryGetTransfer(UInt128 id, out Transfer transfer)
    {
        if (transferSlotById.TryGetValue(id, out var slot))
        {
            transfer = transfers[slot].Transfer;
            return true;
        }

        transfer = default;
        return false;
    }

    public PendingStatus GetPendingStatus(UInt128 pendingId) =>
        transferSlotById.TryGetValue(pendingId, out var slot) ? transfers[slot].Status : PendingStatus.None;

    public bool IsTransientFailure(UInt128 transferId) =>
        transientFailures.Count != 0 && transientFailures.Contains(transferId);

    public int CollectExpired(ulong expiresAtMax, ExpiryEntry after, Span<ExpiryEntry> into)
    {
        TrimDeadExpiryHead();
        var written = 0;
        var index = FirstExpiryAfter(after);
        var end = expiryHead + expiryCount;
        for (; index < end && written < into.Length; index++)
        {
            var entry = expiry[index];
            if (entry.ExpiresAt > expiresAtMax)
            {
                break;
            }

            if (GetPendingStatus(entry.TransferId) == PendingStatus.Pending)
            {
                into[written++] = entry;
            }
        }

        return written;
    }

    public int GetAccountTransfers(in AccountFilter filter, Span<Transfer> into)
    {
        var limit = Math.Min((int)Math.Min(filter.Limit, int.MaxValue), into.Length);
        if (limit == 0 || !accountSlotById.TryGetValue(filter.AccountId, out var accountSlot))
        {
            return 0;
        }

        var reversed = (filter.Flags & AccountFilterFlags.Reversed) != 0;
        var matches = queryScratch;
        matches.Clear();
        for (var slot = accounts[accountSlot].LastTransfer; slot != NoSlot;)
        {
            ref readonly var record = ref transfers[slot];
            var isDebit = record.Transfer.DebitAccountId == filter.AccountId;
            var next = isDebit ? record.PreviousForDebit : record.PreviousForCredit;
            var timestamp = record.Transfer.Timestamp;
            if (filter.TimestampMin != 0 && timestamp < filter.TimestampMin)
            {
                break;
            }

            var wanted = isDebit ? AccountFilterFlags.Debits : AccountFilterFlags.Credits;
            if ((filter.TimestampMax == 0 || timestamp <= filter.TimestampMax) && (filter.Flags & wanted) != 0)
            {
                matches.Add(slot);
                if (reversed && matches.Count == limit)
                {
                    break;
                }
            }

            slot = next;
        }

        return CopyMatches(matches, reversed, limit, into);
    }

    public int GetAccountBalances(in AccountFilter filter, Span<AccountBalance> into)
    {
        var limit = Math.Min((int)Math.Min(filter.Limit, int.MaxValue), into.Length);
        if (limit == 0 || !accountSlotById.TryGetValue(filter.AccountId, out var accountSlot))
        {
            return 0;
        }

        var reversed = (filter.Flags & AccountFilterFlags.Reversed) != 0;
        var matches = queryScratch;
        matches.Clear();
        for (var slot = accounts[accountSlot].LastBalance; slot != NoSlot; slot = balances[slot].Previous)
        {
            var timestamp = balances[slot].Balance.Timestamp;
            if (filter.TimestampMin != 0 && timestamp < filter.TimestampMin)
            {
                break;
            }

            if (filter.TimestampMax == 0 || timestamp <= filter.TimestampMax)
            {
                matches.Add(slot);
                if (reversed && matches.Count == limit)
                {
                    break;
                }
            }
        }

        var count = Math.Min(limit, matches.Count);
        for (var i = 0; i < count; i++)
        {
            into[i] = balances[matches[reversed ? i : matches.Count - 1 - i]].Balance;
        }

        return count;
    }

    public void Commit(LedgerWriteSet writes)
    {
        ArgumentNullException.ThrowIfNull(writes);
        Invariant.Check(writes.LastTimestamp >= LastTimestamp);
        if (writes.HasHints)
        {
            CommitWithHints(writes);
        }
        else
        {
            foreach (ref readonly var account in writes.Accounts)
            {
                PutAccount(account);
            }

            var accountsHere = writes.TransferAccountsHere;
            for (var i = 0; i < writes.Transfers.Length; i++)
            {
                ref readonly var transfer = ref writes.Transfers[i];
                var debit = AccountSlot(transfer.DebitAccountId);
                var credit = AccountSlot(transfer.CreditAccountId);
                // Stores that index by the write set's word (RocksDB) would lose this transfer from the account's list.
                Invariant.Check(debit == NoSlot || (accountsHere[i] & AccountsHere.Debit) != 0, "a transfer's debit account stored here is named here");
                Invariant.Check(credit == NoSlot || (accountsHere[i] & AccountsHere.Credit) != 0, "a transfer's credit account stored here is named here");
                InsertTransfer(transfer, debit, credit);
            }
        }

        foreach (var (id, status) in writes.PendingStatuses)
        {
            Invariant.Check(transferSlotById.TryGetValue(id, out var slot), "a status belongs to a stored transfer");
            transfers[slot].Status = status;
        }

        foreach (var entry in writes.ExpiryAdds)
        {
            InsertExpiry(entry);
        }

        // Removals are lazy: the transfer's status (written above) is no longer Pending, so the
        // entry is skipped from now on and dropped when it reaches the head of the index.
        foreach (var id in writes.TransientFailures)
        {
            transientFailures.Add(id);
        }

        foreach (ref readonly var entry in writes.AccountBalances)
        {
            AppendBalance(entry);
        }

        foreach (ref readonly var record in writes.SideRecords)
        {
            if (record.Value is null)
            {
                sideRecords.Remove((record.Table, record.Key));
            }
            else
            {
                sideRecords[(record.Table, record.Key)] = record.Value;
            }
        }

        LastTimestamp = writes.LastTimestamp;
    }

    public void Clear()
    {
        accountSlotById.Clear();
        transferSlotById.Clear();
        transientFailures.Clear();
        sideRecords.Clear();
        accountCount = 0;
        transferCount = 0;
        balanceCount = 0;
        expiryHead = 0;
        expiryCount = 0;
        LastTimestamp = 0;
    }

    public IEnumerable<Account> EnumerateAccounts()
    {
        for (var i = 0; i < accountCount; i++)
        {
            yield return accounts[i].Account;
        }
    }

    public IEnumerable<Transfer> EnumerateTransfers()
    {
        for (var i = 0; i < transferCount; i++)
        {
            yield return transfers[i].Transfer;
        }
    }

    public IEnumerable<UInt128> EnumerateTransientFailures() => transientFailures;

    public bool TryGetSideRecord(byte table, UInt128 key, out byte[] value)
    {
        if (sideRecords.TryGetValue((table, key), out var stored))
        {
            value = (byte[])stored.Clone();
            return true;
        }

        value = [];
        return false;
    }

    public IEnumerable<SideRecord> EnumerateSideRecords()
    {
        var keys = new List<(byte Table, UInt128 Key)>(sideRecords.Keys);
        keys.Sort();
        foreach (var key in keys)
        {
            yield return new SideRecord(key.Table, key.Key, (byte[])sideRecords[key].Clone());
        }
    }

    public int CountSideRecords(byte table)
    {
        var count = 0;
        foreach (var (recordTable, _) in sideRecords.Keys)
        {
            count += recordTable == table ? 1 : 0;
        }

        return count;
    }

    public IEnumerable<SideRecord> EnumerateSideRecords(byte table)
    {
        var keys = new List<UInt128>();
        foreach (var (recordTable, key) in sideRecords.Keys)
        {
            if (recordTable == table)
            {
                keys.Add(key);
            }
        }

        keys.Sort();
        foreach (var key in keys)
        {
            // A record deleted since the keys were taken is skipped, as a store cursor would not see it either.
            if (sideRecords.TryGetValue((table, key), out var value))
            {
                yield return new SideRecord(table, key, (byte[])value.Clone());
            }
        }
    }

    /// <summary>Number of side-table records stored.</summary>
    public int SideRecordCount => sideRecords.Count;

    public IEnumerable<AccountBalanceEntry> EnumerateAccountBalances()
    {
        for (var i = 0; i < balanceCount; i++)
        {
            yield return new AccountBalanceEntry(balances[i].AccountId, balances[i].Balance);
        }
    }

    private int CopyMatches(List<int> matches, bool reversed, int limit, Span<Transfer> into)
    {
        // Matches were collected newest first; ascending output takes the oldest `limit` of them.
        var count = Math.Min(limit, matches.Count);
        for (var i = 0; i < count; i++)
        {
            into[i] = transfers[matches[reversed ? i : matches.Count - 1 - i]].Transfer;
        }

        return count;
    }

    // The ledger's own batches say where each account lives and which accounts each transfer
    // touches, so the store skips the id lookups (the hints are checked, not trusted blindly).
    private void CommitWithHints(LedgerWriteSet writes)
    {
        var accountsWritten = writes.Accounts;
        var storeSlots = writes.AccountStoreSlots;
        if (resolvedSlots.Length < accountsWritten.Length)
        {
            resolvedSlots = new int[Math.Max(accountsWritten.Length, resolvedSlots.Length * 2)];
        }

        for (var i = 0; i < accountsWritten.Length; i++)
        {
            var slot = storeSlots[i];
            if (slot >= 0)
            {
                Invariant.Check(accounts[slot].Account.Id == accountsWritten[i].Id, "a slot hint names the account's slot");
                accounts[slot].Account = accountsWritten[i];
            }
            else
            {
                slot = PutAccount(accountsWritten[i]);
            }

            resolvedSlots[i] = slot;
        }

        var positions = writes.TransferAccountPositions;
        var transfersWritten = writes.Transfers;
        Invariant.Check(positions.Length == transfersWritten.Length);
        for (var i = 0; i < transfersWritten.Length; i++)
        {
            InsertTransfer(transfersWritten[i], resolvedSlots[positions[i].Debit], resolvedSlots[positions[i].Credit]);
        }
    }

    // A cross-shard transfer's record names an account of another shard: it is not indexed under it.
    private int AccountSlot(UInt128 id) => accountSlotById.TryGetValue(id, out var slot) ? slot : NoSlot;

    private int PutAccount(in Account account)
    {
        ref var slot = ref accountSlotById.GetOrAdd(account.Id, out var added);
        if (added)
        {
            slot = accountCount;
            Grow(ref accounts, accountCount);
            accounts[accountCount++] = new AccountRecord { LastTransfer = NoSlot, LastBalance = NoSlot };
        }

        accounts[slot].Account = account;
        return slot;
    }

    private void InsertTransfer(in Transfer transfer, int debitSlot, int creditSlot)
    {
        ref var slot = ref transferSlotById.GetOrAdd(transfer.Id, out var added);
        Invariant.Check(added, "transfers are immutable and inserted once");
        Invariant.Check(transferCount == 0 || transfers[transferCount - 1].Transfer.Timestamp < transfer.Timestamp);
        slot = transferCount;
        Grow(ref transfers, transferCount);
        ref var record = ref transfers[transferCount];
        record.Transfer = transfer;
        record.Status = PendingStatus.None; // Set by the write set's PendingStatuses, as the contract says.
        record.PreviousForDebit = LinkTransfer(debitSlot, transfer.DebitAccountId, transferCount);
        record.PreviousForCredit = LinkTransfer(creditSlot, transfer.CreditAccountId, transferCount);
        transferCount++;
    }

    private int LinkTransfer(int accountSlot, UInt128 accountId, int transferSlot)
    {
        if (accountSlot == NoSlot)
        {
            return NoSlot;
        }

        ref var account = ref accounts[accountSlot];
        Invariant.Check(account.Account.Id == accountId, "a transfer is linked to its own account");
        var previous = account.LastTransfer;
        account.LastTransfer = transferSlot;
        return previous;
    }

    private void AppendBalance(in AccountBalanceEntry entry)
    {
        Invariant.Check(accountSlotById.TryGetValue(entry.AccountId, out var accountSlot), "a balance's account exists");
        Grow(ref balances, balanceCount);
        ref var account = ref accounts[accountSlot];
        balances[balanceCount] = new BalanceRecord { AccountId = entry.AccountId, Balance = entry.Balance, Previous = account.LastBalance };
        account.LastBalance = balanceCount;
        balanceCount++;
    }

    private void InsertExpiry(ExpiryEntry entry)
    {
        if (expiryHead + expiryCount == expiry.Length)
        {
            if (expiryHead > expiry.Length / 2)
            {
                Array.Copy(expiry, expiryHead, expiry, 0, expiryCount);
                expiryHead = 0;
            }
            else
            {
                Array.Resize(ref expiry, expiry.Length * 2);
            }
        }

        // Timeouts are usually alike, so new entries usually belong at the end: no shifting.
        var end = expiryHead + expiryCount;
        var position = end;
        if (expiryCount > 0 && entry.CompareTo(expiry[end - 1]) < 0)
        {
            position = FirstExpiryAfter(entry);
            Array.Copy(expiry, position, expiry, position + 1, end - position);
        }

        expiry[position] = entry;
        expiryCount++;
    }

    private int FirstExpiryAfter(ExpiryEntry after)
    {
        int low = expiryHead, high = expiryHead + expiryCount;
        while (low < high)
        {
            var middle = low + ((high - low) / 2);
            if (expiry[middle].CompareTo(after) <= 0)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }

    private void TrimDeadExpiryHead()
    {
        while (expiryCount > 0 && GetPendingStatus(expiry[expiryHead].TransferId) != PendingStatus.Pending)
        {
            expiryHead++;
            expiryCount--;
        }

        if (expiryCount == 0)
        {
            expiryHead = 0;
        }
    }

    private static void Grow<T>(ref T[] array, int count)
    {
        if (count == array.Length)
        {
            Array.Resize(ref array, array.Length * 2);
        }
    }

    private struct AccountRecord
    {
        public Account Account;
        public int LastTransfer;
        public int LastBalance;
    }

    private struct TransferRecord
    {
        public Transfer Transfer;

        // Threads of the per-account index: the previous transfer of the debit / credit account.
        public int PreviousForDebit;
        public int PreviousForCredit;
        public PendingStatus Status;
    }

    private struct BalanceRecord
    {
        public AccountBalance Balance;
        public UInt128 AccountId;
        public int Previous;
    }
}
