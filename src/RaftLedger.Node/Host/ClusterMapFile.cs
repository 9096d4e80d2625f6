using System.Text.Json;
using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Host;

/// <summary>
/// The cluster map persisted in the node's data folder at bootstrap. A later start takes the cluster's
/// configuration from here; flags that disagree are reported and ignored, so a restarted node never
/// re-places shards because someone changed --shards.
/// </summary>
internal static class ClusterMapFile
{
    public const string FileName = "cluster.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Loads the map from <paramref name="directory"/>, or creates, persists and returns the bootstrap map.</summary>
    public static (ClusterMap Map, bool Created, IReadOnlyList<string> Ignored) LoadOrCreate(string directory, ClusterMap bootstrap)
    {
        var path = Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            var stored = JsonSerializer.Deserialize<ClusterMap>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"{path} is empty or not a cluster map; restore it from another node's data folder or wipe this node's data folder");
            return (stored, false, Differences(stored, bootstrap));
        }

        Directory.CreateDirectory(directory);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, bootstrap, Json);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        return (bootstrap, true, []);
    }

    private static List<string> Differences(ClusterMap stored, ClusterMap flags)
    {
        var ignored = new List<string>();
        if (stored.ShardCount != flags.ShardCount)
        {
            ignored.Add($"--shards {flags.ShardCount} (the cluster has {stored.ShardCount})");
        }

        if (stored.Replication != flags.Replication)
        {
            ignored.Add($"--replication {flags.Replication} (the cluster has {stored.Replication})");
        }

        if (!stored.Nodes.Select(n => (n.Id, n.PeerAddress)).SequenceEqual(flags.Nodes.Select(n => (n.Id, n.PeerAddress))))
        {
            ignored.Add("--peers (the cluster's members are taken from " + FileName + ")");
        }

        return ignored;
    }
}
