using System.Runtime.InteropServices;
using RaftLedger.Common;
using RocksDbSharp;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// The node's one RocksDB instance, holding the ledger state of every shard on the node (keys prefixed by
/// shard, see <see cref="RocksKeys"/>).
/// <para>
/// Durability rule: RocksDB writes are not synced (by default RocksDB's own WAL is off); the Raft WAL is the
/// durable record. So the Raft WAL of a shard must never be compacted past <see cref="RocksShard.DurableAppliedIndex"/>,
/// which advances only when <see cref="MakeDurable"/> has forced everything written so far to disk, or when a
/// snapshot's file has been ingested (RocksDB syncs an ingested file and its manifest record). After a crash
/// the shard reopens at an applied index &lt;= what it had applied, never beyond what is durable, and the host
/// replays the Raft log from there.
/// </para>
/// Thread safety: one thread applies to a given shard at a time; <see cref="MakeDurable"/>, snapshot reads and
/// other shards may run on other threads.
/// </summary>
public sealed class RocksLedgerDatabase : IDisposable
{
    /// <summary>Subfolder of the database folder for SST files being built for an install (<see cref="NewIngestPath"/>).</summary>
    public const string IngestFolderName = "ingest";

    private readonly RocksDb db;
    private readonly DbOptions dbOptions;
    private readonly Cache blockCache;
    private readonly WriteOptions writeOptions;
    private readonly ReadOptions readOptions;
    private readonly FlushOptions flushOptions;
    private readonly EnvOptions envOptions = new();
    private readonly IngestExternalFileOptions ingestOptions = new IngestExternalFileOptions().SetMoveFiles(true);
    private readonly IntPtr defaultColumnFamily;
    private readonly Lock shardsLock = new();

    // Invariant: one RocksShard per shard id for the lifetime of the database; guarded by shardsLock.
    private readonly Dictionary<uint, RocksShard> shards = [];

    // Serialises MakeDurable calls so that durable indexes advance in capture order.
    private readonly Lock durableLock = new();
    private bool disposed;

    private RocksLedgerDatabase(RocksLedgerOptions options, DbOptions dbOptions, Cache blockCache, RocksDb db)
    {
        Options = options;
        this.dbOptions = dbOptions;
        this.blockCache = blockCache;
        this.db = db;
        writeOptions = new WriteOptions().SetSync(false).DisableWal(options.WalMode == RocksWalMode.Disabled ? 1 : 0);
        readOptions = new ReadOptions();
        flushOptions = new FlushOptions().SetWaitForFlush(true);
        defaultColumnFamily = Native.Instance.rocksdb_get_default_column_family_handle(db.Handle);
    }

    public RocksLedgerOptions Options { get; }

    internal RocksDb Db => db;

    internal ReadOptions ReadOptions => readOptions;

    /// <summary>The native handle of the default column family (every table lives there), for the batched MultiGet.</summary>
    internal IntPtr DefaultColumnFamily => defaultColumnFamily;

    /// <summary>Opens (or creates) the database at <see cref="RocksLedgerOptions.DirectoryPath"/>.</summary>
    public static RocksLedgerDatabase Open(RocksLedgerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Directory.CreateDirectory(options.DirectoryPath);
        RocksLedgerFormat.Check(options.DirectoryPath);
        var blockCache = Cache.CreateLru(options.BlockCacheBytes);
        var dbOptions = BuildOptions(options, blockCache);
        var db = RocksDb.Open(dbOptions, options.DirectoryPath);
        RocksLedgerFormat.WriteIfMissing(options.DirectoryPath);
        DeleteUnfinishedIngests(options.DirectoryPath);
        if (options.WalMode == RocksWalMode.Unsynced)
        {
            // Open replays RocksDB's WAL, which after a process crash may hold writes that were never synced.
            // Sync it now, so that every applied index a shard reads at open is durable (see RocksShard).
            Native.Instance.rocksdb_flush_wal(db.Handle, 1);
        }

        return new RocksLedgerDatabase(options, dbOptions, blockCache, db);
    }

    // Flushes write L0 uncompressed: compressing every memtable flush was ~4 % of a node's CPU in the batched
    // benchmark, and L0 is compacted soon anyway. With dynamic level bytes the second entry is the base level
    // (where compactions write first), and every level from there on is LZ4, so what stays on disk is compressed.
    private static readonly Compression[] CompressionPerLevel =
        [Compression.No, Compression.Lz4, Compression.Lz4, Compression.Lz4, Compression.Lz4, Compression.Lz4, Compression.Lz4];

    /// <summary>
    /// Options tuned for the ledger: small point reads and writes on 16-byte ids, many shards in one keyspace.
    /// Bloom filters make lookups of absent ids (every new transfer) cheap; the memtable gets its own bloom
    /// filter for the same reason, sized (<see cref="RocksLedgerLimits.MemtableBloomSizeRatio"/>) so that adding
    /// every key to it stays in cache; LZ4 keeps compacted SSTs small at little CPU.
    /// </summary>
    internal static DbOptions BuildOptions(RocksLedgerOptions options, Cache blockCache)
    {
        var table = new BlockBasedTableOptions()
            .SetBlockCache(blockCache)
            .SetFilterPolicy(BloomFilterPolicy.Create(10, false))
            .SetWholeKeyFiltering(true)
            .SetCacheIndexAndFilterBlocks(true)
            .SetPinL0FilterAndIndexBlocksInCache(true)
            .SetFormatVersion(5)
            .SetBlockSize(16 * 1024);
        var dbOptions = new DbOptions()
            .SetCreateIfMissing(true)
            .SetParanoidChecks(true)
            .SetBlockBasedTableFactory(table)
            .SetWriteBufferSize(options.WriteBufferBytes)
            .SetMaxWriteBufferNumber(4)
            .SetMemtablePrefixBloomSizeRatio(RocksLedgerLimits.MemtableBloomSizeRatio)
            .SetCompression(Compression.Lz4)
            .SetCompressionPerLevel(CompressionPerLevel, (ulong)CompressionPerLevel.Length)
            .SetLevelCompactionDynamicLevelBytes(true)
            .SetMaxBackgroundCompactions(2)
            .SetMaxBackgroundFlushes(1)
            .SetInfoLogLevel(InfoLogLevel.Warn)
            .SetKeepLogFileNum(2);
        if (options.DisableAutoCompactions)
        {
            dbOptions.SetDisableAutoCompactions(1);
        }

        // Every new transfer id is looked up and not found: a whole-key bloom filter on the memtable answers
        // that without a skiplist search (the SST bloom filters do the same for flushed data).
        Native.Instance.rocksdb_options_set_memtable_whole_key_filtering(dbOptions.Handle, 1);

        // A batch's MultiGet of transfer ids (sorted) searches the memtable from the previous key's position.
        Native.Instance.rocksdb_options_set_memtable_batch_lookup_optimization(dbOptions.Handle, 1);
        return WithMemtableInsertHints(dbOptions);
    }

    /// <summary>
    /// The memtable keeps its own insert position per key prefix of
    /// <see cref="RocksLedgerLimits.MemtableHintPrefixBytes"/> bytes, i.e. per account for the account-keyed tables,
    /// and starts each insert from it; shorter keys (mostly ascending: time-ordered transfer ids, the timestamp index,
    /// the per-shard meta keys) start from the previous such insert. Either way an insert costs a few node visits
    /// instead of a descent from the top of a skip list of ~10⁶ entries, which was the 64-client profile's largest
    /// cost (17.8 % self with one position per table, 18 % again with random account keys). RocksDB ignores the
    /// hints for concurrent memtable writes, so those are off: writes are serialised by the write queue anyway,
    /// and the node has few cores. Only settable through RocksDB's options string (no C setter).
    /// </summary>
    private static DbOptions WithMemtableInsertHints(DbOptions baseOptions)
    {
        var tuned = new DbOptions();
        var text = Marshal.StringToHGlobalAnsi(
            $"memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.{RocksLedgerLimits.MemtableHintPrefixBytes};allow_concurrent_memtable_write=false");
        try
        {
            Native.Instance.rocksdb_get_options_from_string(baseOptions.Handle, text, tuned.Handle, out var error);
            if (error != IntPtr.Zero)
            {
                var message = Marshal.PtrToStringAnsi(error);
                Native.Instance.rocksdb_free(error);
                throw new InvalidOperationException($"RocksDB refused the ledger's memtable options: {message}.");
            }
        }
        finally
        {
            Marshal.FreeHGlobal(text);
            // Only the handle went to RocksDB: without this the GC may finalize baseOptions (rocksdb_options_destroy on
            // the finalizer thread) while RocksDB still copies from it, which crashed a test host (SIGSEGV in
            // OptionTypeInfo::Prepare) and, under GC pressure, made opens fail with garbage compression types.
            GC.KeepAlive(baseOptions);
        }

        return tuned;
    }

    /// <summary>
    /// The handle of one shard, reading its applied index from disk the first time. Idempotent: the same
    /// handle is returned for the same shard id.
    /// </summary>
    public RocksShard OpenShard(uint shardId)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        lock (shardsLock)
        {
            if (!shards.TryGetValue(shardId, out var shard))
            {
                shard = new RocksShard(this, shardId);
                shards.Add(shardId, shard);
            }

            return shard;
        }
    }

    /// <summary>The durable applied index of a shard: the bound below which its Raft WAL may be compacted.</summary>
    public ulong DurableAppliedIndex(uint shardId) => OpenShard(shardId).DurableAppliedIndex;

    /// <summary>
    /// Forces everything written so far to disk (memtable flush, or a synced RocksDB WAL), then advances every
    /// shard's <see cref="RocksShard.DurableAppliedIndex"/> to the applied index it had when the call began.
    /// Call it before compacting the Raft WAL; it costs one flush, so call it in the background, not per batch.
    /// </summary>
    public void MakeDurable()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        lock (durableLock)
        {
            // Capture first: every write that completed before the capture is covered by the flush below.
            var captured = CaptureAppliedIndexes();
            if (Options.WalMode == RocksWalMode.Disabled)
            {
                db.Flush(flushOptions);
            }
            else
            {
                Native.Instance.rocksdb_flush_wal(db.Handle, 1);
            }

            foreach (var (shard, appliedIndex, generation) in captured)
            {
                shard.MarkDurable(appliedIndex, generation);
            }
        }
    }

    private List<(RocksShard Shard, ulong AppliedIndex, ulong Generation)> CaptureAppliedIndexes()
    {
        lock (shardsLock)
        {
            var captured = new List<(RocksShard, ulong, ulong)>(shards.Count);
            foreach (var shard in shards.Values)
            {
                var (appliedIndex, generation) = shard.CaptureApplied();
                captured.Add((shard, appliedIndex, generation));
            }

            return captured;
        }
    }

    /// <summary>
    /// A native SST writer with the database's own options (table format, bloom filters, compression), opened on
    /// <paramref name="path"/>; the caller destroys it (<c>rocksdb_sstfilewriter_destroy</c>).
    /// </summary>
    internal IntPtr CreateSstWriter(string path)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var writer = Native.Instance.rocksdb_sstfilewriter_create(envOptions.Handle, dbOptions.Handle);
        try
        {
            Native.Instance.rocksdb_sstfilewriter_open(writer, path);
            return writer;
        }
        catch
        {
            Native.Instance.rocksdb_sstfilewriter_destroy(writer);
            throw;
        }
    }

    /// <summary>
    /// Ingests one SST file (moved into the database when it is on the same file system, else copied). Memtables that
    /// overlap its key range are flushed first; the file's keys get a sequence number newer than everything written.
    /// </summary>
    internal void Ingest(string path)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        db.IngestExternalFiles([path], ingestOptions, null);
        File.Delete(path); // a moved file may keep its old name as a second link
    }

    // SST files an install was building when the process stopped: never ingested, of no use.
    private static void DeleteUnfinishedIngests(string directoryPath)
    {
        var folder = Path.Combine(directoryPath, IngestFolderName);
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>A path for a temporary SST file in the database's own folder (so that ingesting it moves it).</summary>
    internal string NewIngestPath()
    {
        var folder = Path.Combine(Options.DirectoryPath, IngestFolderName);
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, $"install-{Guid.NewGuid():N}.sst");
    }

    /// <summary>Writes a batch without sync, per the durability rule on this class.</summary>
    internal void Write(WriteBatch batch)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        db.Write(batch, writeOptions);
    }

    /// <summary>A RocksDB property, for diagnostics (e.g. <c>rocksdb.stats</c>).</summary>
    public string? GetProperty(string name) => db.GetProperty(name);

    /// <summary>
    /// Closes the database. RocksDB flushes unpersisted memtables on a clean close; durable indexes do not
    /// matter after this point.
    /// </summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        Native.Instance.rocksdb_column_family_handle_destroy(defaultColumnFamily);
        db.Dispose();
        GC.KeepAlive(dbOptions);
        GC.KeepAlive(blockCache);
        GC.KeepAlive(envOptions);
        GC.KeepAlive(ingestOptions);
    }
}
