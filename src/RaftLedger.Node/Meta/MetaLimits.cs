using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Meta;

/// <summary>Limits of the meta group and its encodings, in one place (a test asserts how they relate).</summary>
public static class MetaLimits
{
    /// <summary>Voters of the meta group at most: 5 tolerates two failures; more only slows its commits.</summary>
    public const int VotersMax = 5;

    /// <summary>Nodes in a cluster map at most.</summary>
    public const int NodesMax = 256;

    /// <summary>Shards in a cluster map at most (design: up to 4096).</summary>
    public const int ShardsMax = 4096;

    /// <summary>Bytes of one address (host:port, UTF-8) at most.</summary>
    public const int AddressBytesMax = 256;

    /// <summary>Replicas of one shard at most.</summary>
    public const int ReplicationMax = ReplicaPlacer.ReplicationMax;

    /// <summary>Bytes of one encoded node: id, three addresses with their u16 lengths.</summary>
    public const int NodeBytesMax = 8 + (3 * (2 + AddressBytesMax));

    /// <summary>Bytes of one encoded shard placement: shard, replica count, replica ids.</summary>
    public const int PlacementBytesMax = 4 + 1 + (8 * ReplicationMax);

    /// <summary>Bytes of an encoded cluster map at most: counts, then every node and placement.</summary>
    public const int MapBytesMax = 16 + (NodesMax * NodeBytesMax) + (ShardsMax * PlacementBytesMax);

    /// <summary>Bytes of an encoded meta command at most (a Bootstrap carries a whole map).</summary>
    public const int CommandBytesMax = 1 + MapBytesMax;

    /// <summary>Bytes of an encoded meta state (the group's snapshot and what members serve to other nodes) at most.</summary>
    public const int StateBytesMax = 4 + 8 + 8 + 1 + MapBytesMax;
}
