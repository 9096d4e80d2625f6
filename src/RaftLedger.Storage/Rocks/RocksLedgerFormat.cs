namespace RaftLedger.Storage.Rocks;

/// <summary>
/// The layout version of a ledger data folder, kept in a small file next to RocksDB's own files
/// (<see cref="FormatVersionFile"/>). Version 4: cross-shard expiry entries are also kept in time order (side table
/// <c>CrossShardTables.ExpiryOrder</c>), which a version 3 folder lacks. Version 3: account keys end in <see cref="RocksLedgerLimits.AccountKeySuffixBytes"/>
/// zero bytes. Version 2: grouped timestamp and per-account indexes (<see cref="RocksTable"/>). Version 1 had one
/// index record per transfer and no format file.
/// </summary>
public static class RocksLedgerFormat
{
    /// <summary>The layout this build writes and reads.</summary>
    public const int Version = 4;

    /// <summary>The file, inside the RocksDB folder, that holds the version as decimal text.</summary>
    public const string FileName = "RAFTLEDGER-FORMAT";

    /// <summary>
    /// Throws <see cref="InvalidDataException"/> when <paramref name="directory"/> holds RocksDB state of another
    /// layout (or of the first layout, which had no format file). A new or empty folder passes.
    /// </summary>
    public static void Check(string directory) =>
        FormatVersionFile.Check(directory, FileName, Version, File.Exists(Path.Combine(directory, "CURRENT")), "1 (no format file)", "ledger state");

    /// <summary>Records the layout in a new folder (written to a temporary file, synced, then renamed into place).</summary>
    public static void WriteIfMissing(string directory) => FormatVersionFile.WriteIfMissing(directory, FileName, Version);
}
