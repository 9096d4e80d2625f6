using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger;

namespace RaftLedger.Storage.Rocks;

public sealed partial class RocksLedgerStore
{
    /// <summary>
    /// Writes the batch's changes in the order the contract gives, plus the last timestamp and the applied index,
    /// as one RocksDB WriteBatch (not synced: the Raft WAL is the durable record, see <see cref="RocksLedgerDatabase"/>).
    /// </summary>
    public void Commit(LedgerWriteSet writes)
    {
        ArgumentNullException.ThrowIfNull(writes);
        EnsureCurrent();
        prefetched.Clear(); // answers of the state this commit replaces
        Invariant.Check(writes.LastTimestamp >= LastTimestamp, "timestamps never go back");
        Span<byte> value = stackalloc byte[LedgerLimits.RecordSizeBytes];
        var accounts = writes.Accounts;
        foreach (var position in keyOrder.Sort(accounts.Length, new AccountIds(accounts)))
        {
            ref readonly var account = ref accounts[position];
            LedgerCodec.WriteAccount(value, account);
            batch.Put(RocksTable.Accounts, AccountKey(account.Id), value);
        }

        StageTransfers(writes.Transfers, writes.TransferAccountsHere, value);
        StageIndexes(writes, value);
        BinaryPrimitives.WriteUInt64LittleEndian(value, writes.LastTimestamp);
        batch.Put(RocksTable.LedgerState, LedgerStateLastTimestamp, value[..TimestampBytes]);
        if (writes.AppliedIndex == 0)
        {
            batch.CommitWithoutIndex();
        }
        else
        {
            batch.Commit(writes.AppliedIndex);
        }

        AfterCommit(writes);
    }

    /// <summary>
    /// Stages the transfers table by id, the timestamp index and the per-account index, each in key order (see
    /// <see cref="RocksKeyOrder"/>). Both indexes are written in groups (see <see cref="RocksTable"/>): a memtable
    /// insert costs about as much as the rest of a transfer's apply, and grouping saves two of the five per transfer
    /// when accounts repeat within a write set.
    /// </summary>
    private void StageTransfers(ReadOnlySpan<Transfer> transfers, ReadOnlySpan<AccountsHere> accountsHere, Span<byte> value)
    {
        foreach (var position in keyOrder.Sort(transfers.Length, new TransferIds(transfers)))
        {
            ref readonly var transfer = ref transfers[position];
            LedgerCodec.WriteTransfer(value, transfer);
            batch.Put(RocksTable.Transfers, IdKey(transfer.Id), value);
        }

        StageTimestampGroups(transfers);
        StageAccountIndexGroups(transfers, accountsHere);
    }

    /// <summary>One record per run of up to <see cref="RocksLedgerLimits.TimestampGroupIdsMax"/> transfers.</summary>
    private void StageTimestampGroups(ReadOnlySpan<Transfer> transfers)
    {
        Span<byte> key = stackalloc byte[TimestampBytes];
        for (var first = 0; first < transfers.Length; first += RocksLedgerLimits.TimestampGroupIdsMax)
        {
            var count = Math.Min(RocksLedgerLimits.TimestampGroupIdsMax, transfers.Length - first);
            for (var i = 0; i < count; i++)
            {
                ref readonly var transfer = ref transfers[first + i];
                Invariant.Check(first + i == 0 || transfer.Timestamp > transfers[first + i - 1].Timestamp, "a write set's transfers ascend by timestamp");
                BinaryPrimitives.WriteUInt128BigEndian(groupBuffer.AsSpan(i * IdBytes), transfer.Id);
            }

            BinaryPrimitives.WriteUInt64BigEndian(key, transfers[first].Timestamp);
            batch.Put(RocksTable.TransferTimestamps, key, groupBuffer.AsSpan(0, count * IdBytes));
        }
    }

    /// <summary>
    /// One record per account per run of up to <see cref="RocksLedgerLimits.AccountIndexGroupEntriesMax"/> entries.
    /// Entry 2i is transfer i's debit side, 2i+1 its credit side; sorting by account keeps equal accounts in that
    /// order, which is timestamp order. Sides whose account is not stored here get no entry: queries of an account
    /// go to its shard, so the entry would never be read, and a cross-shard transfer would pay two more memtable
    /// inserts on every replica for it.
    /// </summary>
    private void StageAccountIndexGroups(ReadOnlySpan<Transfer> transfers, ReadOnlySpan<AccountsHere> accountsHere)
    {
        Invariant.Check(accountsHere.Length == transfers.Length, "every transfer names the accounts stored here");
        Span<byte> key = stackalloc byte[IdBytes + TimestampBytes];
        var accounts = new TransferAccountIds(transfers);
        var entries = keyOrder.Sort(transfers.Length * 2, accounts);
        var runStart = 0;
        while (runStart < entries.Length)
        {
            var accountId = accounts.KeyAt(entries[runStart]);
            var runLength = 0;
            var count = 0;
            while (runStart + runLength < entries.Length && count < RocksLedgerLimits.AccountIndexGroupEntriesMax &&
                accounts.KeyAt(entries[runStart + runLength]) == accountId)
            {
                var entry = entries[runStart + runLength++];
                if (IsHere(accountsHere[entry >> 1], entry))
                {
                    WriteIndexEntry(groupBuffer.AsSpan(count++ * AccountIndexEntryBytes, AccountIndexEntryBytes), transfers[entry >> 1], entry);
                }
            }

            if (count > 0)
            {
                var firstTimestamp = BinaryPrimitives.ReadUInt64BigEndian(groupBuffer);
                batch.Put(RocksTable.AccountTransfers, AccountTimeKey(key, accountId, firstTimestamp), groupBuffer.AsSpan(0, count * AccountIndexEntryBytes));
            }

            runStart += runLength;
        }
    }

    private static bool IsHere(AccountsHere here, int entry) =>
        (here & ((entry & 1) == 0 ? AccountsHere.Debit : AccountsHere.Credit)) != 0;

    private static void WriteIndexEntry(Span<byte> slot, in Transfer transfer, int entry)
    {
        BinaryPrimitives.WriteUInt64BigEndian(slot, transfer.Timestamp);
        BinaryPrimitives.WriteUInt128BigEndian(slot[TimestampBytes..], transfer.Id);
        slot[TimestampBytes + IdBytes] = (byte)(entry & 1);
    }

    private readonly ref struct AccountIds(ReadOnlySpan<Account> accounts) : RocksKeyOrder.IKeySource
    {
        private readonly ReadOnlySpan<Account> accounts = accounts;

        public UInt128 KeyAt(int index) => accounts[index].Id;
    }

    private readonly ref struct TransferIds(ReadOnlySpan<Transfer> transfers) : RocksKeyOrder.IKeySource
    {
        private readonly ReadOnlySpan<Transfer> transfers = transfers;

        public UInt128 KeyAt(int index) => transfers[index].Id;
    }

    /// <summary>Entry 2i: transfer i's debit account; entry 2i+1: its credit account.</summary>
    private readonly ref struct TransferAccountIds(ReadOnlySpan<Transfer> transfers) : RocksKeyOrder.IKeySource
    {
        private readonly ReadOnlySpan<Transfer> transfers = transfers;

        public UInt128 KeyAt(int index)
        {
            ref readonly var transfer = ref transfers[index >> 1];
            return (index & 1) == 0 ? transfer.DebitAccountId : transfer.CreditAccountId;
        }
    }

    private void StageIndexes(LedgerWriteSet writes, Span<byte> value)
    {
        Span<byte> key = stackalloc byte[IdBytes + TimestampBytes];
        foreach (var (id, status) in writes.PendingStatuses)
        {
            Invariant.Check(status != PendingStatus.None, "a stored status is a real status");
            value[0] = (byte)status;
            batch.Put(RocksTable.PendingStatuses, IdKey(id), value[..1]);
        }

        foreach (var entry in writes.ExpiryAdds)
        {
            batch.Put(RocksTable.Expiry, ExpiryKey(key, entry), []);
        }

        foreach (var entry in writes.ExpiryRemoves)
        {
            batch.Delete(RocksTable.Expiry, ExpiryKey(key, entry));
        }

        value[0] = BurntIdMarker;
        foreach (var id in writes.TransientFailures)
        {
            batch.Put(RocksTable.Transfers, IdKey(id), value[..1]);
        }

        foreach (ref readonly var entry in writes.AccountBalances)
        {
            LedgerCodec.WriteAccountBalance(value, entry.Balance);
            batch.Put(RocksTable.AccountBalances, AccountTimeKey(key, entry.AccountId, entry.Balance.Timestamp), value);
        }

        foreach (ref readonly var record in writes.SideRecords)
        {
            if (!IsStored(record.Table))
            {
                continue; // Derived from the Prepared records: kept in memory only (KeepDerivedRecords).
            }

            if (record.Value is null)
            {
                batch.Delete(RocksTable.SideRecords, SideKey(key, record.Table, record.Key));
            }
            else
            {
                batch.Put(RocksTable.SideRecords, SideKey(key, record.Table, record.Key), record.Value);
            }
        }
    }

    private static ReadOnlySpan<byte> SideKey(Span<byte> key, byte table, UInt128 id)
    {
        key[0] = table;
        BinaryPrimitives.WriteUInt128BigEndian(key[1..], id);
        return key[..(1 + IdBytes)];
    }

    private void AfterCommit(LedgerWriteSet writes)
    {
        foreach (ref readonly var account in writes.Accounts)
        {
            CacheAccount(account);
        }

        // Every key this commit wrote to the Transfers table: created transfers and burnt ids.
        foreach (ref readonly var transfer in writes.Transfers)
        {
            NoteStoredTransferId(transfer.Id);
        }

        foreach (var id in writes.TransientFailures)
        {
            NoteStoredTransferId(id);
        }

        foreach (var entry in writes.ExpiryAdds)
        {
            expiryFloor = Math.Min(expiryFloor, entry.ExpiresAt);
        }

        MirrorSideRecords(writes);
        lookupMemoValid = false;
        LastTimestamp = writes.LastTimestamp;
    }

    /// <summary>
    /// Deletes the shard's whole state, applied index included (it becomes 0). Nothing of the emptied state is
    /// durable until the next <see cref="RocksLedgerDatabase.MakeDurable"/>.
    /// </summary>
    public void Clear()
    {
        batch.Clear();
        shard.ResetState();
        Reload();
        Invariant.Check(LastTimestamp == 0);
    }

    private ReadOnlySpan<byte> AccountKey(UInt128 id)
    {
        BinaryPrimitives.WriteUInt128BigEndian(accountKeyScratch, id);
        return accountKeyScratch; // the suffix bytes stay zero
    }

    private ReadOnlySpan<byte> IdKey(UInt128 id)
    {
        BinaryPrimitives.WriteUInt128BigEndian(idKeyScratch, id);
        return idKeyScratch;
    }

    private static ReadOnlySpan<byte> AccountTimeKey(Span<byte> key, UInt128 accountId, ulong timestamp)
    {
        BinaryPrimitives.WriteUInt128BigEndian(key, accountId);
        BinaryPrimitives.WriteUInt64BigEndian(key[IdBytes..], timestamp);
        return key;
    }

    private static ReadOnlySpan<byte> ExpiryKey(Span<byte> key, ExpiryEntry entry)
    {
        BinaryPrimitives.WriteUInt64BigEndian(key, entry.ExpiresAt);
        BinaryPrimitives.WriteUInt128BigEndian(key[TimestampBytes..], entry.TransferId);
        return key;
    }
}
