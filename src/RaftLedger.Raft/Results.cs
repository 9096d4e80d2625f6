namespace RaftLedger.Raft;

/// <summary>Outcome of a request to the core (propose, conf change, read index, transfer).</summary>
public enum ProposalStatus : byte
{
    /// <summary>Appended to the leader's log (or read request registered); see the result's indexes.</summary>
    Accepted = 0,

    /// <summary>This node is a follower and forwarded the request to the leader (LeaderHint).</summary>
    Forwarded = 1,

    /// <summary>This node is not the leader; retry on LeaderHint.</summary>
    NotLeader = 2,

    /// <summary>No leader is known right now (election in progress); retry after a short back-off.</summary>
    NoLeader = 3,

    /// <summary>The leader is handing leadership over; retry shortly (on the new leader).</summary>
    LeadershipTransferInProgress = 4,

    /// <summary>Too many uncommitted bytes (RaftConfig.UncommittedBytesMax); the group is behind, back off.</summary>
    UncommittedLogFull = 5,

    /// <summary>An entry is larger than RaftConfig.MessageBytesMax; split the batch.</summary>
    EntryTooLarge = 6,

    /// <summary>A membership change is still being applied; retry after it is applied.</summary>
    ConfChangePending = 7,

    /// <summary>The membership change is not valid for the current configuration (see Describe).</summary>
    InvalidConfChange = 8,

    /// <summary>The transfer target is not a voter of this group (or is this node).</summary>
    InvalidTransferTarget = 9,

    /// <summary>Nothing to propose: the batch was empty.</summary>
    EmptyProposal = 10,

    /// <summary>Too many read-index requests wait for the new leader's first commit; back off and retry.</summary>
    TooManyPendingReads = 11,
}

/// <summary>
/// The value returned by requests to the core: no exceptions for refusals. When accepted by a leader,
/// the entries got indexes [FirstIndex, LastIndex] in Term, so the caller can match them when applied.
/// </summary>
public readonly record struct ProposalResult(ProposalStatus Status, ulong LeaderHint, ulong Term, ulong FirstIndex, ulong LastIndex)
{
    /// <summary>Why a request was refused, when there is more to say than the status (e.g. an invalid conf change).</summary>
    public string? Detail { get; init; }

    /// <summary>True when the leader appended the entries or registered the request.</summary>
    public bool IsAccepted => Status == ProposalStatus.Accepted;

    internal static ProposalResult Refused(ProposalStatus status, ulong leaderHint) => new(status, leaderHint, 0, 0, 0);

    /// <summary>A sentence for operators and clients saying what happened and what to do.</summary>
    public string Describe() => Status switch
    {
        ProposalStatus.Accepted => $"accepted at indexes {FirstIndex}..{LastIndex} in term {Term}",
        ProposalStatus.Forwarded => $"forwarded to leader {LeaderHint}; watch the applied log for the outcome",
        ProposalStatus.NotLeader => $"this node is not the leader; send the request to node {LeaderHint}",
        ProposalStatus.NoLeader => "no leader is known (an election is running); retry after a short back-off",
        ProposalStatus.LeadershipTransferInProgress => "leadership is being transferred; retry on the new leader shortly",
        ProposalStatus.UncommittedLogFull => "too many proposals are waiting to commit; back off and retry",
        ProposalStatus.EntryTooLarge => "an entry exceeds the maximum message size; split it into smaller entries",
        ProposalStatus.ConfChangePending => "a membership change is still in progress; retry after it is applied",
        ProposalStatus.InvalidConfChange => $"the membership change does not apply to the current configuration: {Detail}",
        ProposalStatus.InvalidTransferTarget => "the transfer target is not a voting member of this group",
        ProposalStatus.EmptyProposal => "the proposal batch was empty; send at least one entry",
        ProposalStatus.TooManyPendingReads => "too many reads wait for the new leader's first commit; retry shortly",
        _ => Status.ToString(),
    };
}

/// <summary>How the host's stream of a snapshot to a follower ended (see <see cref="RaftNode.ReportSnapshot"/>).</summary>
public enum SnapshotStatus : byte
{
    /// <summary>The follower received all chunks and its core got the Snapshot message.</summary>
    Finished = 0,

    /// <summary>The stream broke off; the leader will probe the follower and retry later.</summary>
    Failed = 1,
}

/// <summary>A node's role.</summary>
public enum RaftRole : byte
{
    /// <summary>Follows a leader (or waits for one).</summary>
    Follower = 0,

    /// <summary>Asking for pre-votes; has not changed its term.</summary>
    PreCandidate = 1,

    /// <summary>Asking for votes in a new term.</summary>
    Candidate = 2,

    /// <summary>Leads the group in its term.</summary>
    Leader = 3,
}

/// <summary>Replication state of one peer as seen by the leader.</summary>
public enum ProgressState : byte
{
    /// <summary>Next index unknown: one append at a time until the follower acknowledges.</summary>
    Probe = 0,

    /// <summary>In sync: appends are pipelined up to the in-flight limits.</summary>
    Replicate = 1,

    /// <summary>Behind the leader's first index: waiting for a snapshot to be installed.</summary>
    Snapshot = 2,
}

/// <summary>A confirmed read: once the state machine has applied Index, a read for Context is linearizable.</summary>
public readonly record struct ReadState(ulong Index, ReadOnlyMemory<byte> Context);

/// <summary>Role and leader, for the host to react to leadership changes.</summary>
public readonly record struct SoftState(ulong Leader, RaftRole Role);

/// <summary>The leader's view of one peer (empty in <see cref="RaftStatus"/> on non-leaders).</summary>
public readonly record struct PeerProgress(
    ulong Id, ulong Match, ulong Next, ProgressState State, bool IsLearner, bool RecentActive, int InflightMessages, ulong PendingSnapshot);

/// <summary>A node's state for operators.</summary>
public sealed record RaftStatus(
    ulong Id,
    RaftRole Role,
    ulong Term,
    ulong Vote,
    ulong Leader,
    ulong Commit,
    ulong Applied,
    ulong LastIndex,
    ulong LeadTransferee,
    ConfState ConfState,
    IReadOnlyList<PeerProgress> Progress);
