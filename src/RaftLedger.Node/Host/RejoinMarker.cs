using RaftLedger.Storage.Wal;

namespace RaftLedger.Node.Host;

/// <summary>
/// The file that says this node's data folder was wiped and its groups are still rejoining: written durably when the
/// node starts with <see cref="HostOptions.Rejoin"/>, read at every start, deleted once every group on the node has
/// caught up. A node restarted during its catch-up therefore rejoins again instead of voting with a partial log.
/// </summary>
public static class RejoinMarker
{
    public const string FileName = "rejoining";

    /// <summary>Writes the marker when <paramref name="requested"/>; whether this start rejoins (marker present).</summary>
    public static bool Begin(string directory, bool requested)
    {
        var path = Path.Combine(directory, FileName);
        if (requested && !File.Exists(path))
        {
            Directory.CreateDirectory(directory);
            using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                file.Write("rejoining after a wipe: groups vote once caught up\n"u8);
                file.Flush(flushToDisk: true);
            }

            WalFiles.SyncDirectory(directory);
        }

        return File.Exists(path);
    }

    /// <summary>Every group has caught up: later starts vote at once.</summary>
    public static void End(string directory)
    {
        File.Delete(Path.Combine(directory, FileName));
        WalFiles.SyncDirectory(directory);
    }
}
