namespace RaftLedger.Raft;

/// <summary>The kinds of messages Raft nodes exchange. The numeric values are part of the wire format.</summary>
public enum MessageType : byte
{
    /// <summary>Leader → follower: entries after (Index, LogTerm), and the leader's commit index.</summary>
    Append = 1,

    /// <summary>Follower → leader: accepted up to Index, or (Reject) a hint where the logs diverge.</summary>
    AppendResponse = 2,

    /// <summary>Leader → follower: keeps followers from campaigning; carries commit and read-index context.</summary>
    Heartbeat = 3,

    /// <summary>Follower → leader: answers a heartbeat (echoes its Context).</summary>
    HeartbeatResponse = 4,

    /// <summary>Candidate → voter: vote for me in Term; my last log entry is (Index, LogTerm).</summary>
    Vote = 5,

    /// <summary>Voter → candidate: granted unless Reject.</summary>
    VoteResponse = 6,

    /// <summary>Pre-candidate → voter: would you vote for me in Term (= my term + 1)? Changes no state.</summary>
    PreVote = 7,

    /// <summary>Voter → pre-candidate: would grant unless Reject.</summary>
    PreVoteResponse = 8,

    /// <summary>Leader → follower: install the snapshot in <see cref="Message.Snapshot"/> (data streamed by the host).</summary>
    Snapshot = 9,

    /// <summary>Leader → transfer target: campaign now, skipping pre-vote and leases.</summary>
    TimeoutNow = 10,

    /// <summary>Follower → leader: a forwarded read-index request (Context identifies it).</summary>
    ReadIndex = 11,

    /// <summary>Leader → follower: the read index (Index) for the request in Context.</summary>
    ReadIndexResponse = 12,

    /// <summary>Follower → leader: forwarded proposal (Entries without term or index).</summary>
    Propose = 13,

    /// <summary>Follower → leader: please transfer leadership to the node in Index.</summary>
    TransferLeader = 14,
}

/// <summary>
/// One Raft message. Which fields matter depends on <see cref="Type"/> (see <see cref="MessageType"/>).
/// Messages are immutable once built; entry payloads may reference a receive buffer, so a host that
/// reuses buffers must copy before Step returns.
/// </summary>
public sealed record Message
{
    /// <summary>What this message is.</summary>
    public required MessageType Type { get; init; }

    /// <summary>Sender node id.</summary>
    public required ulong From { get; init; }

    /// <summary>Receiver node id.</summary>
    public required ulong To { get; init; }

    /// <summary>Sender's term (0 for forwarded Propose/ReadIndex/TransferLeader, which are term-less).</summary>
    public ulong Term { get; init; }

    /// <summary>Append: term of the entry at Index. Vote: last log term. Reject: term at RejectHint.</summary>
    public ulong LogTerm { get; init; }

    /// <summary>Append: index before Entries. Response: match index (or rejected index). Vote: last log index.</summary>
    public ulong Index { get; init; }

    /// <summary>Leader's commit index (Append, Heartbeat).</summary>
    public ulong Commit { get; init; }

    /// <summary>Response refuses the request.</summary>
    public bool Reject { get; init; }

    /// <summary>
    /// Rejected append from a follower that lost its durable state and is rejoining (<see cref="RaftConfig.Rejoining"/>):
    /// what it acknowledged before is gone, so the leader's match index for it no longer holds.
    /// </summary>
    public bool LostState { get; init; }

    /// <summary>Rejected append: the follower's guess of the last index that may match.</summary>
    public ulong RejectHint { get; init; }

    /// <summary>Vote/PreVote/TimeoutNow sent for a leadership transfer: overrides leader leases.</summary>
    public bool Transfer { get; init; }

    /// <summary>Entries to append (Append) or to propose (Propose).</summary>
    public IReadOnlyList<Entry> Entries { get; init; } = [];

    /// <summary>Opaque request context (read index requests and the heartbeats that confirm them).</summary>
    public ReadOnlyMemory<byte> Context { get; init; }

    /// <summary>Snapshot message: what to install.</summary>
    public SnapshotMetadata? Snapshot { get; init; }

    /// <summary>True for responses (these carry no requests).</summary>
    public bool IsResponse => Type is MessageType.AppendResponse or MessageType.HeartbeatResponse or
        MessageType.VoteResponse or MessageType.PreVoteResponse or MessageType.ReadIndexResponse;
}
