using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Simulation;

public enum RaftDiskRecordKind : byte
{
    Entry = 1,
    HardState = 2,
    Snapshot = 3,
}

/// <summary>
/// One write to a simulated Raft node's disk. Each log entry is its own record so that a crash can keep a
/// prefix of an appended batch, as a write-ahead log torn mid-batch would.
/// </summary>
public readonly record struct RaftDiskRecord(RaftDiskRecordKind Kind, Entry Entry, HardState HardState, SnapshotMetadata? Snapshot, byte[]? SnapshotData)
{
    public static RaftDiskRecord OfEntry(Entry entry) => new(RaftDiskRecordKind.Entry, entry, default, null, null);

    public static RaftDiskRecord OfHardState(HardState hardState) => new(RaftDiskRecordKind.HardState, default, hardState, null, null);

    public static RaftDiskRecord OfSnapshot(SnapshotMetadata snapshot, byte[] data) => new(RaftDiskRecordKind.Snapshot, default, default, snapshot, data);
}

/// <summary>
/// What a simulated Raft node has on disk: its log storage (the same object the live core reads, since the
/// host only hands the core what is durable) and the state-machine bytes of its latest snapshot.
/// </summary>
public sealed class RaftDiskImage : IDurableImage<RaftDiskRecord>
{
    /// <summary>An empty disk: the node bootstraps (or joins) on first start.</summary>
    public RaftDiskImage(byte[] emptyStateMachine) => SnapshotData = emptyStateMachine;

    public MemoryLogStorage Storage { get; } = new();

    /// <summary>State-machine bytes at <see cref="MemoryLogStorage.Snapshot"/>'s index (the empty state at index 0).</summary>
    public byte[] SnapshotData { get; private set; }

    /// <summary>True for a disk on which nothing durable was ever written.</summary>
    public bool IsEmpty => Storage.LastIndex == 0 && Storage.HardState.IsEmpty && Storage.Snapshot.Index == 0;

    public void Apply(RaftDiskRecord record)
    {
        switch (record.Kind)
        {
            case RaftDiskRecordKind.Entry:
                Storage.Append([record.Entry]);
                break;
            case RaftDiskRecordKind.HardState:
                Storage.SetHardState(record.HardState);
                break;
            case RaftDiskRecordKind.Snapshot:
                Invariant.Check(record.Snapshot is not null && record.SnapshotData is not null);
                Storage.ApplySnapshot(record.Snapshot);
                SnapshotData = record.SnapshotData;
                break;
            default:
                throw new InvalidOperationException($"unknown disk record {record.Kind}");
        }
    }

    /// <summary>
    /// Takes a local snapshot at <paramref name="index"/> (already applied) and drops older entries. A local
    /// snapshot is written atomically (temp file + rename in a real store), so it is durable at once.
    /// </summary>
    public void SnapshotAndCompact(ulong index, ConfState confState, byte[] data, ulong keepEntries)
    {
        Invariant.Check(index >= Storage.Snapshot.Index);
        Storage.CreateSnapshot(index, confState);
        SnapshotData = data;
        if (index > keepEntries)
        {
            Storage.Compact(Math.Max(Storage.FirstIndex - 1, index - keepEntries));
        }
    }
}
