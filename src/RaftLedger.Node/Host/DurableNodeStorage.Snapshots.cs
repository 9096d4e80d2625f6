using RaftLedger.Common;
using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Node.Host;

/// <summary>
/// The crash window of a snapshot install: RocksDB holds the new state (durably) before the WAL marker that replaces
/// the group's log is written. A crash in between would leave a ledger applied past the log's commit index, which
/// the Raft core refuses at start. So before installing, the marker is recorded in a small synced file; at the next
/// start, a shard whose ledger reached that index gets the marker written before its core is created.
/// </summary>
public sealed partial class DurableNodeStorage
{
    private readonly string installsDirectory;

    private string InstallRecord(ulong groupId) => Path.Combine(installsDirectory, $"g{groupId}.marker");

    private void BeginInstall(ulong groupId, SnapshotMetadata snapshot)
    {
        var record = MessageCodec.Encode(new Message { Type = MessageType.Snapshot, From = 1, To = 2, Snapshot = snapshot });
        var path = InstallRecord(groupId);
        using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(record);
            file.Flush(flushToDisk: true);
        }

        WalFiles.SyncDirectory(installsDirectory);
    }

    public void EndInstall(ulong groupId) => File.Delete(InstallRecord(groupId));

    /// <summary>At start, before the group's core exists: writes the marker of an install that a crash interrupted.</summary>
    private void FinishInterruptedInstall(ulong groupId, ulong ledgerApplied)
    {
        var path = InstallRecord(groupId);
        if (!File.Exists(path))
        {
            return;
        }

        Invariant.Check(MessageCodec.TryDecode(File.ReadAllBytes(path), out var record, out _) && record?.Snapshot is not null,
            "an install record is written and synced whole before the install starts");
        var snapshot = record!.Snapshot!;
        var group = wal.GetGroup(groupId);
        if (ledgerApplied == snapshot.Index && group.HardState.Commit < snapshot.Index)
        {
            // The ledger state was installed, the marker never written: write it now (replaces the stale log).
            wal.SetCompactableIndex(groupId, snapshot.Index);
            wal.AppendAsync(new WalGroupWrite(groupId, [], null, snapshot)).GetAwaiter().GetResult();
        }

        File.Delete(path);
    }
}
