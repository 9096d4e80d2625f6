using System.Buffers.Binary;

namespace RaftLedger.Raft;

/// <summary>One membership operation. The numeric values are part of the wire format.</summary>
public enum ConfChangeKind : byte
{
    /// <summary>Make the node a voter (promotes a learner).</summary>
    AddVoter = 1,

    /// <summary>Make the node a non-voting learner (demotes a voter).</summary>
    AddLearner = 2,

    /// <summary>Remove the node from the group.</summary>
    RemoveNode = 3,
}

/// <summary>How a change is carried out. The numeric values are part of the wire format.</summary>
public enum ConfChangeTransition : byte
{
    /// <summary>A single voter change is applied directly; more go through a joint configuration left automatically.</summary>
    Auto = 0,

    /// <summary>Always use a joint configuration, left automatically once applied.</summary>
    JointImplicit = 1,

    /// <summary>Always use a joint configuration; the host leaves it with <see cref="ConfChange.LeaveJoint"/>.</summary>
    JointExplicit = 2,
}

/// <summary>A single add/remove of one node.</summary>
public readonly record struct ConfChangeSingle(ConfChangeKind Kind, ulong NodeId);

/// <summary>
/// A membership change, proposed with <see cref="RaftNode.ProposeConfChange"/> and carried in a
/// <see cref="EntryType.ConfChange"/> entry encoded by <see cref="ConfChangeCodec"/>. No changes means
/// "leave the joint configuration".
/// </summary>
public sealed record ConfChange(IReadOnlyList<ConfChangeSingle> Changes, ConfChangeTransition Transition = ConfChangeTransition.Auto)
{
    /// <summary>Leaves a joint configuration.</summary>
    public static ConfChange LeaveJoint { get; } = new([], ConfChangeTransition.Auto);

    /// <summary>True for the empty change that leaves a joint configuration.</summary>
    public bool IsLeaveJoint => Changes.Count == 0;

    /// <summary>Adds (or promotes) one voter.</summary>
    public static ConfChange AddVoter(ulong nodeId) => new([new ConfChangeSingle(ConfChangeKind.AddVoter, nodeId)]);

    /// <summary>Adds one learner.</summary>
    public static ConfChange AddLearner(ulong nodeId) => new([new ConfChangeSingle(ConfChangeKind.AddLearner, nodeId)]);

    /// <summary>Removes one node.</summary>
    public static ConfChange RemoveNode(ulong nodeId) => new([new ConfChangeSingle(ConfChangeKind.RemoveNode, nodeId)]);

    /// <summary>True when the change must go through a joint configuration.</summary>
    internal bool UsesJoint(int votersChanged) => Transition != ConfChangeTransition.Auto || votersChanged > 1;

    /// <summary>True when a joint configuration entered by this change is left without a further proposal.</summary>
    internal bool AutoLeave => Transition != ConfChangeTransition.JointExplicit;

    /// <summary>Compares by content (the record's own equality compares the list reference).</summary>
    public bool SameAs(ConfChange other) => Transition == other.Transition && Changes.SequenceEqual(other.Changes);
}

/// <summary>Binary encoding of <see cref="ConfChange"/> for conf-change entry payloads (version byte first).</summary>
public static class ConfChangeCodec
{
    private const byte Version = 1;

    /// <summary>Upper bound on single changes in one conf change, so decoding is bounded.</summary>
    public const int ChangesMax = 64;

    /// <summary>Encodes <paramref name="change"/> into a new array.</summary>
    public static byte[] Encode(ConfChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (change.Changes.Count > ChangesMax)
        {
            throw new ArgumentException($"a conf change holds at most {ChangesMax} changes; split it", nameof(change));
        }

        var bytes = new byte[3 + (change.Changes.Count * 9)];
        bytes[0] = Version;
        bytes[1] = (byte)change.Transition;
        bytes[2] = (byte)change.Changes.Count;
        for (var i = 0; i < change.Changes.Count; i++)
        {
            var single = change.Changes[i];
            bytes[3 + (i * 9)] = (byte)single.Kind;
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(4 + (i * 9)), single.NodeId);
        }

        return bytes;
    }

    /// <summary>Decodes a conf-change payload; returns false with a reason when the bytes are not a valid encoding.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out ConfChange? change, out string error)
    {
        change = null;
        if (bytes.Length < 3 || bytes[0] != Version)
        {
            error = $"conf change: expected version {Version} and at least 3 bytes, got {bytes.Length} bytes";
            return false;
        }

        var transition = (ConfChangeTransition)bytes[1];
        int count = bytes[2];
        if (transition > ConfChangeTransition.JointExplicit || count > ChangesMax || bytes.Length != 3 + (count * 9))
        {
            error = $"conf change: bad transition {bytes[1]} or count {count} for {bytes.Length} bytes";
            return false;
        }

        var changes = new ConfChangeSingle[count];
        for (var i = 0; i < count; i++)
        {
            var kind = (ConfChangeKind)bytes[3 + (i * 9)];
            var node = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(4 + (i * 9))..]);
            if (kind is < ConfChangeKind.AddVoter or > ConfChangeKind.RemoveNode || node == 0)
            {
                error = $"conf change: bad kind {(byte)kind} or node id {node} in change {i}";
                return false;
            }

            changes[i] = new ConfChangeSingle(kind, node);
        }

        change = new ConfChange(changes, transition);
        error = "";
        return true;
    }

    /// <summary>Decodes a payload that the core itself validated when it was proposed; a failure is a bug.</summary>
    public static ConfChange Decode(ReadOnlySpan<byte> bytes)
    {
        if (!TryDecode(bytes, out var change, out var error))
        {
            throw new FormatException(error);
        }

        return change!;
    }
}
