using RaftLedger.Common;

namespace RaftLedger.Raft;

/// <summary>
/// One Raft group member as a pure state machine (in the spirit of etcd's RawNode). Inputs are
/// <see cref="Step"/> (a message from a peer), <see cref="Tick"/> (logical time) and requests
/// (<see cref="Propose(IReadOnlyList{ReadOnlyMemory{byte}})"/>, <see cref="ReadIndex"/>, ...); the output is a
/// <see cref="Ready"/> that the host persists, sends and applies before calling <see cref="Advance"/>.
/// No IO, clock, threads or ambient randomness: the same inputs and seed give the same outputs.
/// Not thread-safe: one owner drives it.
/// </summary>
public sealed partial class RaftNode
{
    /// <summary>Read-index requests queued until a new leader commits in its term.</summary>
    public const int PendingReadsMax = 4096;

    private readonly RaftConfig _config;

    // See RaftConfig.Rejoining; cleared for good by EndRejoinIfCaughtUp.
    private bool _rejoining;
    private readonly IRaftLogStorage _storage;
    private readonly DeterministicRandom _random;
    private readonly RaftLog _log;
    private readonly ProgressTracker _tracker;
    private readonly ReadIndexQueue _reads = new();
    private readonly List<(ulong From, ReadOnlyMemory<byte> Context)> _readsAwaitingCommit = [];
    private List<Message> _messages = [];
    private List<ReadState> _readStates = [];

    // Invariant: _vote is 0 or a node this node voted for in _term; _term never decreases.
    private ulong _term;
    private ulong _vote;
    private ulong _lead;
    private RaftRole _role;

    // Invariant: _electionElapsed < _randomizedElectionTimeoutTicks unless an election is about to start.
    private int _electionElapsed;
    private int _heartbeatElapsed;
    private int _randomizedElectionTimeoutTicks;

    // Leader only: the transfer target (0 = none), the last conf-change index not yet applied, and bytes of
    // entries proposed in this term that are not yet applied (bounded by UncommittedBytesMax).
    private ulong _leadTransferee;
    private ulong _pendingConfIndex;
    private long _uncommittedBytes;
    private ulong _termStartIndex;

    private HardState _prevHardState;
    private SoftState _prevSoftState;
    private Ready? _outstandingReady;

    /// <summary>
    /// Restores a node from <paramref name="storage"/> (empty for a new node: call <see cref="Bootstrap"/> on the
    /// founding members, leave joiners empty). Throws <see cref="ArgumentException"/> for invalid options.
    /// </summary>
    public RaftNode(RaftConfig config, IRaftLogStorage storage, DeterministicRandom random)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(random);
        config.Validate();
        _config = config;
        _rejoining = config.Rejoining;
        _storage = storage;
        _random = random;
        _log = new RaftLog(storage, config.Applied);
        _tracker = new ProgressTracker(config.InflightMessagesMax, config.InflightBytesMax);
        _tracker.SetConfig(Membership.From(storage.ConfState), _log.LastIndex + 1);
        ReplayAppliedConfChanges();
        var hardState = storage.HardState;
        _term = hardState.Term;
        _vote = hardState.Vote;
        _prevHardState = hardState;
        BecomeFollower(_term, 0);
        _prevSoftState = new SoftState(0, RaftRole.Follower);
    }

    /// <summary>This node's id.</summary>
    public ulong Id => _config.Id;

    /// <summary>Current role.</summary>
    public RaftRole Role => _role;

    /// <summary>Still rejoining after a wipe (<see cref="RaftConfig.Rejoining"/>): no votes, no campaigns.</summary>
    public bool IsRejoining => _rejoining;

    /// <summary>Current term.</summary>
    public ulong Term => _term;

    /// <summary>The leader this node knows of in its term, or 0.</summary>
    public ulong Leader => _lead;

    /// <summary>Highest index known committed.</summary>
    public ulong CommitIndex => _log.Committed;

    /// <summary>Highest index applied (as reported through Advance).</summary>
    public ulong AppliedIndex => _log.Applied;

    /// <summary>Index of the last entry in the log (durable or not).</summary>
    public ulong LastIndex => _log.LastIndex;

    /// <summary>Membership as of the applied index (use it when taking a snapshot at that index).</summary>
    public ConfState ConfState => _tracker.Config.ToConfState();

    /// <summary>
    /// Writes the founding membership of a brand-new group into this node's (empty) log: one AddVoter entry per
    /// voter at term 1, already committed. Every founding member must bootstrap with the same voters; nodes that
    /// join later start empty and learn the membership from the leader.
    /// </summary>
    public void Bootstrap(IReadOnlyList<ulong> voters)
    {
        ArgumentNullException.ThrowIfNull(voters);
        if (_log.LastIndex != 0 || _term != 0 || voters.Count == 0)
        {
            throw new InvalidOperationException(
                "Bootstrap needs an empty log and at least one voter; a node with state restarts from its storage instead.");
        }

        var sorted = voters.ToArray();
        Array.Sort(sorted);
        var entries = new Entry[sorted.Length];
        for (var i = 0; i < sorted.Length; i++)
        {
            Invariant.Check(sorted[i] != 0 && (i == 0 || sorted[i] != sorted[i - 1]), "voter ids must be distinct and non-zero");
            entries[i] = new Entry(1, (ulong)i + 1, EntryType.ConfChange, ConfChangeCodec.Encode(ConfChange.AddVoter(sorted[i])));
        }

        BecomeFollower(1, 0);
        _log.Append(entries, 0);
        _log.CommitTo((ulong)entries.Length);
        foreach (var entry in entries)
        {
            ApplyConfChangeEntry(entry);
        }
    }

    /// <summary>Advances logical time by one tick: followers may campaign, leaders send heartbeats and check quorum.</summary>
    public void Tick()
    {
        if (_role == RaftRole.Leader)
        {
            TickLeader();
        }
        else
        {
            TickElection();
        }
    }

    /// <summary>Starts an election now (as if the election timeout elapsed), if this node may campaign.</summary>
    public void Campaign() => StartElection();

    /// <summary>
    /// Follower only: forgets the current leader because the host has evidence that it is gone (its connection was
    /// refused or reset). The follower then no longer honours the leader's lease, so it grants pre-votes and votes
    /// to an up-to-date candidate at once instead of after an election timeout; pair it with <see cref="Campaign"/>
    /// on one survivor for a fast failover. Safe under pre-vote + check-quorum: a candidate still needs a quorum,
    /// and followers that still hear the leader keep refusing, so one confused follower cannot depose a live leader.
    /// Ignored (returns false) on leaders and candidates, when no leader is known, and with
    /// <see cref="ReadOnlyMode.LeaseBased"/> reads, whose safety rests on followers honouring the lease.
    /// A later message from the leader restores it as usual.
    /// </summary>
    public bool ForgetLeader()
    {
        if (_role != RaftRole.Follower || _lead == 0 || _config.ReadOnlyMode == ReadOnlyMode.LeaseBased)
        {
            return false;
        }

        Invariant.Check(_lead != Id, "a follower never names itself as leader");
        _lead = 0;
        return true;
    }

    /// <summary>Processes a message from a peer. Messages addressed to another node are a host bug.</summary>
    public void Step(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.To != Id || message.From == Id || message.From == 0)
        {
            throw new ArgumentException($"message {message.Type} from {message.From} to {message.To} delivered to node {Id}", nameof(message));
        }

        if (IsTermless(message.Type))
        {
            StepForwarded(message);
            return;
        }

        if (message.Term > _term && !StepHigherTerm(message))
        {
            return;
        }

        if (message.Term < _term)
        {
            StepLowerTerm(message);
            return;
        }

        if (message.Type is MessageType.Vote or MessageType.PreVote)
        {
            HandleVoteRequest(message);
            return;
        }

        switch (_role)
        {
            case RaftRole.Leader:
                StepLeader(message);
                break;
            case RaftRole.Follower:
                StepFollower(message);
                break;
            default:
                StepCandidate(message);
                break;
        }
    }

    /// <summary>Proposes one entry (see <see cref="Propose(IReadOnlyList{ReadOnlyMemory{byte}})"/>).</summary>
    public ProposalResult Propose(ReadOnlyMemory<byte> payload) => Propose([payload]);

    /// <summary>
    /// Proposes a batch of application entries. On the leader they are appended at consecutive indexes (see the
    /// result); a follower forwards them or refuses with a leader hint (RaftConfig.ProposalForwarding). Refusals
    /// are values, never exceptions. Accepted entries may still be lost if leadership changes before they commit.
    /// </summary>
    public ProposalResult Propose(IReadOnlyList<ReadOnlyMemory<byte>> payloads)
    {
        ArgumentNullException.ThrowIfNull(payloads);
        if (payloads.Count == 0)
        {
            return ProposalResult.Refused(ProposalStatus.EmptyProposal, _lead);
        }

        var entries = new Entry[payloads.Count];
        for (var i = 0; i < payloads.Count; i++)
        {
            entries[i] = new Entry(0, 0, EntryType.Normal, payloads[i]);
        }

        return _role == RaftRole.Leader ? AppendProposal(entries) : ForwardProposal(entries);
    }

    /// <summary>
    /// Proposes a membership change. Only one may be in flight: refused with ConfChangePending until the previous
    /// one is applied, and with InvalidConfChange (see Detail) when it does not apply to the current membership.
    /// </summary>
    public ProposalResult ProposeConfChange(ConfChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        Entry[] entries = [new Entry(0, 0, EntryType.ConfChange, ConfChangeCodec.Encode(change))];
        if (_role != RaftRole.Leader)
        {
            return ForwardProposal(entries);
        }

        var check = CheckConfChange(change);
        return check.Status != ProposalStatus.Accepted ? check : AppendProposal(entries);
    }

    /// <summary>
    /// Asks for a linearizable read point. The answer arrives as a <see cref="ReadState"/> with the same context in
    /// a later Ready: once this node has applied ReadState.Index, reading the state machine is linearizable.
    /// Followers forward the request to the leader. Contexts must be unique among outstanding requests.
    /// </summary>
    public ProposalResult ReadIndex(ReadOnlyMemory<byte> context)
    {
        if (_role == RaftRole.Leader)
        {
            return HandleReadIndexRequest(Id, context);
        }

        if (_lead == 0)
        {
            return ProposalResult.Refused(ProposalStatus.NoLeader, 0);
        }

        Send(new Message { Type = MessageType.ReadIndex, From = Id, To = _lead, Context = context });
        return ProposalResult.Refused(ProposalStatus.Forwarded, _lead);
    }

    /// <summary>
    /// Hands leadership to voter <paramref name="to"/>: the leader stops accepting proposals, catches the target
    /// up, then tells it to campaign at once (TimeoutNow). Aborted after an election timeout. Followers forward.
    /// </summary>
    public ProposalResult TransferLeadership(ulong to)
    {
        if (_role == RaftRole.Leader)
        {
            return StartTransfer(to);
        }

        if (_lead == 0)
        {
            return ProposalResult.Refused(ProposalStatus.NoLeader, 0);
        }

        Send(new Message { Type = MessageType.TransferLeader, From = Id, To = _lead, Index = to });
        return ProposalResult.Refused(ProposalStatus.Forwarded, _lead);
    }

    /// <summary>
    /// Leader only: the host's stream of the snapshot in a Snapshot message to <paramref name="to"/> ended. On
    /// Finished the leader waits for the follower's acknowledgement, on Failed it probes and retries later.
    /// Until this is called the leader sends that follower nothing but heartbeats.
    /// </summary>
    public void ReportSnapshot(ulong to, SnapshotStatus status)
    {
        var pr = _role == RaftRole.Leader ? _tracker.Get(to) : null;
        if (pr is null || pr.State != ProgressState.Snapshot)
        {
            return;
        }

        if (status == SnapshotStatus.Failed)
        {
            pr.SnapshotFailed();
        }
        else
        {
            pr.BecomeProbe();
        }

        // Wait for the follower's answer (or a heartbeat response) before sending more.
        pr.ProbeSent = true;
    }

    /// <summary>Leader only: the host could not deliver to <paramref name="to"/>; stop pipelining to it and probe.</summary>
    public void ReportUnreachable(ulong to)
    {
        var pr = _role == RaftRole.Leader ? _tracker.Get(to) : null;
        if (pr is not null && pr.State == ProgressState.Replicate)
        {
            pr.BecomeProbe();
        }
    }

    /// <summary>
    /// Leader only (0 otherwise): how many committed entries the replica furthest behind lacks, i.e. the commit index
    /// minus the smallest position of the other members. For operators' metrics; allocates nothing.
    /// A replica that has not acknowledged an append since this node took office (<see cref="Progress.MatchKnown"/>
    /// false) has no known match yet, only the 0 every follower starts from; counting that as "lacks the whole log" made
    /// every election look like a huge lag for a round trip. Such a replica counts as holding this leader's log up to
    /// the start of its term (the entries before <c>_termStartIndex</c>): it lacks at least the committed entries of
    /// this term, which it has not acknowledged. So a live replica shows about 1 until it answers, then its real lag,
    /// and a replica that stays silent (down, partitioned) shows a lag that grows with every commit since the
    /// election. The cost: a replica that was already behind when the term began is under-counted until it acknowledges
    /// an append (one round trip when it is alive).
    /// </summary>
    public ulong ReplicaLag()
    {
        if (_role != RaftRole.Leader)
        {
            return 0;
        }

        Invariant.Check(_termStartIndex >= 1, "a leader appended its term's first entry");
        var lag = 0UL;
        foreach (var id in _tracker.Nodes)
        {
            var pr = _tracker.Get(id)!;
            var held = id == Id ? _log.Committed : pr.MatchKnown ? pr.Match : _termStartIndex - 1;
            lag = Math.Max(lag, _log.Committed > held ? _log.Committed - held : 0);
        }

        return lag;
    }

    /// <summary>A snapshot of this node's state for operators (allocates; not for hot paths).</summary>
    public RaftStatus Status()
    {
        var peers = new List<PeerProgress>();
        if (_role == RaftRole.Leader)
        {
            foreach (var id in _tracker.Nodes)
            {
                peers.Add(_tracker.Get(id)!.ToPeerProgress(id));
            }
        }

        return new RaftStatus(Id, _role, _term, _vote, _lead, _log.Committed, _log.Applied, _log.LastIndex,
            _leadTransferee, ConfState, peers);
    }

    private static bool IsTermless(MessageType type) =>
        type is MessageType.Propose or MessageType.ReadIndex or MessageType.TransferLeader;

    private void Send(Message message)
    {
        Invariant.Check(message.To != Id && message.To != 0, "messages go to other nodes");
        _messages.Add(message);
    }

    private bool Promotable =>
        _tracker.Config.IsVoter(Id) && _log.UnstableSnapshot is null && !_rejoining;
}
