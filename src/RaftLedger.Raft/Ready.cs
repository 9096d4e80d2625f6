namespace RaftLedger.Raft;

/// <summary>
/// Everything the core wants the host to do, handed out by <see cref="RaftNode.GetReady()"/>.
/// <para><b>The contract</b>, in this order:</para>
/// <list type="number">
/// <item><b>Persist</b> <see cref="Snapshot"/> (state-machine data and <c>ApplySnapshot</c> on the log storage),
/// then <see cref="Entries"/> (append; they may overwrite a suffix of the stored log), then <see cref="HardState"/>,
/// and make them durable (fsync) when <see cref="MustSync"/>.</item>
/// <item><b>Send</b> <see cref="Messages"/> only after step 1 is durable: a vote, an append acknowledgement or a
/// term change promises that the state behind it survives a crash. The one exception is
/// <see cref="MessagesMaySendBeforePersist"/>: a leader that did not change its term or vote in this Ready may
/// send its messages (appends to followers) while it persists its own entries, as the Raft thesis §10.2.1
/// allows, because the core counts the leader's own entries towards the commit quorum only once the host says
/// they are durable by calling <see cref="RaftNode.Advance"/>.</item>
/// <item><b>Apply</b> <see cref="CommittedEntries"/> to the state machine in order (they are already durable on
/// this node, so applying may run in parallel with step 1), and complete <see cref="ReadStates"/> once the
/// applied index reaches each one's Index.</item>
/// <item>Call <see cref="RaftNode.Advance"/> with this Ready: it marks the entries durable (the leader then counts
/// itself), the snapshot installed, and the committed entries applied (membership changes among them take
/// effect then). Call GetReady again only after Advance.</item>
/// </list>
/// </summary>
public sealed class Ready
{
    internal Ready(
        SoftState softState,
        HardState? hardState,
        IReadOnlyList<Entry> entries,
        SnapshotMetadata? snapshot,
        IReadOnlyList<Entry> committedEntries,
        IReadOnlyList<Message> messages,
        IReadOnlyList<ReadState> readStates,
        bool messagesMaySendBeforePersist)
    {
        SoftState = softState;
        HardState = hardState;
        Entries = entries;
        Snapshot = snapshot;
        CommittedEntries = committedEntries;
        Messages = messages;
        ReadStates = readStates;
        MessagesMaySendBeforePersist = messagesMaySendBeforePersist;
    }

    /// <summary>Current leader and role (always set; compare with the previous one to see changes).</summary>
    public SoftState SoftState { get; }

    /// <summary>The hard state to persist, or null when it did not change since the last Ready.</summary>
    public HardState? HardState { get; }

    /// <summary>Entries to append to stable storage (contiguous, ascending), before sending messages.</summary>
    public IReadOnlyList<Entry> Entries { get; }

    /// <summary>A snapshot received from the leader to install, or null.</summary>
    public SnapshotMetadata? Snapshot { get; }

    /// <summary>Entries committed by the group and durable here, to apply in order.</summary>
    public IReadOnlyList<Entry> CommittedEntries { get; }

    /// <summary>Messages to send after persisting (see the class contract).</summary>
    public IReadOnlyList<Message> Messages { get; }

    /// <summary>Confirmed read indexes for this node's ReadIndex requests.</summary>
    public IReadOnlyList<ReadState> ReadStates { get; }

    /// <summary>
    /// True when the messages may be sent before (in parallel with) persisting this Ready: only for a leader whose
    /// term and vote are unchanged and that has no snapshot to install (thesis §10.2.1).
    /// </summary>
    public bool MessagesMaySendBeforePersist { get; }

    /// <summary>
    /// True when persisting must be durable (fsync): entries were added or term/vote changed. A Ready that only moved
    /// the commit index may be written late or not at all: a restarted core takes the commit index from
    /// <see cref="RaftConfig.Applied"/> when that is higher, and learns the rest from the leader.
    /// </summary>
    public bool MustSync { get; internal init; }
}
