using Microsoft.Win32.SafeHandles;

namespace RaftLedger.Storage.Wal;

/// <summary>One open segment file.</summary>
internal sealed class WalSegment : IDisposable
{
    public WalSegment(ulong sequence, string path, SafeFileHandle handle, long capacityBytes)
    {
        Sequence = sequence;
        Path = path;
        Handle = handle;
        CapacityBytes = capacityBytes;
    }

    public ulong Sequence { get; }

    public string Path { get; }

    public SafeFileHandle Handle { get; }

    public long CapacityBytes { get; }

    /// <summary>Groups with at least one record here that may still be live (writer thread and recovery only).</summary>
    public HashSet<ulong> Groups { get; } = [];

    public void Dispose() => Handle.Dispose();
}
