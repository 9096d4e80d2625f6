using System.Globalization;

namespace RaftLedger.Storage;

/// <summary>
/// A data folder's layout version, kept as decimal text in a small file inside it, so that a build never reads data
/// written in a layout it does not know (it would misread records, not fail cleanly). Used by the RocksDB ledger
/// folder (<see cref="Rocks.RocksLedgerFormat"/>) and the write-ahead log (<see cref="Wal.WalFormat"/>).
/// </summary>
public static class FormatVersionFile
{
    /// <summary>
    /// Throws <see cref="InvalidDataException"/> when <paramref name="directory"/> holds <paramref name="contents"/> of
    /// another layout: a version file with another number, or data (<paramref name="holdsData"/>) but no version file,
    /// which is layout <paramref name="versionWithoutFile"/>. A new or empty folder passes.
    /// </summary>
    public static void Check(string directory, string fileName, int version, bool holdsData, string versionWithoutFile, string contents)
    {
        var path = Path.Combine(directory, fileName);
        var found = File.Exists(path) ? File.ReadAllText(path).Trim() : (holdsData ? versionWithoutFile : null);
        if (found is not null && found != version.ToString(CultureInfo.InvariantCulture))
        {
            throw new InvalidDataException(
                $"{directory} holds {contents} in format {found}, and this build reads format {version} only. " + RecoveryAdvice.WipeAndRejoin);
        }
    }

    /// <summary>Records the layout in a new folder (written to a temporary file, synced, then renamed into place).</summary>
    public static void WriteIfMissing(string directory, string fileName, int version)
    {
        var path = Path.Combine(directory, fileName);
        if (File.Exists(path))
        {
            return;
        }

        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(System.Text.Encoding.ASCII.GetBytes(version.ToString(CultureInfo.InvariantCulture)));
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        Wal.WalFiles.SyncDirectory(directory);
    }
}
