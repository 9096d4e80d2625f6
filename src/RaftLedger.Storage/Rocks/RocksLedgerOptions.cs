using RaftLedger.Common;

namespace RaftLedger.Storage.Rocks;

/// <summary>How RocksDB's own write-ahead log is used. The Raft WAL is the durable record either way.</summary>
public enum RocksWalMode
{
    /// <summary>
    /// No RocksDB WAL: writes go to the memtable only and become durable when a memtable is flushed to an SST.
    /// Fastest apply; after a crash the unflushed tail is replayed from the Raft log.
    /// </summary>
    Disabled = 0,

    /// <summary>RocksDB WAL written but never synced on write; <see cref="RocksLedgerDatabase.MakeDurable"/> syncs it.</summary>
    Unsynced = 1,
}

/// <summary>Options of the node's RocksDB instance.</summary>
public sealed record RocksLedgerOptions
{
    /// <summary>Directory of the database; created if missing.</summary>
    public required string DirectoryPath { get; init; }

    public RocksWalMode WalMode { get; init; } = RocksWalMode.Disabled;

    /// <summary>Size of one memtable. See <see cref="RocksLedgerLimits.WriteBufferBytesDefault"/>.</summary>
    public ulong WriteBufferBytes { get; init; } = RocksLedgerLimits.WriteBufferBytesDefault;

    public ulong BlockCacheBytes { get; init; } = RocksLedgerLimits.BlockCacheBytesDefault;

    /// <summary>Tests turn compactions off so that no background job removes files under a crash image.</summary>
    public bool DisableAutoCompactions { get; init; }

    /// <summary>Throws with what is wrong when an option is out of range.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DirectoryPath))
        {
            throw new ArgumentException("RocksDB directory path is empty: pass the node's state directory.", nameof(DirectoryPath));
        }

        if (WriteBufferBytes < 64 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(WriteBufferBytes), WriteBufferBytes, "RocksDB write buffer must be at least 64 KiB.");
        }

        if (BlockCacheBytes < 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(BlockCacheBytes), BlockCacheBytes, "RocksDB block cache must be at least 1 MiB.");
        }

        Invariant.Check(Enum.IsDefined(WalMode));
    }
}
