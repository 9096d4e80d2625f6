using RaftLedger.Common;

namespace RaftLedger.Raft;

/// <summary>Outcome of counting votes (or acknowledgements) in a configuration.</summary>
internal enum VoteResult : byte
{
    Pending = 0,
    Won = 1,
    Lost = 2,
}

/// <summary>
/// The configuration, each member's progress and the votes of the current election. Quorums are majorities
/// of the incoming voters and, while joint, also of the outgoing voters (thesis §4.3).
/// </summary>
internal sealed class ProgressTracker
{
    private readonly Dictionary<ulong, Progress> _progress = [];
    private readonly Dictionary<ulong, bool> _votes = [];
    private readonly int _inflightMessagesMax;
    private readonly long _inflightBytesMax;
    private ulong[] _nodes = [];

    public ProgressTracker(int inflightMessagesMax, long inflightBytesMax)
    {
        _inflightMessagesMax = inflightMessagesMax;
        _inflightBytesMax = inflightBytesMax;
    }

    public Membership Config { get; private set; } = Membership.Empty;

    /// <summary>Every member (voters and learners), ascending; iterate this rather than the dictionary.</summary>
    public ulong[] Nodes => _nodes;

    public Progress? Get(ulong id) => _progress.GetValueOrDefault(id);

    /// <summary>Installs <paramref name="config"/>: keeps progress of remaining members, adds new ones at next.</summary>
    public void SetConfig(Membership config, ulong next)
    {
        Config = config;
        _nodes = config.AllNodes();
        foreach (var id in _progress.Keys.ToArray())
        {
            if (!config.Contains(id))
            {
                _progress.Remove(id);
            }
        }

        foreach (var id in _nodes)
        {
            if (!_progress.TryGetValue(id, out var pr))
            {
                pr = new Progress(next, _inflightMessagesMax, _inflightBytesMax, isLearner: false);
                _progress[id] = pr;
            }

            pr.IsLearner = !config.IsVoter(id);
        }

        Invariant.Check(_progress.Count == _nodes.Length);
    }

    public void ResetVotes() => _votes.Clear();

    /// <summary>Records <paramref name="id"/>'s vote (the first one counts) and tallies.</summary>
    public VoteResult RecordVote(ulong id, bool granted)
    {
        _votes.TryAdd(id, granted);
        return TallyVotes();
    }

    public VoteResult TallyVotes() =>
        Combine(Tally(Config.Incoming, _votes), Tally(Config.Outgoing, _votes));

    /// <summary>The highest index that a quorum of voters has durably (Raft paper §5.3/5.4 commit rule input).</summary>
    public ulong CommittedIndex()
    {
        var incoming = MajorityIndex(Config.Incoming);
        var outgoing = MajorityIndex(Config.Outgoing);
        return Math.Min(incoming, outgoing);
    }

    /// <summary>True when a quorum of voters has been active since the last check (self counts as active).</summary>
    public bool QuorumActive(ulong self)
    {
        var active = new Dictionary<ulong, bool>();
        foreach (var id in _nodes)
        {
            var pr = _progress[id];
            if (!pr.IsLearner)
            {
                active[id] = id == self || pr.RecentActive;
            }
        }

        return Combine(Tally(Config.Incoming, active), Tally(Config.Outgoing, active)) == VoteResult.Won;
    }

    /// <summary>True when the acknowledgements in <paramref name="acks"/> form a quorum.</summary>
    public bool HasQuorum(HashSet<ulong> acks)
    {
        var votes = new Dictionary<ulong, bool>();
        foreach (var id in acks)
        {
            votes[id] = true;
        }

        return Combine(Tally(Config.Incoming, votes), Tally(Config.Outgoing, votes)) == VoteResult.Won;
    }

    /// <summary>True when this node alone is a quorum (a single-voter group).</summary>
    public bool IsSingleVoter(ulong self) =>
        Config.Incoming.Length == 1 && Config.Incoming[0] == self && Config.Outgoing.Length <= 1 &&
        (Config.Outgoing.Length == 0 || Config.Outgoing[0] == self);

    private ulong MajorityIndex(ulong[] voters)
    {
        if (voters.Length == 0)
        {
            // An empty half of a joint configuration must not hold back the other half.
            return ulong.MaxValue;
        }

        Span<ulong> matches = voters.Length <= 16 ? stackalloc ulong[voters.Length] : new ulong[voters.Length];
        for (var i = 0; i < voters.Length; i++)
        {
            matches[i] = _progress.TryGetValue(voters[i], out var pr) ? pr.Match : 0;
        }

        matches.Sort();
        // Ascending: the element at n - (n/2 + 1) is held by at least n/2 + 1 voters.
        return matches[voters.Length - ((voters.Length / 2) + 1)];
    }

    private static VoteResult Tally(ulong[] voters, Dictionary<ulong, bool> votes)
    {
        if (voters.Length == 0)
        {
            return VoteResult.Won;
        }

        int granted = 0, missing = 0;
        foreach (var id in voters)
        {
            if (!votes.TryGetValue(id, out var vote))
            {
                missing++;
            }
            else if (vote)
            {
                granted++;
            }
        }

        var quorum = (voters.Length / 2) + 1;
        if (granted >= quorum)
        {
            return VoteResult.Won;
        }

        return granted + missing >= quorum ? VoteResult.Pending : VoteResult.Lost;
    }

    private static VoteResult Combine(VoteResult a, VoteResult b)
    {
        if (a == VoteResult.Lost || b == VoteResult.Lost)
        {
            return VoteResult.Lost;
        }

        return a == VoteResult.Won && b == VoteResult.Won ? VoteResult.Won : VoteResult.Pending;
    }
}
