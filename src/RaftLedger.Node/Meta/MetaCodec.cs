using System.Buffers.Binary;
using System.Text;
using RaftLedger.Common;
using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Meta;

/// <summary>What a meta command asks for; the first byte of its encoding.</summary>
public enum MetaCommandKind : byte
{
    /// <summary>Sets the cluster map when the meta state has none (the first leader proposes the bootstrap map).</summary>
    Bootstrap = 1,

    /// <summary>Sets one member's peer, REST and gRPC addresses (a node registers its own at start).</summary>
    SetNodeAddresses = 2,
}

/// <summary>A decoded meta command: Map for Bootstrap; Node for SetNodeAddresses.</summary>
public sealed record MetaCommand(MetaCommandKind Kind, ClusterMap? Map, ClusterNode? Node)
{
    public static MetaCommand Bootstrap(ClusterMap map) => new(MetaCommandKind.Bootstrap, map, null);

    public static MetaCommand SetNodeAddresses(ClusterNode node) => new(MetaCommandKind.SetNodeAddresses, null, node);
}

/// <summary>
/// Compact little-endian encodings of meta commands and of cluster maps. Decoding never trusts a length: every read
/// is bounds-checked against the input and the limits in <see cref="MetaLimits"/>, and a malformed input is refused
/// with the reason (a value, not an exception), since it may come from a peer running another version.
/// </summary>
public static class MetaCodec
{
    public static byte[] Encode(MetaCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var writer = new Writer(MetaLimits.CommandBytesMax);
        writer.U8((byte)command.Kind);
        switch (command.Kind)
        {
            case MetaCommandKind.Bootstrap:
                Invariant.Check(command.Map is not null);
                WriteMap(ref writer, command.Map!);
                break;
            case MetaCommandKind.SetNodeAddresses:
                Invariant.Check(command.Node is not null);
                WriteNode(ref writer, command.Node!);
                break;
            default:
                Invariant.Check(false, "every command kind is encoded");
                break;
        }

        return writer.ToArray();
    }

    /// <summary>Decodes a command; false with the reason when the bytes are not a well-formed command.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out MetaCommand? command, out string error)
    {
        command = null;
        var reader = new Reader(bytes);
        if (bytes.Length > MetaLimits.CommandBytesMax || !reader.U8(out var kind))
        {
            error = $"a meta command has 1..{MetaLimits.CommandBytesMax} bytes, not {bytes.Length}";
            return false;
        }

        ClusterMap? map = null;
        ClusterNode? node = null;
        var read = (MetaCommandKind)kind switch
        {
            MetaCommandKind.Bootstrap => TryReadMap(ref reader, out map, out error),
            MetaCommandKind.SetNodeAddresses => TryReadNode(ref reader, out node, out error),
            _ => Unknown(kind, out error),
        };
        if (!read)
        {
            return false;
        }

        command = map is not null ? MetaCommand.Bootstrap(map) : MetaCommand.SetNodeAddresses(node!);

        error = reader.Remaining == 0 ? "" : $"{reader.Remaining} bytes after the command";
        command = reader.Remaining == 0 ? command : null;
        return command is not null;
    }

    private static bool Unknown(byte kind, out string error)
    {
        error = $"unknown meta command kind {kind}";
        return false;
    }

    internal static void WriteMap(ref Writer writer, ClusterMap map)
    {
        Invariant.Check(map.Nodes.Count <= MetaLimits.NodesMax && map.Shards.Count <= MetaLimits.ShardsMax);
        writer.U32((uint)map.ShardCount);
        writer.U32((uint)map.Replication);
        writer.U32((uint)map.Nodes.Count);
        foreach (var node in map.Nodes)
        {
            WriteNode(ref writer, node);
        }

        writer.U32((uint)map.Shards.Count);
        foreach (var placement in map.Shards)
        {
            Invariant.Check(placement.Replicas.Length <= MetaLimits.ReplicationMax);
            writer.U32((uint)placement.Shard);
            writer.U8((byte)placement.Replicas.Length);
            foreach (var replica in placement.Replicas)
            {
                writer.U64(replica);
            }
        }
    }

    internal static bool TryReadMap(ref Reader reader, out ClusterMap? map, out string error)
    {
        map = null;
        if (!reader.U32(out var shardCount) || !reader.U32(out var replication) || !reader.U32(out var nodeCount) ||
            shardCount > MetaLimits.ShardsMax || replication > MetaLimits.ReplicationMax || nodeCount > MetaLimits.NodesMax)
        {
            error = "a cluster map's counts are missing or over the limits";
            return false;
        }

        var nodes = new ClusterNode[nodeCount];
        for (var i = 0; i < nodes.Length; i++)
        {
            if (!TryReadNode(ref reader, out var node, out error))
            {
                return false;
            }

            nodes[i] = node!;
        }

        if (!reader.U32(out var placementCount) || placementCount != shardCount)
        {
            error = "a cluster map must place exactly its shard count of shards";
            return false;
        }

        var shards = new ShardPlacement[placementCount];
        for (var i = 0; i < shards.Length; i++)
        {
            if (!reader.U32(out var shard) || !reader.U8(out var count) || count > MetaLimits.ReplicationMax)
            {
                error = "a shard placement is truncated or has too many replicas";
                return false;
            }

            var replicas = new ulong[count];
            for (var r = 0; r < replicas.Length; r++)
            {
                if (!reader.U64(out replicas[r]))
                {
                    error = "a shard placement is truncated";
                    return false;
                }
            }

            shards[i] = new ShardPlacement((int)shard, replicas);
        }

        map = new ClusterMap(nodes, (int)shardCount, (int)replication, shards);
        error = "";
        return true;
    }

    private static void WriteNode(ref Writer writer, ClusterNode node)
    {
        writer.U64(node.Id);
        writer.Text(node.PeerAddress);
        writer.Text(node.ApiAddress);
        writer.Text(node.GrpcAddress);
    }

    private static bool TryReadNode(ref Reader reader, out ClusterNode? node, out string error)
    {
        node = null;
        if (!reader.U64(out var id) || !reader.Text(out var peer) || !reader.Text(out var api) || !reader.Text(out var grpc))
        {
            error = "a node entry is truncated or an address is over the limit";
            return false;
        }

        node = new ClusterNode(id, peer, api, grpc);
        error = "";
        return true;
    }

    /// <summary>Appends little-endian values to a buffer of at most the given size.</summary>
    internal ref struct Writer(int bytesMax)
    {
        private byte[] buffer = new byte[Math.Min(bytesMax, 256)];
        private int length;

        public void U8(byte value) => Take(1)[0] = value;

        public void U32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), value);

        public void U64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), value);

        public void Text(string value)
        {
            var count = Encoding.UTF8.GetByteCount(value);
            Invariant.Check(count <= MetaLimits.AddressBytesMax, "addresses are validated before they are encoded");
            BinaryPrimitives.WriteUInt16LittleEndian(Take(2), (ushort)count);
            Encoding.UTF8.GetBytes(value, Take(count));
        }

        public readonly byte[] ToArray() => buffer.AsSpan(0, length).ToArray();

        private Span<byte> Take(int count)
        {
            Invariant.Check(length + count <= bytesMax, "an encoding stays within its limit");
            if (length + count > buffer.Length)
            {
                Array.Resize(ref buffer, Math.Min(bytesMax, Math.Max(buffer.Length * 2, length + count)));
            }

            var span = buffer.AsSpan(length, count);
            length += count;
            return span;
        }
    }

    /// <summary>Reads little-endian values; every read checks the bytes remaining first.</summary>
    internal ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> bytes = bytes;
        private int offset;

        public readonly int Remaining => bytes.Length - offset;

        public bool U8(out byte value)
        {
            value = Remaining >= 1 ? bytes[offset] : (byte)0;
            return Advance(1);
        }

        public bool U32(out uint value)
        {
            value = Remaining >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(bytes[offset..]) : 0;
            return Advance(4);
        }

        public bool U64(out ulong value)
        {
            value = Remaining >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(bytes[offset..]) : 0;
            return Advance(8);
        }

        public bool Text(out string value)
        {
            value = "";
            if (Remaining < 2)
            {
                return false;
            }

            var count = BinaryPrimitives.ReadUInt16LittleEndian(bytes[offset..]);
            if (count > MetaLimits.AddressBytesMax || Remaining < 2 + count)
            {
                return false;
            }

            try
            {
                value = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes.Slice(offset + 2, count));
            }
            catch (DecoderFallbackException)
            {
                return false;
            }

            return Advance(2 + count);
        }

        private bool Advance(int count)
        {
            if (Remaining < count)
            {
                offset = bytes.Length;
                return false;
            }

            offset += count;
            return true;
        }
    }
}
