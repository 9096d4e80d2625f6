using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// The ledger's state of one shard in the node's RocksDB (see <see cref="RocksTable"/> for the tables).
/// Each <see cref="Commit"/> is one atomic WriteBatch that also carries the Raft applied index
/// (<see cref="LedgerWriteSet.AppliedIndex"/>), so state and applied index always agree on disk.
/// Used by one thread at a time, like every <see cref="ILedgerStore"/>.
/// </summary>
/// <remarks>
/// Accounts are cached decoded in memory (write-through, bounded); the cache only ever holds committed values.
/// A snapshot install or <see cref="Clear"/> on the shard drops the cache (the shard's generation changes).
/// Side records of unfinished cross-shard work are mirrored in memory as well (see RocksLedgerStore.SideMirror.cs).
/// The ledger's own snapshot restore commits with applied index 0, which leaves the applied index as it is;
/// a node replicates RocksDB shards with <see cref="RocksShardSnapshots"/>, which sets it.
/// </remarks>
public sealed partial class RocksLedgerStore : ILedgerStore, IDisposable
{
    /// <summary>Value of a Transfers-table key burnt by a transient failure (a transfer is 128 bytes, never 1).</summary>
    private const byte BurntIdMarker = 0xB1;
    /// <summary>One per-account index entry: timestamp, transfer id, side.</summary>
    private const int AccountIndexEntryBytes = TimestampBytes + IdBytes + 1;
    private const int TimestampBytes = sizeof(ulong);
    private const int IdBytes = RocksLedgerLimits.IdBytes;

    private readonly RocksShard shard;
    private readonly RocksShardBatch batch;
    private readonly int accountCacheEntriesMax;

    // Invariant: every cached account equals the committed value in RocksDB (filled on read, updated after commit).
    private readonly Dictionary<UInt128, Account> accountCache;
    private readonly byte[] keyBuffer = new byte[RocksLedgerLimits.TablePrefixBytes + RocksLedgerLimits.TableKeyBytesMax];
    private readonly byte[] valueBuffer = new byte[LedgerLimits.RecordSizeBytes * 2];
    private readonly byte[] idKeyScratch = new byte[IdBytes];
    private readonly byte[] accountKeyScratch = new byte[IdBytes + RocksLedgerLimits.AccountKeySuffixBytes];

    // Builds one index group's value before it is copied into the batch.
    private readonly byte[] groupBuffer = new byte[Math.Max(
        RocksLedgerLimits.TimestampGroupIdsMax * IdBytes, RocksLedgerLimits.AccountIndexGroupEntriesMax * AccountIndexEntryBytes)];
    private readonly RocksKeyOrder keyOrder = new();

    // The shard generation the caches belong to; a different one means the state was replaced underneath.
    private ulong generation;

    // Invariant: while transferIdsAny is false the Transfers table of this shard is empty; otherwise no key in it
    // (created transfer or burnt id) is above transferIdMax. Kept from the committed state only (set on reload,
    // raised after each commit), so an id above it is known to be new without a RocksDB read: with ascending ids
    // (time-based ids such as ULIDs, which clients are told to use) every new transfer skips its lookup.
    private bool transferIdsAny;
    private UInt128 transferIdMax;

    // Invariant: no committed Expiry entry expires before expiryFloor. 0 (nothing known) after a reload; raised to the
    // earliest entry's time (ulong.MaxValue: none) when a scan finds nothing due, lowered by each commit's expiry adds. Every applied command asks for expired pending
    // transfers, and without this each ask opened a RocksDB iterator (~4 % of a node's CPU in the 1-client profile).
    private ulong expiryFloor;

    // The outcome of the last Transfers-table read, valid until the next commit: a new transfer's
    // duplicate check is followed by its burnt-id check on the same id, and this makes them one read.
    private bool lookupMemoValid;
    private UInt128 lookupMemoId;
    private bool lookupMemoBurnt;

    public RocksLedgerStore(
        RocksShard shard,
        int accountCacheEntriesMax = RocksLedgerLimits.AccountCacheEntriesMaxDefault,
        int sideMirrorEntriesMax = RocksLedgerLimits.SideMirrorEntriesMaxDefault,
        long sideMirrorBytesMax = RocksLedgerLimits.SideMirrorBytesMaxDefault,
        int tombstoneMirrorEntriesMax = RocksLedgerLimits.TombstoneMirrorEntriesMaxDefault)
    {
        ArgumentNullException.ThrowIfNull(shard);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(accountCacheEntriesMax);
        ArgumentOutOfRangeException.ThrowIfNegative(sideMirrorEntriesMax);
        ArgumentOutOfRangeException.ThrowIfNegative(sideMirrorBytesMax);
        ArgumentOutOfRangeException.ThrowIfNegative(tombstoneMirrorEntriesMax);
        if (shard.IsInstalling)
        {
            throw new InvalidOperationException(
                $"Shard {shard.ShardId} has an incomplete snapshot install and cannot be used; install a complete snapshot first.");
        }

        this.shard = shard;
        this.accountCacheEntriesMax = accountCacheEntriesMax;
        this.sideMirrorEntriesMax = sideMirrorEntriesMax;
        this.sideMirrorBytesMax = sideMirrorBytesMax;
        this.tombstoneMirrorEntriesMax = tombstoneMirrorEntriesMax;
        accountCache = new Dictionary<UInt128, Account>(Math.Min(accountCacheEntriesMax, 1 << 16));
        batch = shard.NewBatch();
        Reload();
    }

    public RocksShard Shard => shard;

    public ulong LastTimestamp { get; private set; }

    /// <summary>The shard's applied index: the Raft index of the last committed batch.</summary>
    public ulong AppliedIndex => shard.AppliedIndex;

    /// <summary>Drops every cache and rereads the last timestamp (after the shard's state was replaced).</summary>
    public void Reload()
    {
        accountCache.Clear();
        prefetched.Clear();
        lookupMemoValid = false;
        expiryFloor = 0;
        generation = shard.Generation;
        ReadTransferIdMax();
        LoadSideMirror();
        var length = WriteKey(RocksTable.LedgerState, LedgerStateLastTimestamp);
        LastTimestamp = shard.TryGetRawKey(keyBuffer, length, valueBuffer, out _)
            ? BinaryPrimitives.ReadUInt64LittleEndian(valueBuffer)
            : 0;
    }

    private static ReadOnlySpan<byte> LedgerStateLastTimestamp => [1];

    public bool TryGetAccount(UInt128 id, out Account account)
    {
        EnsureCurrent();
        if (accountCache.TryGetValue(id, out account))
        {
            return true;
        }

        var length = WriteIdKey(RocksTable.Accounts, id);
        keyBuffer.AsSpan(length, RocksLedgerLimits.AccountKeySuffixBytes).Clear();
        length += RocksLedgerLimits.AccountKeySuffixBytes;
        if (!shard.TryGetRawKey(keyBuffer, length, valueBuffer, out var valueLength))
        {
            account = default;
            return false;
        }

        Invariant.Check(valueLength == LedgerCodec.AccountSizeBytes, "stored account has the codec's size");
        account = LedgerCodec.ReadAccount(valueBuffer);
        Invariant.Check(account.Id == id);
        CacheAccount(account);
        return true;
    }

    public bool TryGetTransfer(UInt128 id, out Transfer transfer)
    {
        EnsureCurrent();
        if (IsAboveEveryStoredId(id))
        {
            lookupMemoValid = true;
            lookupMemoId = id;
            lookupMemoBurnt = false;
            transfer = default;
            return false;
        }

        var found = ReadTransferValue(id, out var valueLength);
        lookupMemoValid = true;
        lookupMemoId = id;
        lookupMemoBurnt = found && valueLength == 1;
        if (!found || valueLength == 1)
        {
            Invariant.Check(!found || valueBuffer[0] == BurntIdMarker);
            transfer = default;
            return false;
        }

        Invariant.Check(valueLength == LedgerCodec.TransferSizeBytes, "stored transfer has the codec's size");
        transfer = LedgerCodec.ReadTransfer(valueBuffer);
        return true;
    }

    public bool IsTransientFailure(UInt128 transferId)
    {
        EnsureCurrent();
        if (lookupMemoValid && lookupMemoId == transferId)
        {
            return lookupMemoBurnt;
        }

        if (IsAboveEveryStoredId(transferId))
        {
            return false;
        }

        return ReadTransferValue(transferId, out var valueLength) && valueLength == 1;
    }

    // The Transfers-table value of an id (a transfer, or the burnt-id marker) into valueBuffer: from the batch's
    // prefetch when it read the id, else one point read.
    private bool ReadTransferValue(UInt128 id, out int valueLength)
    {
        if (TryTakePrefetched(id, out var found, out valueLength))
        {
            return found;
        }

        var length = WriteIdKey(RocksTable.Transfers, id);
        return shard.TryGetRawKey(keyBuffer, length, valueBuffer, out valueLength);
    }

    public PendingStatus GetPendingStatus(UInt128 pendingId)
    {
        EnsureCurrent();
        var length = WriteIdKey(RocksTable.PendingStatuses, pendingId);
        return shard.TryGetRawKey(keyBuffer, length, valueBuffer, out var valueLength)
            ? CheckedStatus(valueLength)
            : PendingStatus.None;
    }

    private PendingStatus CheckedStatus(int valueLength)
    {
        Invariant.Check(valueLength == 1);
        Invariant.Check(valueBuffer[0] <= (byte)PendingStatus.Expired);
        return (PendingStatus)valueBuffer[0];
    }

    private bool IsAboveEveryStoredId(UInt128 id) => !transferIdsAny || id > transferIdMax;

    /// <summary>Reads the highest key of the shard's Transfers table (one reverse seek; on open and after the state was replaced).</summary>
    private void ReadTransferIdMax()
    {
        using var cursor = shard.NewRawCursor(
            RocksKeys.TableStart(shard.ShardId, RocksTable.Transfers), RocksKeys.TableEnd(shard.ShardId, RocksTable.Transfers), reverse: true);
        transferIdsAny = cursor.MoveNext();
        transferIdMax = transferIdsAny ? BinaryPrimitives.ReadUInt128BigEndian(cursor.Key) : 0;
        Invariant.Check(!transferIdsAny || cursor.Key.Length == IdBytes, "transfer keys are 16-byte ids");
    }

    /// <summary>Raises the highest stored id after a commit wrote <paramref name="id"/> to the Transfers table.</summary>
    private void NoteStoredTransferId(UInt128 id)
    {
        if (!transferIdsAny || id > transferIdMax)
        {
            transferIdMax = id;
        }

        transferIdsAny = true;
    }

    private void CacheAccount(in Account account)
    {
        // Clearing when full is crude but deterministic and allocation-free; a hot working set refills quickly.
        if (accountCache.Count >= accountCacheEntriesMax && !accountCache.ContainsKey(account.Id))
        {
            accountCache.Clear();
        }

        accountCache[account.Id] = account;
    }

    /// <summary>The caches must describe the shard's current state; a snapshot install replaces it.</summary>
    private void EnsureCurrent()
    {
        if (generation != shard.Generation)
        {
            Reload();
        }
    }

    private int WriteKey(RocksTable table, ReadOnlySpan<byte> tableKey) =>
        RocksKeys.Write(keyBuffer, shard.ShardId, table, tableKey);

    private int WriteIdKey(RocksTable table, UInt128 id)
    {
        RocksKeys.WriteTablePrefix(keyBuffer, shard.ShardId, table);
        BinaryPrimitives.WriteUInt128BigEndian(keyBuffer.AsSpan(RocksLedgerLimits.TablePrefixBytes), id);
        return RocksLedgerLimits.TablePrefixBytes + IdBytes;
    }

    public void Dispose() => batch.Dispose();
}
