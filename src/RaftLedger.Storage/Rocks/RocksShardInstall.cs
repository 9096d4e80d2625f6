using RaftLedger.Common;

namespace RaftLedger.Storage.Rocks;

/// <summary>Taking, checking and installing snapshots of one shard.</summary>
public static class RocksShardSnapshots
{
    /// <summary>Takes a consistent point-in-time view of the shard; applying may continue meanwhile.</summary>
    public static RocksShardSnapshot CreateSnapshot(this RocksShard shard)
    {
        ArgumentNullException.ThrowIfNull(shard);
        return new RocksShardSnapshot(shard);
    }

    /// <summary>Reads a whole snapshot stream and checks it, writing nothing.</summary>
    public static RocksSnapshotSummary Verify(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var reader = new RocksSnapshotReader(input);
        var (source, appliedIndex) = reader.ReadBegin();
        while (reader.ReadData())
        {
        }

        return new RocksSnapshotSummary(source, appliedIndex, reader.DataChunkCount, reader.RecordCount, -1);
    }

    /// <summary>
    /// Replaces the shard's whole state by the snapshot in <paramref name="input"/> (which may come from another
    /// shard id: records carry no shard prefix), and makes it durable before returning, so the host may then
    /// record the Raft snapshot and drop the log it covers. The stream is checked and written to an SST file in the
    /// database's folder first (<see cref="RocksSnapshotIngest.PrepareInstall"/>), then ingested in one atomic step:
    /// a corrupt stream, seekable or not, leaves the previous state untouched. A host that can prepare off the thread
    /// that applies should call the two steps itself. Must not run concurrently with batches of the same shard.
    /// </summary>
    public static RocksSnapshotSummary InstallSnapshot(this RocksShard shard, Stream input)
    {
        ArgumentNullException.ThrowIfNull(shard);
        using var prepared = shard.Database.PrepareInstall(shard.ShardId, input, shard.Database.NewIngestPath());
        return shard.InstallPrepared(prepared);
    }
}
