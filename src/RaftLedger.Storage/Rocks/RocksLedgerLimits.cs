using RaftLedger.Ledger;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// Every limit of the RocksDB ledger state, in one place (units last). A test asserts how they relate.
/// </summary>
public static class RocksLedgerLimits
{
    /// <summary>Bytes of the shard prefix in front of every key: the shard id, big-endian.</summary>
    public const int ShardPrefixBytes = sizeof(uint);

    /// <summary>Bytes before a table's own key: shard prefix plus the one-byte table tag.</summary>
    public const int TablePrefixBytes = ShardPrefixBytes + 1;

    /// <summary>Bytes of an account or transfer id in a key (u128 big-endian).</summary>
    public const int IdBytes = 16;

    /// <summary>
    /// Zero bytes after the id in an account's key. They exist only to make account keys
    /// <see cref="MemtableHintPrefixBytes"/> long: see there.
    /// </summary>
    public const int AccountKeySuffixBytes = 2;

    /// <summary>
    /// Length of the key prefix the memtable keeps its own insert position for (RocksDB's fixed-prefix insert
    /// hint). An account's key and the per-account index keys (account id then timestamp) reach it, so every
    /// account gets its own position: rewriting an account, or adding its next index group, starts next to its
    /// previous key instead of descending a skip list of ~10⁶ entries from the top (3–4 µs of cache misses each,
    /// the largest cost with small batches). Keys shorter than this (transfers, pending statuses, side records, the
    /// timestamp index, the per-shard meta keys), which mostly ascend, share the memtable's sequential position.
    /// The index keys' prefix holds the timestamp's top two bytes, which change every 2⁴⁸ ns (3.3 days).
    /// </summary>
    public const int MemtableHintPrefixBytes = TablePrefixBytes + IdBytes + AccountKeySuffixBytes;

    /// <summary>Largest key a table may use (after the table prefix). Ledger keys are 16–48 bytes.</summary>
    public const int TableKeyBytesMax = 256;

    /// <summary>
    /// Largest value stored under one key. Accounts and transfers encode to well under 1 KiB; the largest values are
    /// cross-shard side records (<see cref="LedgerLimits.SideRecordBytesMax"/>, about 1.2 MB: a Prepared record of a
    /// full 8,189-event chain's legs on one participant).
    /// </summary>
    public const int ValueBytesMax = LedgerLimits.SideRecordBytesMax > 64 * 1024 ? LedgerLimits.SideRecordBytesMax : 64 * 1024;

    /// <summary>
    /// Transfer ids in one timestamp-index record at most. The index keeps one record per run of a write set's
    /// transfers (keyed by the first one's timestamp) instead of one per transfer, which saves a memtable insert
    /// per transfer; 1,024 ids are 16 KiB.
    /// </summary>
    public const int TimestampGroupIdsMax = 1024;

    /// <summary>
    /// Entries (timestamp, transfer id, side: 25 bytes) in one per-account index record at most. An account
    /// touched by many transfers of one write set gets one record per this many entries (12.5 KiB).
    /// </summary>
    public const int AccountIndexGroupEntriesMax = 512;

    /// <summary>
    /// Payload bytes of one snapshot chunk at most. Bounded so that a receiver needs only this much memory
    /// per chunk and a corrupt chunk is detected before much of it is applied. 2 MiB so that the largest record
    /// (<see cref="SnapshotRecordBytesMax"/>, a full chain's Prepared side record) fits one chunk; snapshot files travel
    /// in transport pieces of their own size, so this bound is the storage format's only.
    /// </summary>
    public const int SnapshotChunkPayloadBytesMax = 2 * 1024 * 1024;

    /// <summary>Bytes of one encoded key/value record inside a chunk, at most (header + key + value).</summary>
    public const int SnapshotRecordBytesMax = SnapshotRecordHeaderBytes + TableKeyBytesMax + ValueBytesMax;

    /// <summary>Per-record header inside a chunk: table tag (1), key length (2), value length (4).</summary>
    public const int SnapshotRecordHeaderBytes = 1 + sizeof(ushort) + sizeof(int);

    /// <summary>Chunks in one snapshot stream at most: 1 Mi chunks of 1 MiB is 1 TiB, far above any shard.</summary>
    public const int SnapshotChunksMax = 1024 * 1024;

    /// <summary>Memtable size. Larger memtables mean fewer flushes while applying, and more replay after a crash.</summary>
    public const ulong WriteBufferBytesDefault = 64UL * 1024 * 1024;

    /// <summary>
    /// Size of each memtable's bloom filter as a fraction of <see cref="WriteBufferBytesDefault"/> (RocksDB's
    /// <c>memtable_prefix_bloom_size_ratio</c>). Every key written is added to it and every new transfer id is
    /// looked up in it. 0.01 of 64 MiB is 640 KiB, about 8 bits per key of a full memtable (a few per cent false
    /// positives); the earlier 0.1 (6.4 MiB, ~80 bits per key) missed the CPU cache on every add and made applying
    /// slower, not faster (docs/PERFORMANCE.md, "RocksDB ledger state").
    /// </summary>
    public const double MemtableBloomSizeRatio = 0.01;

    /// <summary>
    /// Accounts a <see cref="RocksLedgerStore"/> keeps decoded in memory (write-through). Every transfer reads two
    /// accounts, so hot accounts must not cost a RocksDB read each; 256 Ki accounts are about 40 MiB.
    /// </summary>
    public const int AccountCacheEntriesMaxDefault = 256 * 1024;

    /// <summary>
    /// Side records a <see cref="RocksLedgerStore"/> mirrors in memory before it drops the mirror and reads RocksDB
    /// (RocksLedgerStore.SideMirror.cs). The mirrored tables hold unfinished cross-shard work only: a few records per
    /// transaction in flight, thousands at saturation.
    /// </summary>
    public const int SideMirrorEntriesMaxDefault = 256 * 1024;

    /// <summary>Bytes of mirrored side-record values per shard before the mirror is dropped (a full chain's Prepared record is about 1.2 MB).</summary>
    public const long SideMirrorBytesMaxDefault = 64L * 1024 * 1024;

    /// <summary>
    /// Abort tombstones a <see cref="RocksLedgerStore"/> keeps as an in-memory key set (about 40 bytes each) before
    /// tombstone reads go back to RocksDB. Every Decide looks its transaction up there, and tombstones are written only
    /// when a coordinator died before deciding, so a shard rarely holds more than a few.
    /// </summary>
    public const int TombstoneMirrorEntriesMaxDefault = 256 * 1024;

    /// <summary>Shared LRU block cache for the node's RocksDB instance.</summary>
    public const ulong BlockCacheBytesDefault = 256UL * 1024 * 1024;
}
