using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>What one group's Ready asks to persist: entries, hard state, snapshot metadata.</summary>
public readonly record struct GroupPersist(ulong GroupId, IReadOnlyList<Entry> Entries, HardState? HardState, SnapshotMetadata? Snapshot);

/// <summary>
/// The node's Raft log for every group it hosts: per-group read views for the cores, and one call that makes
/// the writes of all groups' Readies durable together (one fsync for the whole round).
/// </summary>
public interface INodeLog : IDisposable
{
    /// <summary>The read view of group <paramref name="groupId"/> (created empty when the group is new).</summary>
    IRaftLogStorage Group(ulong groupId);

    /// <summary>Makes every write durable; returns once they all are. Writes of one group are in order.</summary>
    Task PersistAsync(IReadOnlyList<GroupPersist> writes, CancellationToken cancel);
}

/// <summary>
/// A node log in memory: nothing survives the process. For scheduler tests and for running before the WAL
/// is available; never used where an acknowledged write must survive a crash.
/// </summary>
public sealed class MemoryNodeLog : INodeLog
{
    private readonly Dictionary<ulong, MemoryLogStorage> groups = [];

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
