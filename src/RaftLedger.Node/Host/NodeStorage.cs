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
/// Snapshots and log compaction on durable storage (the in-memory storage has none: its groups never compact).
/// The rule that keeps acknowledged writes safe: the Raft log of a shard is compacted only up to what the ledger
/// state has made durable (<see cref="MakeDurable"/>, then <see cref="DurableAppliedIndex"/>).
/// </summary>
public interface IShardSnapshotStorage
{
    /// <summary>Folder for snapshot files in transit (emptied at start).</summary>
    string SnapshotDirectory { get; }

    /// <summary>Forces the ledger state of every shard to disk (one flush; call it off the scheduler thread).</summary>
    void MakeDurable();

    /// <summary>The highest applied index of <paramref name="shard"/> that is on disk.</summary>
    ulong DurableAppliedIndex(int shard);

    /// <summary>Allows the group's log to be compacted up to <paramref name="index"/> (at most its durable applied index).</summary>
    void SetCompactableIndex(ulong groupId, ulong index);

    /// <summary>
    /// Groups whose logs keep the WAL's oldest segment alive while the WAL holds more segments than it likes, and are
    /// too large to copy forward: the WAL shrinks only once these are compacted, whatever their entry counts.
    /// </summary>
    IReadOnlyList<ulong> GroupsPinningLog { get; }

    /// <summary>Bytes of WAL segment files the log holds now (segments × their size).</summary>
    long LogBytes { get; }

    /// <summary>A consistent view of the shard's ledger state to stream to a follower (dispose it when done).</summary>
    RocksShardSnapshot CreateSnapshot(int shard);

    /// <summary>
    /// Off the scheduler thread: checks a shard snapshot file received from a leader and turns it into what
    /// <see cref="InstallSnapshot"/> ingests (the received file is deleted). This is the slow part of an install
    /// (seconds for millions of transfers), which on the scheduler thread held every group's heartbeats that long.
    /// Throws <see cref="RocksSnapshotCorruptException"/> when the file is corrupt.
    /// </summary>
    RocksPreparedInstall PrepareSnapshot(int shard, string path);

    /// <summary>
    /// Replaces the shard's ledger state by a prepared snapshot and makes it durable; returns its applied index. Until
    /// <see cref="EndInstall"/> (after the WAL marker <paramref name="snapshot"/> is durable) a crash is repaired at
    /// the next start by writing that marker, so the log never lags the state it must continue.
    /// </summary>
    ulong InstallSnapshot(int shard, RocksPreparedInstall prepared, SnapshotMetadata snapshot);

    /// <summary>The WAL marker of an installed snapshot is durable: forget the repair record.</summary>
    void EndInstall(ulong groupId);
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
/// The WAL is compacted only up to what RocksDB has made durable (see <see cref="IShardSnapshotStorage"/>).
/// </summary>
public sealed partial class DurableNodeStorage : INodeStorage, IShardSnapshotStorage
{
    private readonly WriteAheadLog wal;
    private readonly RocksLedgerDatabase database;
    private readonly Dictionary<int, RocksLedgerStore> stores = [];
    private readonly List<WalGroupWrite> writes = [];
    private readonly long segmentBytes;

    public DurableNodeStorage(string dataDirectory, StartupTimeline? timeline = null, long walSegmentBytes = WalOptions.SegmentBytesDefault)
    {
        timeline ??= StartupTimeline.None;
        segmentBytes = walSegmentBytes;
        SnapshotDirectory = Path.Combine(dataDirectory, "snapshots");
        installsDirectory = Path.Combine(dataDirectory, "snapshot-installs");
        Directory.CreateDirectory(installsDirectory);
        if (Directory.Exists(SnapshotDirectory))
        {
            // Files of transfers that a crash interrupted: never installed, never needed again.
            Directory.Delete(SnapshotDirectory, recursive: true);
        }

        Directory.CreateDirectory(SnapshotDirectory);
        wal = WriteAheadLog.Open(UnsafeTestFaults.WithSyncedMark(WalOptionsFor(dataDirectory, walSegmentBytes), SyncedMarkPath(dataDirectory)));
        var walStatistics = wal.Statistics;
        timeline.Mark("WAL recovered", $"{walStatistics.Segments} segments, {wal.GroupIds.Count} groups");
        try
        {
            database = RocksLedgerDatabase.Open(new RocksLedgerOptions { DirectoryPath = Path.Combine(dataDirectory, "ledger") });
            timeline.Mark("RocksDB opened");
        }
        catch
        {
            wal.Dispose();
            throw;
        }
    }

    // Segments smaller than the default (tests) take records and flushes of at most half a segment.
    private static WalOptions WalOptionsFor(string dataDirectory, long segmentBytes)
    {
        var flushBytesMax = (int)Math.Min(WalOptions.FlushBytesMaxDefault, segmentBytes / 2);
        return new WalOptions
        {
            Directory = WalDirectory(dataDirectory),
            SegmentBytes = segmentBytes,
            FlushBytesMax = flushBytesMax,
            RecordBytesMax = Math.Min(WalOptions.RecordBytesMaxDefault, flushBytesMax),
            ReadBytesMax = Math.Min(WalOptions.ReadBytesMaxDefault, flushBytesMax),
            CompactionRewriteBytesMax = Math.Min(WalOptions.CompactionRewriteBytesMaxDefault, flushBytesMax),
        };
    }

    /// <summary>The WAL's folder in a node's data folder.</summary>
    public static string WalDirectory(string dataDirectory) => Path.Combine(dataDirectory, "wal");

    /// <summary>
    /// TEST INSTRUMENT: where the WAL records how much of it is durable when the node runs with
    /// RAFTLEDGER_TEST_SYNCED_MARK=on (verify's power-cut fault reads it, see Storage's WalSyncedMark).
    /// </summary>
    public static string SyncedMarkPath(string dataDirectory) => Path.Combine(dataDirectory, "synced-wal.mark");

    public (ILedgerStore Store, ulong Applied) OpenLedger(int shard)
    {
        var store = new RocksLedgerStore(database.OpenShard((uint)shard));
        stores.Add(shard, store);
        FinishInterruptedInstall((ulong)shard + 1, store.AppliedIndex);
        return (store, store.AppliedIndex);
    }

    public string SnapshotDirectory { get; }

    public void MakeDurable() => database.MakeDurable();

    public IReadOnlyList<ulong> GroupsPinningLog => wal.Statistics.GroupsNeedingSnapshot;

    public long LogBytes => wal.Statistics.Segments * segmentBytes;

    public ulong DurableAppliedIndex(int shard) => database.DurableAppliedIndex((uint)shard);

    public void SetCompactableIndex(ulong groupId, ulong index)
    {
        // The meta group's state is saved (cluster.json, fsynced) before its log is compacted; shards' state is RocksDB's.
        Invariant.Check(groupId == Placement.ClusterMap.MetaGroupId || index <= database.DurableAppliedIndex((uint)(groupId - 1)),
            "the log is never compacted past durable ledger state");
        wal.SetCompactableIndex(groupId, index);
    }

    public RocksShardSnapshot CreateSnapshot(int shard) => database.OpenShard((uint)shard).CreateSnapshot();

    public RocksPreparedInstall PrepareSnapshot(int shard, string path)
    {
        RocksPreparedInstall prepared;
        using (var input = File.OpenRead(path))
        {
            prepared = database.PrepareInstall((uint)shard, input, path + ".sst");
        }

        File.Delete(path);
        return prepared;
    }

    public ulong InstallSnapshot(int shard, RocksPreparedInstall prepared, SnapshotMetadata snapshot)
    {
        BeginInstall((ulong)shard + 1, snapshot);
        var summary = database.OpenShard((uint)shard).InstallPrepared(prepared);
        // The store caches accounts and the last timestamp of the state it replaced.
        stores[shard].Reload();
        Invariant.Check(database.DurableAppliedIndex((uint)shard) == summary.AppliedIndex, "an installed snapshot is durable");
        return summary.AppliedIndex;
    }

    public IRaftLogStorage Group(ulong groupId) => wal.GetGroup(groupId);

    /// <summary>
    /// At start, before the meta core exists: the saved meta state is ahead of the meta log's commit index (a crash
    /// between saving an installed meta snapshot and writing its WAL marker): write the marker now.
    /// </summary>
    public void RepairMetaLog(SnapshotMetadata snapshot)
    {
        var group = wal.GetGroup(Placement.ClusterMap.MetaGroupId);
        Invariant.Check(group.HardState.Commit < snapshot.Index && group.Snapshot.Index < snapshot.Index, "only a log behind the saved state is repaired");
        wal.SetCompactableIndex(Placement.ClusterMap.MetaGroupId, snapshot.Index);
        wal.AppendAsync(new WalGroupWrite(Placement.ClusterMap.MetaGroupId, [], null, snapshot)).GetAwaiter().GetResult();
    }

    public Task PersistAsync(IReadOnlyList<GroupPersist> persists, CancellationToken cancel)
    {
        writes.Clear();
        long bytes = 0;
        foreach (var persist in persists)
        {
            var write = new WalGroupWrite(persist.GroupId, persist.Entries, persist.HardState, persist.Snapshot);
            writes.Add(write);
            bytes += write.StoredBytes();
        }

        // A round of many big batches (e.g. eight requests of 8189 transfers) can exceed one WAL flush.
        return bytes <= wal.Options.FlushBytesMax ? AppendAsync(writes, cancel) : PersistInPiecesAsync(cancel);
    }

    /// <summary>One append after the other, each awaited, so that they reach the disk in order.</summary>
    private async Task PersistInPiecesAsync(CancellationToken cancel)
    {
        foreach (var append in WalAppendSplitter.Split(writes, wal.Options.FlushBytesMax))
        {
            await AppendAsync(append, cancel);
        }
    }

    /// <summary>
    /// The scheduler is normally the WAL's only appender: it writes on its own thread, which saves two thread
    /// wake-ups per round (queue to the writer, completion back), each tens of µs on 2 shared cores. The writer
    /// thread takes over while it is busy (compaction, another appender).
    /// </summary>
    private Task AppendAsync(IReadOnlyList<WalGroupWrite> append, CancellationToken cancel) =>
        wal.TryAppendNow(append) ? Task.CompletedTask : wal.AppendAsync(append, cancel);

    public void Dispose()
    {
        foreach (var store in stores.Values)
        {
            store.Dispose();
        }

        database.Dispose();
        wal.Dispose();
    }
}
