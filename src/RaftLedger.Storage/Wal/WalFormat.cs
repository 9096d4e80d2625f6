namespace RaftLedger.Storage.Wal;

/// <summary>
/// The on-disk layout version of a write-ahead log folder (<see cref="FormatVersionFile"/>). Version 2: each record's
/// CRC also covers its segment's sequence, and compacted segments are recycled (<see cref="WalRecord"/>). Version 1
/// had neither and no format file; its records would all fail version 2's check, so the log would look empty.
/// </summary>
public static class WalFormat
{
    /// <summary>The layout this build writes and reads.</summary>
    public const int Version = 2;

    /// <summary>The file, inside the WAL folder, that holds the version as decimal text.</summary>
    public const string FileName = "RAFTLEDGER-WAL-FORMAT";

    /// <summary>
    /// Throws <see cref="InvalidDataException"/> when <paramref name="directory"/> holds a log of another layout (or
    /// segments but no format file: version 1). A new or empty folder passes.
    /// </summary>
    public static void Check(string directory) =>
        FormatVersionFile.Check(directory, FileName, Version, WalFiles.ListSegments(directory).Count > 0, "1 (no format file)", "a write-ahead log");

    /// <summary>Records the layout in a new folder (written to a temporary file, synced, then renamed into place).</summary>
    public static void WriteIfMissing(string directory) => FormatVersionFile.WriteIfMissing(directory, FileName, Version);
}
