using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Raft;
using RaftLedger.Storage.Rocks;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Node.Host;

/// <summary>What one group's Ready asks to persist: entries, hard state, snapshot metadata.</summary>
public readonly record struct GroupPersist(ulong GroupId, IReadOnlyList<Entry> Entries, HardState? HardState, SnapshotMetadata? Snapshot);

/// <summary>
/// The node's storage: the Raft log of every group it hosts (per-group read views for the cores, and one call that
/// makes the writes of all groups' Readies durable together, one fsync for the whole round) and each shard's
/// ledger state.
/// </summary>
public interface INodeStorage : IDisposable
{
    /// <summary>The ledger store of <paramref name="shard"/> and the last Raft index its state includes.</summary>
    (ILedgerStore Store, ulong Applied) OpenLedger(int shard);

    /// <summary>The read view of group <paramref name="groupId"/> (created empty when the group is new).</summary>
    IRaftLogStorage Group(ulong groupId);

    /// <summary>Makes every write durable; returns once they all are. Writes of one group are in order.</summary>
    Task PersistAsync(IReadOnlyList<GroupPersist> writes, CancellationToken cancel);
}

/// <summary>
/// A node log in memory: nothing survives the process. For scheduler tests and for running before the WAL
/// is available; never used where an acknowledged write must survive a crash.
/// </summary>
public sealed class MemoryNodeStorage : INodeStorage
{
    private readonly Dictionary<ulong, MemoryLogStorage> groups = [];

    public (ILedgerStore Store, ulong Applied) OpenLedger(int shard) => (new InMemoryLedgerStore(), 0);

    public IRaftLogStorage Group(ulong groupId)
    {
        if (!groups.TryGetValue(groupId, out var storage))
        {
            storage = new MemoryLogStorage();
            groups.Add(groupId, storage);
        }

        return storage;
    }

    public Task PersistAsync(IReadOnlyList<GroupPersist> writes, CancellationToken cancel)
    {
        foreach (var write in writes)
        {
            var storage = groups[write.GroupId];
            if (write.Snapshot is { } snapshot)
            {
                storage.ApplySnapshot(snapshot);
            }

            if (write.Entries.Count > 0)
            {
                storage.Append(write.Entries);
            }

            if (write.HardState is { } hardState)
            {
                storage.SetHardState(hardState);
            }

            Invariant.Check(write.Entries.Count == 0 || storage.LastIndex == write.Entries[^1].Index);
        }

        return Task.CompletedTask;
    }

    public void Dispose()
    {
    }
}

/// <summary>
/// Durable storage: the shared write-ahead log (group commit, one fdatasync per round) for every group's Raft log,
/// and one RocksDB for every shard's ledger state, whose applied index is written with the state it covers.
/// The WAL is never compacted yet (no snapshots are taken), so it always covers what RocksDB has not made durable.
/// </summary>
public sealed class DurableNodeStorage : INodeStorage
{
    private readonly WriteAheadLog wal;
    private readonly RocksLedgerDatabase database;
    private readonly List<RocksLedgerStore> stores = [];
    private readonly List<WalGroupWrite> writes = [];

    public DurableNodeStorage(string dataDirectory)
    {
        wal = WriteAheadLog.Open(new WalOptions { Directory = Path.Combine(dataDirectory, "wal") });
        try
        {
            database = RocksLedgerDatabase.Open(new RocksLedgerOptions { DirectoryPath = Path.Combine(dataDirectory, "ledger") });
        }
        catch
        {
            wal.Dispose();
            throw;
        }
    }

    public (ILedgerStore Store, ulong Applied) OpenLedger(int shard)
    {
        var store = new RocksLedgerStore(database.OpenShard((uint)shard));
        stores.Add(store);
        return (store, store.AppliedIndex);
    }

    public IRaftLogStorage Group(ulong groupId) => wal.GetGroup(groupId);

    public Task PersistAsync(IReadOnlyList<GroupPersist> persists, CancellationToken cancel)
    {
        writes.Clear();
        foreach (var persist in persists)
        {
            writes.Add(new WalGroupWrite(persist.GroupId, persist.Entries, persist.HardState, persist.Snapshot));
        }

        return wal.AppendAsync(writes, cancel);
    }

    public void Dispose()
    {
        foreach (var store in stores)
        {
            store.Dispose();
        }

        database.Dispose();
        wal.Dispose();
    }
}
