using System.Text.Json;
using RaftLedger.Node.Meta;
using RaftLedger.Node.Placement;
using RaftLedger.Storage;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Node.Host;

/// <summary>
/// The node's persisted copy of the meta state: the cluster map, the meta group's applied index and term, and whether
/// the map is the meta group's (a Bootstrap was applied) or still this node's own bootstrap computation. Written
/// at first start, then atomically (temporary file, fsync, rename, directory fsync) after every meta apply, so a
/// restart resumes the meta state machine after the applied index and the meta log can be compacted up to it.
/// A later start takes the cluster's configuration from here; flags that disagree are reported and ignored, so a
/// restarted node never re-places shards because someone changed --shards.
/// </summary>
internal static class ClusterMapFile
{
    public const string FileName = "cluster.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>
    /// Loads the stored map and meta state from <paramref name="directory"/>, or creates and persists the bootstrap map
    /// (meta state empty). Files written before the meta group existed read back as an empty meta state.
    /// </summary>
    public static (ClusterMap Map, MetaState Meta, bool Created, IReadOnlyList<string> Ignored) LoadOrCreate(string directory, ClusterMap bootstrap)
    {
        var path = Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            var stored = Read(path);
            var map = new ClusterMap(stored.Nodes, stored.ShardCount, stored.Replication, stored.Shards);
            if (MetaState.Validate(map) is { } invalid)
            {
                throw new InvalidDataException($"{path} holds an invalid cluster map ({invalid}); {Remedy}");
            }

            var meta = new MetaState(stored.MetaBootstrapped ? map : null, stored.MetaAppliedIndex, stored.MetaAppliedTerm);
            var local = stored.LocalPeerAddresses is { } peers
                ? map with { Nodes = [.. map.Nodes.Select(n => n with { PeerAddress = peers.GetValueOrDefault(n.Id, n.PeerAddress) })] }
                : map;
            return (local, meta, false, Differences(local, bootstrap));
        }

        var empty = new MetaState(null, 0, 0);
        Save(directory, bootstrap, empty);
        return (bootstrap, empty, true, []);
    }

    /// <summary>The members (ids and addresses) of the map stored in <paramref name="directory"/>; null when it holds none.</summary>
    public static IReadOnlyList<ClusterNode>? TryReadNodes(string directory)
    {
        var path = Path.Combine(directory, FileName);
        return File.Exists(path) ? Read(path).Nodes : null;
    }

    private const string Remedy = "restore it from another node's data folder (any member's copy), or: " + RecoveryAdvice.WipeAndRejoin;

    private static StoredMeta Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<StoredMeta>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"{path} is empty or not a cluster map; {Remedy}");
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"{path} is not a readable cluster map ({exception.Message}); {Remedy}", exception);
        }
    }

    /// <summary>
    /// Persists <paramref name="meta"/> (its map, or <paramref name="localMap"/> while it has none) atomically and
    /// durably, with the peer addresses of <paramref name="localMap"/>: the ones this node dials.
    /// </summary>
    public static void Save(string directory, ClusterMap localMap, MetaState meta)
    {
        var map = meta.Map ?? localMap;
        var stored = new StoredMeta(map.Nodes, map.ShardCount, map.Replication, map.Shards, meta.AppliedIndex, meta.AppliedTerm, meta.Map is not null,
            localMap.Nodes.ToDictionary(n => n.Id, n => n.PeerAddress));
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, stored, Json);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        WalFiles.SyncDirectory(directory); // The rename itself must survive a crash before the log is compacted past it.
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

    /// <summary>
    /// The file's shape: the map's fields (as before the meta group), the meta state's position, and the peer addresses
    /// this node was founded with (its own --peers; they may differ per node, e.g. through verify's fault proxies).
    /// </summary>
    private sealed record StoredMeta(
        IReadOnlyList<ClusterNode> Nodes,
        int ShardCount,
        int Replication,
        IReadOnlyList<ShardPlacement> Shards,
        ulong MetaAppliedIndex = 0,
        ulong MetaAppliedTerm = 0,
        bool MetaBootstrapped = false,
        IReadOnlyDictionary<ulong, string>? LocalPeerAddresses = null);
}

/// <summary>What a node's data folder records about its cluster, for tools that restart local clusters.</summary>
public static class StoredClusterMap
{
    /// <summary>The members (ids and addresses) of the cluster map in the node data folder <paramref name="directory"/>; null when it holds none.</summary>
    public static IReadOnlyList<ClusterNode>? ReadNodes(string directory) => ClusterMapFile.TryReadNodes(directory);
}
