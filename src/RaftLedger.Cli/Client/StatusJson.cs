using System.Globalization;
using System.Text.Json;
using RaftLedger.Node.Api;

namespace RaftLedger.Cli.Client;

/// <summary>Reads /v1/cluster and /v1/node answers back into the API's status records.</summary>
public static class StatusJson
{
    public static ClusterStatus ReadCluster(byte[] bytes)
    {
        using var document = JsonDocument.Parse(bytes);
        var root = document.RootElement;
        var nodes = new List<NodeInfo>();
        foreach (var node in root.GetProperty("nodes").EnumerateArray())
        {
            nodes.Add(new NodeInfo(
                node.GetProperty("id").GetUInt64(),
                node.GetProperty("api").GetString()!,
                node.GetProperty("peer").GetString()!,
                node.GetProperty("up").GetBoolean())
            {
                GrpcAddress = node.TryGetProperty("grpc", out var grpc) ? grpc.GetString() : null,
            });
        }

        var shards = new List<ShardInfo>();
        foreach (var shard in root.GetProperty("shards").EnumerateArray())
        {
            var progress = new List<ReplicaProgress>();
            foreach (var item in shard.GetProperty("progress").EnumerateArray())
            {
                progress.Add(new ReplicaProgress(item.GetProperty("node").GetUInt64(), U64(item, "match_index")));
            }

            shards.Add(new ShardInfo(
                shard.GetProperty("id").GetUInt32(),
                shard.GetProperty("replicas").EnumerateArray().Select(r => r.GetUInt64()).ToArray(),
                shard.GetProperty("leader").GetUInt64(),
                U64(shard, "term"),
                U64(shard, "commit_index"),
                U64(shard, "applied_index"))
            {
                Progress = progress,
            });
        }

        MetaGroupInfo? meta = null;
        if (root.TryGetProperty("meta", out var group))
        {
            meta = new MetaGroupInfo(
                [.. group.GetProperty("members").EnumerateArray().Select(m => m.GetUInt64())],
                group.GetProperty("leader").GetUInt64(),
                U64(group, "term"),
                U64(group, "commit_index"),
                U64(group, "applied_index"));
        }

        return new ClusterStatus(nodes, shards) { Meta = meta };
    }

    public static NodeStatus ReadNode(byte[] bytes)
    {
        using var document = JsonDocument.Parse(bytes);
        var root = document.RootElement;
        var replicas = new List<LocalReplicaStatus>();
        foreach (var replica in root.GetProperty("replicas").EnumerateArray())
        {
            replicas.Add(new LocalReplicaStatus(
                replica.GetProperty("shard").GetUInt32(),
                replica.GetProperty("leader").GetBoolean(),
                U64(replica, "term"),
                U64(replica, "commit_index"),
                U64(replica, "applied_index"),
                replica.TryGetProperty("fingerprint", out var fingerprint)
                    ? UInt128.Parse(fingerprint.GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture)
                    : UInt128.Zero,
                replica.TryGetProperty("cross_shard_unfinished", out var unfinished) ? unfinished.GetInt32() : 0));
        }

        return new NodeStatus(root.GetProperty("id").GetUInt64(), replicas);
    }

    private static ulong U64(JsonElement element, string name) =>
        ulong.Parse(element.GetProperty(name).GetString()!, NumberStyles.None, CultureInfo.InvariantCulture);
}
