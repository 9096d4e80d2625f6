using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RaftLedger.Storage.Wal;

/// <summary>
/// The few file-system calls the log needs. .NET's FlushToDisk / Flush(true) call fsync, which on a
/// preallocated file also writes the inode's mtime and so costs a journal commit; fdatasync skips that.
/// We call fdatasync directly on Linux and fall back to FlushToDisk elsewhere.
/// </summary>
public static partial class WalFiles
{
    private const string SegmentPrefix = "wal-";
    private const string SegmentSuffix = ".log";
    private const string FreeSuffix = ".free";
    private const int ZeroChunkBytes = 1024 * 1024;

    /// <summary>File name of segment <paramref name="sequence"/>; sorts by sequence.</summary>
    public static string SegmentName(ulong sequence) =>
        string.Create(CultureInfo.InvariantCulture, $"{SegmentPrefix}{sequence:D16}{SegmentSuffix}");

    /// <summary>
    /// File name of a compacted segment <paramref name="sequence"/> kept to be recycled; recovery does not read it,
    /// and it is only ever renamed to a segment of a higher sequence.
    /// </summary>
    public static string FreeName(ulong sequence) =>
        string.Create(CultureInfo.InvariantCulture, $"{SegmentPrefix}{sequence:D16}{FreeSuffix}");

    /// <summary>The segment files in <paramref name="directory"/>, oldest first.</summary>
    public static List<(ulong Sequence, string Path)> ListSegments(string directory) => List(directory, SegmentSuffix);

    /// <summary>The free (compacted, kept for reuse) segment files in <paramref name="directory"/>, oldest first.</summary>
    public static List<(ulong Sequence, string Path)> ListFree(string directory) => List(directory, FreeSuffix);

    private static List<(ulong Sequence, string Path)> List(string directory, string suffix)
    {
        var found = new List<(ulong, string)>();
        foreach (var path in Directory.EnumerateFiles(directory, SegmentPrefix + "*" + suffix))
        {
            var name = Path.GetFileName(path);
            var digits = name[SegmentPrefix.Length..^suffix.Length];
            if (ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
            {
                found.Add((sequence, path));
            }
        }

        found.Sort(static (a, b) => a.Item1.CompareTo(b.Item1));
        return found;
    }

    /// <summary>Opens a segment for reading and writing (no buffering in .NET; the page cache remains).</summary>
    public static SafeFileHandle OpenSegment(string path) =>
        File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);

    /// <summary>
    /// Creates a segment of <paramref name="bytes"/> zeros and makes it and its directory entry durable.
    /// Zero-filling instead of fallocate: on our disk a written file syncs small writes much faster.
    /// </summary>
    public static void CreateZeroFilled(string path, long bytes)
    {
        var temporary = path + ".tmp";
        using (var handle = File.OpenHandle(temporary, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
        {
            var zeros = new byte[(int)Math.Min(ZeroChunkBytes, bytes)];
            for (long at = 0; at < bytes; at += zeros.Length)
            {
                RandomAccess.Write(handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, bytes - at)), at);
            }

            RandomAccess.FlushToDisk(handle);
        }

        // The rename makes a half-written file impossible to mistake for a segment after a crash.
        File.Move(temporary, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>
    /// Renames <paramref name="from"/> to <paramref name="to"/> (which must not exist) and makes the directory entry
    /// durable before returning, so that no later write depends on a rename a crash could undo.
    /// </summary>
    public static void RenameDurably(string from, string to)
    {
        File.Move(from, to, overwrite: false);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(to))!);
    }

    /// <summary>Writes zeros over [from, to) and syncs: used to erase a torn tail.</summary>
    public static void ZeroRange(SafeFileHandle handle, long from, long to)
    {
        var zeros = new byte[ZeroChunkBytes];
        for (var at = from; at < to; at += zeros.Length)
        {
            RandomAccess.Write(handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, to - at)), at);
        }

        RandomAccess.FlushToDisk(handle);
    }

    /// <summary>Makes written data durable without forcing metadata (fdatasync on Linux).</summary>
    public static void SyncData(SafeFileHandle handle)
    {
        if (!OperatingSystem.IsLinux())
        {
            RandomAccess.FlushToDisk(handle);
            return;
        }

        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (NativeMethods.fdatasync((int)handle.DangerousGetHandle()) != 0)
            {
                // After a failed fdatasync the kernel may have dropped the dirty pages: retrying
                // cannot make them durable, so the log must stop (the caller faults the WAL).
                throw new IOException($"fdatasync failed with errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>Makes created, renamed and deleted directory entries durable (Linux); a no-op elsewhere.</summary>
    public static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = NativeMethods.open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"cannot open directory {directory} to sync it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (NativeMethods.fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory {directory} failed (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = NativeMethods.close(fd);
        }
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054 // LibraryImport needs AllowUnsafeBlocks in the shared csproj; these signatures are blittable.
#pragma warning disable CA5392
        [DllImport("libc", SetLastError = true)]
        internal static extern int fdatasync(int fd);

        [DllImport("libc", SetLastError = true)]
        internal static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        internal static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        internal static extern int close(int fd);
#pragma warning restore CA5392
#pragma warning restore SYSLIB1054
    }
}
