using System.Buffers.Binary;
using System.Text;
using RaftLedger.Common;
using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Meta;

/// <summary>What applying one meta entry did.</summary>
public enum MetaApplyStatus : byte
{
    /// <summary>The state changed.</summary>
    Applied = 0,

    /// <summary>A no-op entry, or a command that found the state already as asked (a repeated registration).</summary>
    Unchanged = 1,

    /// <summary>A Bootstrap whose map differs from the one already set (nodes started with different flags); ignored.</summary>
    BootstrapConflict = 2,

    /// <summary>A command that needs a map before Bootstrap was applied, or names a node outside it; ignored.</summary>
    Refused = 3,

    /// <summary>Bytes that are not a well-formed command (another version proposed them); ignored.</summary>
    Malformed = 4,
}

/// <summary>The outcome of applying one entry, with the reason when it was ignored.</summary>
public readonly record struct MetaApplyResult(MetaApplyStatus Status, string Detail = "");

/// <summary>
/// The meta group's state machine (Raft group 0): the cluster map and the index and term of the last entry applied
/// to it. Pure: no IO, no clock. Every entry of the group is applied here in order, no-ops included, so the applied
/// index is the group's. Committed commands that cannot apply (malformed, a second bootstrap with another map, an
/// unknown node) are ignored with a reason the host logs: they are committed, so every replica ignores them alike.
/// </summary>
public sealed class MetaState
{
    private const uint StateMagic = 0x3141_4D52; // "RMA1" little-endian: version 1 of the state encoding.

    // Invariant: Map is null exactly until a Bootstrap command is applied; once set it satisfies Validate.
    private ClusterMap? map;

    // Invariant: AppliedIndex only grows, one entry at a time; AppliedTerm never decreases.
    public MetaState(ClusterMap? map, ulong appliedIndex, ulong appliedTerm)
    {
        Invariant.Check(map is null || Validate(map) is null, "a stored meta state holds a valid map");
        Invariant.Check(appliedIndex > 0 || appliedTerm == 0);
        this.map = map;
        AppliedIndex = appliedIndex;
        AppliedTerm = appliedTerm;
    }

    /// <summary>The cluster map, or null until the first leader's Bootstrap is applied.</summary>
    public ClusterMap? Map => map;

    public ulong AppliedIndex { get; private set; }

    public ulong AppliedTerm { get; private set; }

    /// <summary>
    /// The meta group's voters among <paramref name="nodeIds"/>: the top min(N, 5) by rendezvous weight for group 0
    /// (<see cref="ReplicaPlacer.Weight"/> with shard -1), highest first. Every node computes the same list.
    /// </summary>
    public static ulong[] Voters(IEnumerable<ulong> nodeIds)
    {
        ArgumentNullException.ThrowIfNull(nodeIds);
        var voters = nodeIds.Distinct().OrderByDescending(id => ReplicaPlacer.Weight(-1, id)).ThenBy(id => id).Take(MetaLimits.VotersMax).ToArray();
        Invariant.Check(voters.Length > 0 && !voters.Contains(0UL), "a cluster has at least one node and no node 0");
        return voters;
    }

    /// <summary>Applies the entry at <paramref name="index"/> (empty data: a leader's no-op).</summary>
    public MetaApplyResult Apply(ulong index, ulong term, ReadOnlySpan<byte> data)
    {
        Invariant.Check(index == AppliedIndex + 1, "meta entries are applied in order, each once");
        Invariant.Check(term >= AppliedTerm, "terms of the log never decrease");
        AppliedIndex = index;
        AppliedTerm = term;
        if (data.IsEmpty)
        {
            return new MetaApplyResult(MetaApplyStatus.Unchanged);
        }

        if (!MetaCodec.TryDecode(data, out var command, out var error))
        {
            return new MetaApplyResult(MetaApplyStatus.Malformed, error);
        }

        var result = command!.Kind == MetaCommandKind.Bootstrap ? ApplyBootstrap(command.Map!) : ApplyAddresses(command.Node!);
        Invariant.Check(map is null || result.Status == MetaApplyStatus.Refused || Validate(map) is null);
        return result;
    }

    private MetaApplyResult ApplyBootstrap(ClusterMap proposed)
    {
        if (Validate(proposed) is { } invalid)
        {
            return new MetaApplyResult(MetaApplyStatus.Refused, "bootstrap map refused: " + invalid);
        }

        if (map is not null)
        {
            // Placement is fixed at bootstrap: a second bootstrap must describe the same cluster (addresses may differ:
            // registrations may already have changed them).
            return SamePlacement(map, proposed)
                ? new MetaApplyResult(MetaApplyStatus.Unchanged)
                : new MetaApplyResult(MetaApplyStatus.BootstrapConflict, "a bootstrap map with other members, shards or replicas; the nodes were started with different --peers/--shards/--replication");
        }

        map = proposed;
        return new MetaApplyResult(MetaApplyStatus.Applied);
    }

    private MetaApplyResult ApplyAddresses(ClusterNode node)
    {
        if (map is null || map.Node(node.Id) is not { } current)
        {
            return new MetaApplyResult(MetaApplyStatus.Refused, map is null ? "no cluster map yet" : $"node {node.Id} is not a member");
        }

        if (current == node)
        {
            return new MetaApplyResult(MetaApplyStatus.Unchanged);
        }

        var nodes = map.Nodes.Select(n => n.Id == node.Id ? node : n).ToArray();
        map = map with { Nodes = nodes };
        return new MetaApplyResult(MetaApplyStatus.Applied);
    }

    /// <summary>True when both maps have the same members, shard count, replication and placement (addresses aside).</summary>
    public static bool SamePlacement(ClusterMap a, ClusterMap b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return a.ShardCount == b.ShardCount && a.Replication == b.Replication &&
            a.Nodes.Select(n => n.Id).SequenceEqual(b.Nodes.Select(n => n.Id)) &&
            a.Shards.Count == b.Shards.Count &&
            a.Shards.Zip(b.Shards).All(p => p.First.Shard == p.Second.Shard && p.First.Replicas.SequenceEqual(p.Second.Replicas));
    }

    /// <summary>Why <paramref name="map"/> is not a valid cluster map, or null when it is.</summary>
    public static string? Validate(ClusterMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (map.Nodes.Count == 0 || map.Nodes.Count > MetaLimits.NodesMax || map.ShardCount < 1 || map.ShardCount > MetaLimits.ShardsMax ||
            map.Replication < 1 || map.Replication > Math.Min(map.Nodes.Count, MetaLimits.ReplicationMax) || map.Shards.Count != map.ShardCount)
        {
            return "node count, shard count or replication out of range";
        }

        for (var i = 0; i < map.Nodes.Count; i++)
        {
            var node = map.Nodes[i];
            if (node.Id == 0 || (i > 0 && map.Nodes[i - 1].Id >= node.Id))
            {
                return "node ids must be non-zero and listed in increasing order";
            }

            if (TooLong(node.PeerAddress) || TooLong(node.ApiAddress) || TooLong(node.GrpcAddress))
            {
                return $"an address of node {node.Id} is over {MetaLimits.AddressBytesMax} bytes";
            }
        }

        for (var s = 0; s < map.Shards.Count; s++)
        {
            var replicas = map.Shards[s].Replicas;
            if (map.Shards[s].Shard != s || replicas.Length != map.Replication || replicas.Distinct().Count() != replicas.Length ||
                replicas.Any(r => map.Node(r) is null))
            {
                return $"shard {s} must have {map.Replication} distinct replicas on members";
            }
        }

        return null;
    }

    private static bool TooLong(string address) => Encoding.UTF8.GetByteCount(address) > MetaLimits.AddressBytesMax;

    /// <summary>The state's encoding: what a meta snapshot carries and what members serve to non-members.</summary>
    public byte[] Encode()
    {
        var writer = new MetaCodec.Writer(MetaLimits.StateBytesMax);
        writer.U32(StateMagic);
        writer.U64(AppliedIndex);
        writer.U64(AppliedTerm);
        writer.U8(map is null ? (byte)0 : (byte)1);
        if (map is not null)
        {
            MetaCodec.WriteMap(ref writer, map);
        }

        return writer.ToArray();
    }

    /// <summary>Decodes a state; false with the reason when the bytes are not a well-formed, valid state.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out MetaState? state, out string error)
    {
        state = null;
        var reader = new MetaCodec.Reader(bytes);
        if (bytes.Length > MetaLimits.StateBytesMax || !reader.U32(out var magic) || magic != StateMagic ||
            !reader.U64(out var index) || !reader.U64(out var term) || !reader.U8(out var hasMap) || hasMap > 1 || (index == 0 && term != 0))
        {
            error = "not a meta state of this version (header)";
            return false;
        }

        ClusterMap? map = null;
        if (hasMap == 1 && !MetaCodec.TryReadMap(ref reader, out map, out error))
        {
            return false;
        }

        if (reader.Remaining != 0)
        {
            error = $"{reader.Remaining} bytes after the state";
            return false;
        }

        if (map is not null && Validate(map) is { } invalid)
        {
            error = "invalid map: " + invalid;
            return false;
        }

        state = new MetaState(map, index, term);
        error = "";
        return true;
    }
}
