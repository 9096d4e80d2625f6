using System.Runtime.InteropServices;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// Keeps glibc from handing RocksDB's large, short-lived allocations back to the kernel after every use.
/// Each applied batch becomes one native WriteBatch (~7 MB for 8,189 transfers) and each memtable is allocated
/// in 8 MB blocks. With glibc's defaults, such sizes are mmapped or trimmed off the heap when freed, so the next
/// batch faults every page in again and the kernel zeroes it: page faults were ~10 % of a node's CPU in the
/// batched benchmark. Raising the mmap and trim thresholds keeps that memory in the process for reuse, at the
/// cost of up to <see cref="TrimThresholdBytes"/> of idle heap per malloc arena. Process-wide, applied once,
/// a no-op where the C library has no <c>mallopt</c> (non-glibc systems).
/// </summary>
internal static class NativeHeapTuning
{
    /// <summary>Allocations below this come from the heap, not their own mmap (glibc's own ceiling is 32 MiB).</summary>
    public const int MmapThresholdBytes = 32 * 1024 * 1024;

    /// <summary>Free memory at the top of a heap is returned to the kernel only beyond this.</summary>
    public const int TrimThresholdBytes = 64 * 1024 * 1024;

    // mallopt parameter numbers from glibc's malloc.h.
    private const int MallocTrimThreshold = -1;
    private const int MallocMmapThreshold = -3;

    private static int applied;

    public static void ApplyOnce()
    {
        if (!OperatingSystem.IsLinux() || Interlocked.Exchange(ref applied, 1) == 1)
        {
            return;
        }

        try
        {
            Mallopt(MallocMmapThreshold, MmapThresholdBytes);
            Mallopt(MallocTrimThreshold, TrimThresholdBytes);
        }
        catch (Exception error) when (error is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: its allocator has its own policy, and this is only a tuning.
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);
}
