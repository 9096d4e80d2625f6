namespace RaftLedger.Node.Host;

/// <summary>
/// What an operator should do when a node stops because its disk is full. The raw error names a file deep in the data
/// folder ("No space left on device : '…/wal-…log.tmp'", or RocksDB's "IO error: No space left on device"); the advice
/// says which disk and that a restart once there is room loses nothing (RELIABILITY, "Full disk").
/// </summary>
public static class FullDiskAdvice
{
    /// <summary>ENOSPC: .NET on Unix gives an I/O exception the errno as its HResult.</summary>
    private const int NoSpaceErrno = 28;

    /// <summary>ERROR_DISK_FULL as an HResult, for the same failure on Windows.</summary>
    private const int DiskFullHResult = unchecked((int)0x80070070);

    /// <summary>The advice when <paramref name="exception"/> or one of its causes is a full disk; otherwise null.</summary>
    public static string? For(Exception exception, string dataDirectory)
    {
        ArgumentNullException.ThrowIfNull(exception);
        for (Exception? cause = exception; cause is not null; cause = cause.InnerException)
        {
            if ((cause is IOException && cause.HResult is NoSpaceErrno or DiskFullHResult) ||
                cause.Message.Contains("No space left on device", StringComparison.Ordinal))
            {
                return $"the disk holding {dataDirectory} is full. Free space on it (or move the folder to a larger disk) and start the node again: " +
                    "it recovers every write it acknowledged and catches up from the other replicas";
            }
        }

        return null;
    }
}
