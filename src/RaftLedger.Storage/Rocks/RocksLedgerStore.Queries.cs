using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Storage.Rocks;

public sealed partial class RocksLedgerStore
{
    public int CollectExpired(ulong expiresAtMax, ExpiryEntry after, Span<ExpiryEntry> into)
    {
        EnsureCurrent();
        if (into.IsEmpty || expiresAtMax < after.ExpiresAt || expiresAtMax < expiryFloor)
        {
            return 0;
        }

        Span<byte> key = stackalloc byte[TimestampBytes + IdBytes];
        var lower = RangeKey(RocksTable.Expiry, ExpiryKey(key, after), extraByte: null);
        ExpiryKey(key, new ExpiryEntry(expiresAtMax, UInt128.MaxValue));
        var upper = RangeKey(RocksTable.Expiry, key, extraByte: 0); // just above (expiresAtMax, max id)
        using var cursor = shard.NewRawCursor(lower, upper);
        var written = 0;
        while (written < into.Length && cursor.MoveNext())
        {
            var entryKey = cursor.Key;
            var entry = new ExpiryEntry(BinaryPrimitives.ReadUInt64BigEndian(entryKey), BinaryPrimitives.ReadUInt128BigEndian(entryKey[TimestampBytes..]));
            if (entry.CompareTo(after) > 0)
            {
                into[written++] = entry;
            }
        }

        if (written == 0 && after == default)
        {
            // Nothing expires at or before expiresAtMax, so nothing expires before the earliest entry left. Every applied
            // command asks again with a later time; a floor of expiresAtMax + 1 made each of those asks open an iterator
            // (4-5 % of node CPU at 64 clients with no pending transfers at all).
            expiryFloor = Math.Max(expiryFloor, EarliestExpiryAfter(upper));
        }

        return written;
    }

    /// <summary>The expiry time of the first Expiry entry at or above <paramref name="lower"/>, or ulong.MaxValue when there is none.</summary>
    private ulong EarliestExpiryAfter(byte[] lower)
    {
        using var cursor = shard.NewRawCursor(lower, RocksKeys.TableEnd(shard.ShardId, RocksTable.Expiry));
        return cursor.MoveNext() ? BinaryPrimitives.ReadUInt64BigEndian(cursor.Key) : ulong.MaxValue;
    }

    public int GetAccountTransfers(in AccountFilter filter, Span<Transfer> into)
    {
        EnsureCurrent();
        var limit = (int)Math.Min(Math.Min(filter.Limit, (uint)into.Length), int.MaxValue);
        var wanted = filter.Flags & (AccountFilterFlags.Debits | AccountFilterFlags.Credits);
        if (limit == 0 || wanted == 0)
        {
            return 0;
        }

        var timestampMax = filter.TimestampMax == 0 ? ulong.MaxValue : filter.TimestampMax;
        var reverse = (filter.Flags & AccountFilterFlags.Reversed) != 0;
        using var cursor = AccountIndexCursor(filter.AccountId, filter.TimestampMin, timestampMax, reverse);
        var written = 0;
        while (written < limit && cursor.MoveNext())
        {
            var group = cursor.Value;
            Invariant.Check(group.Length > 0 && group.Length % AccountIndexEntryBytes == 0, "an index group holds whole entries");
            var count = group.Length / AccountIndexEntryBytes;
            for (var i = 0; i < count && written < limit; i++)
            {
                var entry = group.Slice((reverse ? count - 1 - i : i) * AccountIndexEntryBytes, AccountIndexEntryBytes);
                var timestamp = BinaryPrimitives.ReadUInt64BigEndian(entry);
                var side = entry[TimestampBytes + IdBytes] == 0 ? AccountFilterFlags.Debits : AccountFilterFlags.Credits;
                if (timestamp < filter.TimestampMin || timestamp > timestampMax || (wanted & side) == 0)
                {
                    continue;
                }

                var found = TryGetTransfer(BinaryPrimitives.ReadUInt128BigEndian(entry[TimestampBytes..]), out into[written]);
                Invariant.Check(found, "the account index names stored transfers only");
                written++;
            }
        }

        return written;
    }

    /// <summary>
    /// The account's index groups that may hold entries in [<paramref name="timestampMin"/>, <paramref name="timestampMax"/>]:
    /// those starting inside it, plus the last one starting before it (groups do not overlap in time).
    /// </summary>
    private RocksShardCursor AccountIndexCursor(UInt128 accountId, ulong timestampMin, ulong timestampMax, bool reverse)
    {
        Span<byte> key = stackalloc byte[IdBytes + TimestampBytes];
        var lower = RangeKey(RocksTable.AccountTransfers, AccountTimeKey(key, accountId, timestampMin), extraByte: null);
        if (timestampMin > 0)
        {
            var accountStart = RangeKey(RocksTable.AccountTransfers, AccountTimeKey(key, accountId, 0), extraByte: null);
            using var before = shard.NewRawCursor(accountStart, lower, reverse: true);
            if (before.MoveNext())
            {
                lower = before.RawKey.ToArray();
            }
        }

        var upper = RangeKey(RocksTable.AccountTransfers, AccountTimeKey(key, accountId, timestampMax), extraByte: 0);
        return shard.NewRawCursor(lower, upper, reverse);
    }

    public int GetAccountBalances(in AccountFilter filter, Span<AccountBalance> into)
    {
        EnsureCurrent();
        var limit = (int)Math.Min(Math.Min(filter.Limit, (uint)into.Length), int.MaxValue);
        if (limit == 0)
        {
            return 0;
        }

        using var cursor = AccountRangeCursor(RocksTable.AccountBalances, filter);
        var written = 0;
        while (written < limit && cursor.MoveNext())
        {
            into[written++] = LedgerCodec.ReadAccountBalance(cursor.Value);
        }

        return written;
    }

    /// <summary>The keys (account, timestamp) of one account within the filter's inclusive timestamp bounds.</summary>
    private RocksShardCursor AccountRangeCursor(RocksTable table, in AccountFilter filter)
    {
        Span<byte> key = stackalloc byte[IdBytes + TimestampBytes];
        var lower = RangeKey(table, AccountTimeKey(key, filter.AccountId, filter.TimestampMin), extraByte: null);
        var timestampMax = filter.TimestampMax == 0 ? ulong.MaxValue : filter.TimestampMax;
        var upper = RangeKey(table, AccountTimeKey(key, filter.AccountId, timestampMax), extraByte: 0);
        return shard.NewRawCursor(lower, upper, reverse: (filter.Flags & AccountFilterFlags.Reversed) != 0);
    }

    /// <summary>A full key for a cursor bound; one extra byte makes an exclusive upper bound just above the key.</summary>
    private byte[] RangeKey(RocksTable table, ReadOnlySpan<byte> tableKey, byte? extraByte)
    {
        var key = new byte[RocksLedgerLimits.TablePrefixBytes + tableKey.Length + (extraByte is null ? 0 : 1)];
        RocksKeys.Write(key, shard.ShardId, table, tableKey);
        if (extraByte is { } extra)
        {
            key[^1] = extra;
        }

        return key;
    }

    public IEnumerable<Account> EnumerateAccounts()
    {
        EnsureCurrent();
        using var cursor = shard.NewCursor(RocksTable.Accounts);
        while (cursor.MoveNext())
        {
            yield return LedgerCodec.ReadAccount(cursor.Value);
        }
    }

    /// <summary>Ascending by timestamp, through the timestamp index's groups.</summary>
    public IEnumerable<Transfer> EnumerateTransfers()
    {
        EnsureCurrent();
        using var cursor = shard.NewCursor(RocksTable.TransferTimestamps);
        var ids = new List<UInt128>(RocksLedgerLimits.TimestampGroupIdsMax);
        while (cursor.MoveNext())
        {
            // Copied out: the cursor's value is only valid until the caller resumes this iterator.
            ReadGroupIds(cursor.Value, ids);
            foreach (var id in ids)
            {
                var found = TryGetTransfer(id, out var transfer);
                Invariant.Check(found, "the timestamp index names stored transfers only");
                yield return transfer;
            }
        }
    }

    private static void ReadGroupIds(ReadOnlySpan<byte> group, List<UInt128> into)
    {
        Invariant.Check(group.Length > 0 && group.Length % IdBytes == 0, "a timestamp group holds whole ids");
        into.Clear();
        for (var offset = 0; offset < group.Length; offset += IdBytes)
        {
            into.Add(BinaryPrimitives.ReadUInt128BigEndian(group[offset..]));
        }
    }

    public IEnumerable<UInt128> EnumerateTransientFailures()
    {
        EnsureCurrent();
        using var cursor = shard.NewCursor(RocksTable.Transfers);
        while (cursor.MoveNext())
        {
            if (cursor.Value.Length == 1)
            {
                yield return BinaryPrimitives.ReadUInt128BigEndian(cursor.Key);
            }
        }
    }

    public IEnumerable<AccountBalanceEntry> EnumerateAccountBalances()
    {
        EnsureCurrent();
        using var cursor = shard.NewCursor(RocksTable.AccountBalances);
        while (cursor.MoveNext())
        {
            yield return new AccountBalanceEntry(BinaryPrimitives.ReadUInt128BigEndian(cursor.Key), LedgerCodec.ReadAccountBalance(cursor.Value));
        }
    }

    public bool TryGetSideRecord(byte table, UInt128 key, out byte[] value)
    {
        EnsureCurrent();
        if (TryGetMirrored(table, key, out var found, out value))
        {
            return found;
        }

        Span<byte> sideKey = stackalloc byte[1 + IdBytes];
        sideKey[0] = table;
        BinaryPrimitives.WriteUInt128BigEndian(sideKey[1..], key);
        if (!shard.TryGet(RocksTable.SideRecords, sideKey, [], out var length))
        {
            value = [];
            return false;
        }

        value = new byte[length];
        Invariant.Check(shard.TryGet(RocksTable.SideRecords, sideKey, value, out var again) && again == length);
        return true;
    }

    /// <summary>Ascending by (table, key): the key layout's order.</summary>
    public IEnumerable<SideRecord> EnumerateSideRecords()
    {
        EnsureCurrent();
        return sideMirrorComplete ? EnumerateSideRecordsMirrored() : EnumerateStoredSideRecords();
    }

    /// <summary>One table ascending by key: from the mirror (a copy) when it holds the table, else a cursor bounded to the table.</summary>
    public IEnumerable<SideRecord> EnumerateSideRecords(byte table)
    {
        EnsureCurrent();
        return sideMirrorComplete || CrossShardTables.IsDerived(table) ? TableInOrder(table) : StoredInOrder(table);
    }

    /// <summary>From the mirror's count when it holds the table, else by walking a cursor bounded to the table.</summary>
    public int CountSideRecords(byte table)
    {
        EnsureCurrent();
        if (CrossShardTables.IsDerived(table))
        {
            return derivedRecords[table]?.Count ?? 0;
        }

        if (sideMirrorComplete && IsMirrored(table))
        {
            return sideMirror[table]?.Count ?? 0;
        }

        if (sideMirrorComplete && table == CrossShardTables.Tombstone && tombstones is { } keys)
        {
            return keys.Count;
        }

        var count = 0;
        foreach (var _ in StoredInOrder(table))
        {
            count++;
        }

        return count;
    }

    // RocksDB's side records with the derived tables (memory only) merged in at their tags' places.
    private IEnumerable<SideRecord> EnumerateStoredSideRecords()
    {
        var nextDerived = 0;
        using var cursor = shard.NewCursor(RocksTable.SideRecords);
        while (cursor.MoveNext())
        {
            var stored = StoredSideRecord(cursor);
            for (; nextDerived <= stored.Table && nextDerived <= CrossShardTables.DerivedTableMax; nextDerived++)
            {
                foreach (var derived in DerivedInOrder((byte)nextDerived))
                {
                    yield return derived;
                }
            }

            if (IsStored(stored.Table))
            {
                yield return stored;
            }
        }

        for (; nextDerived <= CrossShardTables.DerivedTableMax; nextDerived++)
        {
            foreach (var derived in DerivedInOrder((byte)nextDerived))
            {
                yield return derived;
            }
        }
    }

    private static SideRecord StoredSideRecord(RocksShardCursor cursor)
    {
        var key = cursor.Key;
        Invariant.Check(key.Length == 1 + IdBytes, "side-table keys are a tag and a u128");
        return new SideRecord(key[0], BinaryPrimitives.ReadUInt128BigEndian(key[1..]), cursor.Value.ToArray());
    }

    private SideRecord[] DerivedInOrder(byte table) => CrossShardTables.IsDerived(table) ? InOrder(table, derivedRecords[table]) : [];
}
