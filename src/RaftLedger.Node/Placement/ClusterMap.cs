using System.Globalization;
using RaftLedger.Common;
using RaftLedger.Common.Placement;

namespace RaftLedger.Node.Placement;

/// <summary>
/// A member node: its id (never 0), the address peers dial, the REST address clients use, and its gRPC client address
/// ("" when unknown; maps written before it existed read back as "").
/// </summary>
public sealed record ClusterNode(ulong Id, string PeerAddress, string ApiAddress, string GrpcAddress = "");

/// <summary>
/// The cluster map: the nodes, the shard count, the replication factor and every shard's replicas.
/// Raft group ids: group 0 is reserved for the meta group; shard s is group s + 1.
/// </summary>
public sealed record ClusterMap(IReadOnlyList<ClusterNode> Nodes, int ShardCount, int Replication, IReadOnlyList<ShardPlacement> Shards)
{
    /// <summary>The Raft group id reserved for the meta group (the cluster map itself).</summary>
    public const ulong MetaGroupId = 0;

    /// <summary>The deterministic bootstrap map: the same peers, shard count and replication give the same map on every node.</summary>
    public static ClusterMap Bootstrap(IReadOnlyList<ClusterNode> nodes, int shardCount, int replication)
    {
        var ids = nodes.Select(n => n.Id).ToArray();
        var shards = ReplicaPlacer.Place(ids, shardCount, replication);
        var sorted = nodes.OrderBy(n => n.Id).ToArray();
        return new ClusterMap(sorted, shardCount, replication, shards);
    }

    /// <summary>The Raft group that replicates <paramref name="shard"/>.</summary>
    public static ulong GroupOf(int shard)
    {
        Invariant.Check(shard >= 0);
        return (ulong)shard + 1;
    }

    /// <summary>The shard replicated by data group <paramref name="groupId"/> (not the meta group).</summary>
    public static int ShardOfGroup(ulong groupId)
    {
        Invariant.Check(groupId != MetaGroupId);
        return (int)(groupId - 1);
    }

    /// <summary>
    /// How logs and errors name group <paramref name="groupId"/>: "meta group" or "shard S", since operators think in
    /// shards and group ids are off by one from them. An id too large for a shard (only a broken or foreign peer sends
    /// one) is named as received.
    /// </summary>
    public static string DescribeGroup(ulong groupId) => groupId switch
    {
        MetaGroupId => "meta group",
        <= (ulong)int.MaxValue + 1 => string.Create(CultureInfo.InvariantCulture, $"shard {ShardOfGroup(groupId)}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"group {groupId}"),
    };

    /// <summary>The shard owning <paramref name="accountId"/>.</summary>
    public int ShardOf(UInt128 accountId) => ShardRouter.ShardOf(accountId, ShardCount);

    /// <summary>The node with id <paramref name="nodeId"/>, or null when it is not a member.</summary>
    public ClusterNode? Node(ulong nodeId)
    {
        foreach (var node in Nodes)
        {
            if (node.Id == nodeId)
            {
                return node;
            }
        }

        return null;
    }

    /// <summary>The shards that have a replica on <paramref name="nodeId"/>.</summary>
    public IEnumerable<ShardPlacement> ShardsOn(ulong nodeId) => Shards.Where(s => s.Replicas.Contains(nodeId));

    /// <summary>
    /// How <paramref name="other"/> configures the cluster differently from this map (shard count, replication, members
    /// or placement; addresses may differ), phrased as "other where this"; null when the configurations agree.
    /// </summary>
    public string? ConfigurationDifference(ClusterMap other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (ShardCount != other.ShardCount)
        {
            return $"{other.ShardCount} shards where this node runs {ShardCount} (--shards)";
        }

        if (Replication != other.Replication)
        {
            return $"replication {other.Replication} where this node runs {Replication} (--replication)";
        }

        if (!Nodes.Select(n => n.Id).SequenceEqual(other.Nodes.Select(n => n.Id)))
        {
            return $"members {string.Join(",", other.Nodes.Select(n => n.Id))} where this node has {string.Join(",", Nodes.Select(n => n.Id))} (--peers)";
        }

        var moved = Shards.Zip(other.Shards).FirstOrDefault(p => p.First.Shard != p.Second.Shard || !p.First.Replicas.SequenceEqual(p.Second.Replicas));
        return moved.First is null ? null
            : $"shard {moved.Second.Shard} on nodes {string.Join(",", moved.Second.Replicas)} where this node places it on {string.Join(",", moved.First.Replicas)}";
    }

    /// <summary>True when both maps describe the same cluster (the record's own equality compares list references).</summary>
    public bool SameAs(ClusterMap other) =>
        ShardCount == other.ShardCount && Replication == other.Replication &&
        Nodes.SequenceEqual(other.Nodes) &&
        Shards.Count == other.Shards.Count &&
        Shards.Zip(other.Shards).All(p => p.First.Shard == p.Second.Shard && p.First.Replicas.SequenceEqual(p.Second.Replicas));
}
