using System.Buffers.Binary;
using RaftLedger.Common;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// The tables of one shard's ledger state. Each key is <c>[shard id u32 big-endian][table tag][table key]</c>,
/// so one shard's keys are one contiguous range and one table's keys a sub-range of it.
/// </summary>
public enum RocksTable : byte
{
    /// <summary>Per-shard bookkeeping (applied index, install marker). Never part of a snapshot's data.</summary>
    Meta = 0,

    /// <summary>
    /// Accounts: id (u128 big-endian) then <see cref="RocksLedgerLimits.AccountKeySuffixBytes"/> zero bytes → account
    /// (128 bytes, <c>LedgerCodec</c>). The zero bytes give each account its own memtable insert position
    /// (<see cref="RocksLedgerLimits.MemtableHintPrefixBytes"/>).
    /// </summary>
    Accounts = 1,

    /// <summary>
    /// Transfer ids: id → transfer (128 bytes), or a one-byte marker for an id burnt by a transient failure.
    /// One table for both so that the duplicate check and the burnt-id check of a new transfer are one read.
    /// </summary>
    Transfers = 2,

    /// <summary>
    /// Transfers in timestamp order, in groups: the timestamp (u64 big-endian) of a group's first transfer → the ids
    /// (16 bytes each) of up to <see cref="RocksLedgerLimits.TimestampGroupIdsMax"/> transfers of one write set, in
    /// timestamp order. Groups do not overlap in time, so their keys order them.
    /// </summary>
    TransferTimestamps = 3,

    /// <summary>Pending transfers' status: id → one byte.</summary>
    PendingStatuses = 4,

    /// <summary>Expiry index: expires-at (u64 BE) then id (u128 BE) → empty.</summary>
    Expiry = 5,

    /// <summary>
    /// Per-account transfer index, in groups: account id then the timestamp of the group's first entry → up to
    /// <see cref="RocksLedgerLimits.AccountIndexGroupEntriesMax"/> entries of (timestamp u64, transfer id u128, side:
    /// 0 debit, 1 credit), big-endian, ascending by timestamp, all from one write set. An account's groups do not
    /// overlap in time, so only the last group that starts before a query's lower bound can hold entries inside it.
    /// </summary>
    AccountTransfers = 6,

    /// <summary>Balance history: account id then timestamp → balances (128 bytes).</summary>
    AccountBalances = 7,

    /// <summary>Ledger singletons, e.g. the last timestamp.</summary>
    LedgerState = 8,

    /// <summary>The ledger's side table (cross-shard protocol state): side table tag (1) then key (u128 big-endian) → value.</summary>
    SideRecords = 9,
}

/// <summary>Builds and takes apart the keys of the key layout described on <see cref="RocksTable"/>.</summary>
public static class RocksKeys
{
    /// <summary>Table tags above this one are unused; a tag in a snapshot beyond it is corruption.</summary>
    public const RocksTable TableMax = RocksTable.SideRecords;

    /// <summary>Meta key: the highest Raft index whose effects are in this shard's state.</summary>
    public const byte MetaAppliedIndex = 1;

    /// <summary>
    /// Meta key: present while a snapshot install is under way (the shard's data is incomplete). Installs before the
    /// twenty-fifth session wrote it while they wrote a snapshot chunk by chunk; an install now ingests one file whose
    /// range deletion removes it, so it is only ever read (a folder left by an interrupted older install).
    /// </summary>
    public const byte MetaInstalling = 2;

    /// <summary>Writes the 5-byte prefix of a table of a shard into <paramref name="destination"/>.</summary>
    public static void WriteTablePrefix(Span<byte> destination, uint shardId, RocksTable table)
    {
        Invariant.Check(destination.Length >= RocksLedgerLimits.TablePrefixBytes);
        Invariant.Check(table <= TableMax);
        BinaryPrimitives.WriteUInt32BigEndian(destination, shardId);
        destination[RocksLedgerLimits.ShardPrefixBytes] = (byte)table;
    }

    /// <summary>Writes the full key of <paramref name="tableKey"/>; returns its length.</summary>
    public static int Write(Span<byte> destination, uint shardId, RocksTable table, ReadOnlySpan<byte> tableKey)
    {
        Invariant.Check(tableKey.Length <= RocksLedgerLimits.TableKeyBytesMax, "table key too long");
        WriteTablePrefix(destination, shardId, table);
        tableKey.CopyTo(destination[RocksLedgerLimits.TablePrefixBytes..]);
        return RocksLedgerLimits.TablePrefixBytes + tableKey.Length;
    }

    /// <summary>The first key of a shard's range (inclusive).</summary>
    public static byte[] ShardStart(uint shardId)
    {
        var key = new byte[RocksLedgerLimits.ShardPrefixBytes];
        BinaryPrimitives.WriteUInt32BigEndian(key, shardId);
        return key;
    }

    /// <summary>
    /// The first key after a shard's range (exclusive). For the last shard id there is no 4-byte successor,
    /// so the bound is the 5-byte key FF FF FF FF FF... which is still above every key of shard uint.MaxValue
    /// because table tags stop at <see cref="TableMax"/>.
    /// </summary>
    public static byte[] ShardEnd(uint shardId)
    {
        if (shardId == uint.MaxValue)
        {
            return [0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        }

        return ShardStart(shardId + 1);
    }

    /// <summary>The first key of a table of a shard (inclusive).</summary>
    public static byte[] TableStart(uint shardId, RocksTable table)
    {
        var key = new byte[RocksLedgerLimits.TablePrefixBytes];
        WriteTablePrefix(key, shardId, table);
        return key;
    }

    /// <summary>The first key after a table of a shard (exclusive): the next table's prefix.</summary>
    public static byte[] TableEnd(uint shardId, RocksTable table)
    {
        Invariant.Check(table <= TableMax);
        var key = new byte[RocksLedgerLimits.TablePrefixBytes];
        BinaryPrimitives.WriteUInt32BigEndian(key, shardId);
        key[RocksLedgerLimits.ShardPrefixBytes] = (byte)(table + 1);
        return key;
    }

    /// <summary>The shard id at the front of a full key.</summary>
    public static uint ShardOf(ReadOnlySpan<byte> key)
    {
        Invariant.Check(key.Length >= RocksLedgerLimits.TablePrefixBytes);
        return BinaryPrimitives.ReadUInt32BigEndian(key);
    }

    /// <summary>The table tag of a full key.</summary>
    public static RocksTable TableOf(ReadOnlySpan<byte> key)
    {
        Invariant.Check(key.Length >= RocksLedgerLimits.TablePrefixBytes);
        return (RocksTable)key[RocksLedgerLimits.ShardPrefixBytes];
    }
}
