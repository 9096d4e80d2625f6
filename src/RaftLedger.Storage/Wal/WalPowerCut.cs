using Microsoft.Win32.SafeHandles;

namespace RaftLedger.Storage.Wal;

/// <summary>
/// What <see cref="WalPowerCut.Apply"/> dropped: the bytes from the mark to the last non-zero byte of each segment it
/// zeroed (so unsynced writes and, in a recycled file, its earlier life's records), summed, and how many segments.
/// </summary>
public sealed record WalPowerCutResult(long BytesDropped, int SegmentsTouched);

/// <summary>
/// TEST INSTRUMENT for <c>raftledger verify</c>'s power-cut fault: makes the log of a stopped node look as a power cut
/// would have left it, given its <see cref="WalSyncedMark"/>. Every byte after the mark's offset in its segment, and
/// every byte of a later segment, reads as never written (zeros). Files stay, at their size: segments are preallocated
/// and created, renamed and recycled durably (directory synced) before any write goes into them, so a power cut keeps
/// the file and loses only its unsynced contents; zeros are what recovery sees of a never-written preallocated region
/// (a recycled file would show its earlier life's records instead, which recovery treats the same way).
/// </summary>
public static class WalPowerCut
{
    private const int ChunkBytes = 1024 * 1024;

    /// <summary>
    /// Applies the cut to the segments in <paramref name="walDirectory"/>. The node must not be running. Only chunks
    /// holding a non-zero byte are rewritten, so a power cut does not write a whole spare segment of zeros again.
    /// </summary>
    public static WalPowerCutResult Apply(string walDirectory, WalSyncedMark mark)
    {
        ArgumentException.ThrowIfNullOrEmpty(walDirectory);
        ArgumentOutOfRangeException.ThrowIfNegative(mark.OffsetBytes);
        long dropped = 0;
        var touched = 0;
        foreach (var (sequence, path) in WalFiles.ListSegments(walDirectory))
        {
            if (sequence < mark.Segment)
            {
                continue; // The writer rolled past it only after its last flush was synced.
            }

            var from = sequence == mark.Segment ? mark.OffsetBytes : 0;
            var zeroed = ZeroFrom(path, from);
            dropped += zeroed;
            touched += zeroed > 0 ? 1 : 0;
        }

        return new WalPowerCutResult(dropped, touched);
    }

    /// <summary>
    /// Zeros every non-zero chunk of the file from <paramref name="from"/>; returns how far past it the last non-zero
    /// byte was (the extent of what the cut dropped, 0 when it was all zeros already).
    /// </summary>
    private static long ZeroFrom(string path, long from)
    {
        using var handle = WalFiles.OpenSegment(path);
        var length = RandomAccess.GetLength(handle);
        var buffer = new byte[ChunkBytes];
        var end = from;
        for (var at = from; at < length; at += ChunkBytes)
        {
            var chunk = buffer.AsSpan(0, (int)Math.Min(ChunkBytes, length - at));
            ReadFully(handle, chunk, at);
            var last = chunk.LastIndexOfAnyExcept((byte)0);
            if (last >= 0)
            {
                end = at + last + 1;
                chunk.Clear();
                RandomAccess.Write(handle, chunk, at);
            }
        }

        return end - from;
    }

    private static void ReadFully(SafeFileHandle handle, Span<byte> into, long offset)
    {
        var read = 0;
        while (read < into.Length)
        {
            var n = RandomAccess.Read(handle, into[read..], offset + read);
            if (n == 0)
            {
                into[read..].Clear(); // Past the end of the file: nothing there.
                return;
            }

            read += n;
        }
    }
}
