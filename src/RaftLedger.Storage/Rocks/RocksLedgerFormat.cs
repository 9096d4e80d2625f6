using System.Globalization;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// The layout version of a ledger data folder, kept in a small file next to RocksDB's own files, so that a
/// build never reads state written in a layout it does not know (it would misread records, not fail cleanly).
/// Version 3: account keys end in <see cref="RocksLedgerLimits.AccountKeySuffixBytes"/> zero bytes. Version 2:
/// grouped timestamp and per-account indexes (<see cref="RocksTable"/>). Version 1 had one index record per
/// transfer and no format file.
/// </summary>
public static class RocksLedgerFormat
{
    /// <summary>The layout this build writes and reads.</summary>
    public const int Version = 3;

    /// <summary>The file, inside the RocksDB folder, that holds the version as decimal text.</summary>
    public const string FileName = "RAFTLEDGER-FORMAT";

    /// <summary>
    /// Throws <see cref="InvalidDataException"/> when <paramref name="directory"/> holds RocksDB state of another
    /// layout (or of the first layout, which had no format file). A new or empty folder passes.
    /// </summary>
    public static void Check(string directory)
    {
        var path = Path.Combine(directory, FileName);
        var found = File.Exists(path) ? ReadVersion(path) : (File.Exists(Path.Combine(directory, "CURRENT")) ? "1 (no format file)" : null);
        if (found is not null && found != Version.ToString(CultureInfo.InvariantCulture))
        {
            throw new InvalidDataException(
                $"{directory} holds ledger state in format {found}, and this build reads format {Version} only. " +
                "Wipe this replica's data folder and restart it: it catches up from the other replicas.");
        }
    }

    /// <summary>Records the layout in a new folder (written to a temporary file, synced, then renamed into place).</summary>
    public static void WriteIfMissing(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            return;
        }

        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(System.Text.Encoding.ASCII.GetBytes(Version.ToString(CultureInfo.InvariantCulture)));
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        Wal.WalFiles.SyncDirectory(directory);
    }

    private static string ReadVersion(string path) => File.ReadAllText(path).Trim();
}
