namespace RaftLedger.Ledger;

/// <summary>
/// Where the ledger's state lives. The ledger reads through these methods while it applies a batch
/// and hands over every write of the batch at once in <see cref="Commit"/>; a store never sees half
/// a batch. Implementations: <see cref="InMemoryLedgerStore"/> here, the RocksDB store (keys prefixed
/// per shard) in RaftLedger.Storage. A store is used by one thread at a time.
/// </summary>
/// <remarks>
/// Reads reflect the last committed batch only (the ledger keeps its own view of the batch in flight).
/// Every method is deterministic: the same committed state gives the same answers, in the same order.
/// </remarks>
public interface ILedgerStore
{
    /// <summary>Cluster timestamp (ns) of the last event applied; 0 for an empty ledger. Set by <see cref="Commit"/>.</summary>
    ulong LastTimestamp { get; }

    /// <summary>Finds an account by id.</summary>
    bool TryGetAccount(UInt128 id, out Account account);

    /// <summary>Finds a transfer by id.</summary>
    bool TryGetTransfer(UInt128 id, out Transfer transfer);

    /// <summary>
    /// A hint given before a batch of transfers is applied: the transfer ids it is about to look up (each
    /// event's id, and a post's or void's pending id), in event order, possibly repeated. A store whose reads
    /// are cheaper in bulk (RocksDB's batched MultiGet) may read them all now and answer the batch's
    /// <see cref="TryGetTransfer"/> and <see cref="IsTransientFailure"/> calls from memory until the next
    /// <see cref="Commit"/>. The answers must stay exactly what a direct read would give. Ignoring it is correct.
    /// </summary>
    void PrefetchTransfers(ReadOnlySpan<UInt128> ids)
    {
    }

    /// <summary>
    /// The status of the pending transfer <paramref name="pendingId"/>: <see cref="PendingStatus.None"/>
    /// when there is no such pending transfer.
    /// </summary>
    PendingStatus GetPendingStatus(UInt128 pendingId);

    /// <summary>True when an earlier transfer with this id failed with a transient status (see <see cref="LedgerResults.IsTransient"/>).</summary>
    bool IsTransientFailure(UInt128 transferId);

    /// <summary>
    /// Fills <paramref name="into"/> with expiry-index entries strictly greater than
    /// <paramref name="after"/> (order of <see cref="ExpiryEntry.CompareTo"/>: expiry time, then id)
    /// whose <see cref="ExpiryEntry.ExpiresAt"/> is at most <paramref name="expiresAtMax"/>, ascending,
    /// and returns how many it wrote. Fewer than <c>into.Length</c> means there are no more.
    /// Entries removed by a committed batch are never returned.
    /// </summary>
    int CollectExpired(ulong expiresAtMax, ExpiryEntry after, Span<ExpiryEntry> into);

    /// <summary>
    /// Transfers whose debit (filter flag Debits) or credit (Credits) account is
    /// <c>filter.AccountId</c>, with timestamp within [TimestampMin, TimestampMax] (0 = unbounded),
    /// ascending by timestamp (descending with Reversed), at most <c>min(filter.Limit, into.Length)</c>.
    /// The ledger validates the filter before calling. Returns how many it wrote.
    /// </summary>
    int GetAccountTransfers(in AccountFilter filter, Span<Transfer> into);

    /// <summary>Balance-history records of <c>filter.AccountId</c>, same bounds, order and limit rules as <see cref="GetAccountTransfers"/> (Debits/Credits flags are not used).</summary>
    int GetAccountBalances(in AccountFilter filter, Span<AccountBalance> into);

    /// <summary>
    /// Finds a side-table record (cross-shard protocol state: coordinator records, prepared legs,
    /// abort tombstones) by table tag and key. The value is a fresh copy the caller may keep.
    /// </summary>
    bool TryGetSideRecord(byte table, UInt128 key, out byte[] value);

    /// <summary>Every side-table record, ascending by (table, key) (for snapshots and fingerprints).</summary>
    IEnumerable<SideRecord> EnumerateSideRecords();

    /// <summary>
    /// The records of one side table, ascending by key. Lazy: a caller that stops early reads no further, so a table
    /// ordered by time (see <c>CrossShardTables.ExpiryOrder</c>) can be read up to a bound without walking the rest.
    /// </summary>
    IEnumerable<SideRecord> EnumerateSideRecords(byte table);

    /// <summary>How many records one side table holds, without copying them (status queries count work in flight).</summary>
    int CountSideRecords(byte table);

    /// <summary>
    /// Applies every write of one batch atomically (all or nothing, durable when the store is durable)
    /// in this order: accounts (upsert), transfers (insert, and index each under its debit and its
    /// credit account by timestamp), pending statuses (upsert, last one wins), expiry-index adds, then
    /// expiry-index removes, transient failures (insert), balance-history appends, side-table records (put or delete, in
    /// order, last one wins), last timestamp.
    /// </summary>
    void Commit(LedgerWriteSet writes);

    /// <summary>Deletes all state (before a snapshot is restored).</summary>
    void Clear();

    /// <summary>Every account, in any order (for snapshots and fingerprints).</summary>
    IEnumerable<Account> EnumerateAccounts();

    /// <summary>Every transfer, ascending by timestamp (for snapshots and fingerprints).</summary>
    IEnumerable<Transfer> EnumerateTransfers();

    /// <summary>Every id with a transient failure, in any order.</summary>
    IEnumerable<UInt128> EnumerateTransientFailures();

    /// <summary>Every balance-history record, in any order.</summary>
    IEnumerable<AccountBalanceEntry> EnumerateAccountBalances();
}

/// <summary>
/// One record of the store's side table: a small value under (<paramref name="Table"/>, <paramref name="Key"/>).
/// In a <see cref="LedgerWriteSet"/> a null <paramref name="Value"/> deletes the record; stored records
/// always have a value (at most <see cref="LedgerLimits.SideRecordBytesMax"/> bytes).
/// </summary>
public readonly record struct SideRecord(byte Table, UInt128 Key, byte[]? Value);
