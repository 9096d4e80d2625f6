using RaftLedger.Raft;

namespace RaftLedger.Storage.Wal;

/// <summary>
/// What one group persists from one Raft Ready: an optional snapshot marker (written first), entries
/// (contiguous; if the first index is at or below the group's last index, the log is truncated there
/// and overwritten), and an optional hard state (written last).
/// </summary>
public sealed record WalGroupWrite(
    ulong GroupId, IReadOnlyList<Entry> Entries, HardState? HardState, SnapshotMetadata? Snapshot)
{
    /// <summary>Bytes the records of this write take on disk.</summary>
    public int StoredBytes()
    {
        long bytes = 0;
        if (Snapshot is not null)
        {
            bytes += WalRecord.StoredBytes(WalRecord.SnapshotPayloadBytes(Snapshot.ConfState));
        }

        for (var i = 0; i < Entries.Count; i++)
        {
            bytes += WalRecord.StoredBytes(Entries[i].Data.Length);
        }

        if (HardState is not null)
        {
            bytes += WalRecord.StoredBytes(WalRecord.HardStatePayloadBytes);
        }

        return (int)Math.Min(bytes, int.MaxValue);
    }
}

/// <summary>
/// The log on disk is not what this node wrote and synced: records it had made durable are damaged or
/// missing. The node must not start with it (it could vote or acknowledge against promises it forgot).
/// </summary>
public sealed class WalCorruptionException : Exception
{
    /// <summary>Creates the exception for damage at <paramref name="offset"/> in <paramref name="path"/>.</summary>
    public WalCorruptionException(string path, long offset, string what)
        : base($"Write-ahead log is corrupt: {what} in {path} at byte offset {offset}. Records after this point " +
               "were synced, so this is not a torn write: the disk lost or damaged data this node had acknowledged. " +
               "Do not edit the file. " + RecoveryAdvice.WipeAndRejoin)
    {
        Path = path;
        Offset = offset;
    }

    /// <summary>Creates the exception for a message without a single location.</summary>
    public WalCorruptionException(string message)
        : base(message)
    {
        Path = string.Empty;
    }

    /// <summary>Creates the exception.</summary>
    public WalCorruptionException()
        : this("Write-ahead log is corrupt.")
    {
    }

    /// <summary>Creates the exception.</summary>
    public WalCorruptionException(string message, Exception innerException)
        : base(message, innerException)
    {
        Path = string.Empty;
    }

    /// <summary>The damaged segment file.</summary>
    public string Path { get; }

    /// <summary>Byte offset of the damage within <see cref="Path"/>.</summary>
    public long Offset { get; }
}
