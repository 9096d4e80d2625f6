using RaftLedger.Common;

namespace RaftLedger.Raft;

// These types are the contract between the Raft core and whatever stores its log (the in-memory
// storage here, the node's write-ahead log in RaftLedger.Storage). Change them only additively.

/// <summary>What an entry's payload means to the host.</summary>
public enum EntryType : byte
{
    /// <summary>Application data (an encoded batch of ledger commands), or empty: the no-op a new leader appends.</summary>
    Normal = 0,

    /// <summary>An encoded membership change (see <see cref="ConfState"/>).</summary>
    ConfChange = 1,
}

/// <summary>One log entry. The payload is opaque to the core.</summary>
public readonly record struct Entry(ulong Term, ulong Index, EntryType Type, ReadOnlyMemory<byte> Data)
{
    /// <summary>Fixed per-entry cost counted against byte budgets besides the payload: term, index, type, length.</summary>
    public const int OverheadBytes = 24;

    /// <summary>Bytes this entry counts for in message, cache and uncommitted-log budgets.</summary>
    public long SizeBytes => OverheadBytes + Data.Length;
}

/// <summary>
/// The state a node must persist before it answers any message that depends on it:
/// its current term, whom it voted for in that term (0 = nobody) and the highest index it knows is committed.
/// </summary>
public readonly record struct HardState(ulong Term, ulong Vote, ulong Commit)
{
    /// <summary>The hard state of a node that has never run.</summary>
    public static HardState Empty => default;

    /// <summary>True for a node that has never voted, seen a term or committed anything.</summary>
    public bool IsEmpty => Term == 0 && Vote == 0 && Commit == 0;
}

/// <summary>
/// Group membership. <see cref="VotersOutgoing"/> is non-empty only in a joint configuration;
/// <see cref="LearnersNext"/> holds voters that become learners when the joint configuration is left.
/// Node ids are never 0.
/// </summary>
public sealed record ConfState(
    IReadOnlyList<ulong> Voters,
    IReadOnlyList<ulong> Learners,
    IReadOnlyList<ulong> VotersOutgoing,
    IReadOnlyList<ulong> LearnersNext,
    bool AutoLeave)
{
    /// <summary>No members: the state of a node before bootstrap or snapshot.</summary>
    public static ConfState Empty { get; } = new([], [], [], [], false);

    /// <summary>A plain (non-joint) configuration of the given voters.</summary>
    public static ConfState OfVoters(params ulong[] voters)
    {
        foreach (var voter in voters)
        {
            Invariant.Check(voter != 0, "node id 0 is reserved for 'none'");
        }

        return new ConfState(voters, [], [], [], false);
    }

    /// <summary>True while the group is in a joint configuration (old and new voters must both agree).</summary>
    public bool IsJoint => VotersOutgoing.Count > 0;

    /// <summary>Compares membership by content; the record's own equality compares list references.</summary>
    public bool SameMembersAs(ConfState other) =>
        Voters.SequenceEqual(other.Voters) && Learners.SequenceEqual(other.Learners) &&
        VotersOutgoing.SequenceEqual(other.VotersOutgoing) && LearnersNext.SequenceEqual(other.LearnersNext) &&
        AutoLeave == other.AutoLeave;
}

/// <summary>
/// Describes a snapshot: it replaces every entry up to and including <see cref="Index"/> (whose term is
/// <see cref="Term"/>) and carries the membership as of that index. The state machine's bytes travel
/// separately, streamed in chunks by the host.
/// </summary>
public sealed record SnapshotMetadata(ulong Index, ulong Term, ConfState ConfState)
{
    /// <summary>No snapshot yet: the log starts at index 1.</summary>
    public static SnapshotMetadata Empty { get; } = new(0, 0, ConfState.Empty);
}

/// <summary>
/// Read access to one group's stable (durable) log, as the Raft core needs it. The host writes to the
/// storage (append after the entries are durable, apply snapshots, compact); the core only reads.
/// Indexes in [FirstIndex, LastIndex] are available; the term of FirstIndex - 1 is the snapshot's term.
/// </summary>
public interface IRaftLogStorage
{
    /// <summary>Hard state as last persisted.</summary>
    HardState HardState { get; }

    /// <summary>Membership as of the last snapshot (the core replays conf-change entries after it).</summary>
    ConfState ConfState { get; }

    /// <summary>Metadata of the latest snapshot, or <see cref="SnapshotMetadata.Empty"/>.</summary>
    SnapshotMetadata Snapshot { get; }

    /// <summary>Index of the first entry still in the log: the snapshot index + 1.</summary>
    ulong FirstIndex { get; }

    /// <summary>Index of the last entry in the log, or the snapshot index when the log is empty.</summary>
    ulong LastIndex { get; }

    /// <summary>
    /// The term of the entry at <paramref name="index"/>. Returns false when the index is compacted
    /// (below FirstIndex - 1) or beyond LastIndex.
    /// </summary>
    bool TryGetTerm(ulong index, out ulong term);

    /// <summary>
    /// Appends to <paramref name="into"/> the entries in [low, high), stopping once their total
    /// <see cref="Entry.SizeBytes"/> would exceed <paramref name="maxBytes"/>, but always at least one
    /// entry when low &lt; high. Requires FirstIndex &lt;= low &lt;= high &lt;= LastIndex + 1.
    /// </summary>
    void GetEntries(ulong low, ulong high, long maxBytes, List<Entry> into);
}
