using RaftLedger.Common;

namespace RaftLedger.Raft;

// Leader election (Raft paper §5.2, thesis §9.6 pre-vote, §6.2 leases/check-quorum, §3.10 leadership transfer).
public sealed partial class RaftNode
{
    private void TickElection()
    {
        // Saturate: a learner or removed node may go without hearing from a leader indefinitely.
        if (_electionElapsed < int.MaxValue)
        {
            _electionElapsed++;
        }

        if (Promotable && _electionElapsed >= _randomizedElectionTimeoutTicks)
        {
            _electionElapsed = 0;
            StartElection();
        }
    }

    private void TickLeader()
    {
        _heartbeatElapsed++;
        _electionElapsed++;
        if (_electionElapsed >= _config.ElectionTimeoutTicks)
        {
            _electionElapsed = 0;
            if (_config.CheckQuorum && !CheckQuorumActive())
            {
                // Thesis §6.2: a leader cut off from a quorum stops acting as leader so clients look elsewhere.
                BecomeFollower(_term, 0);
                return;
            }

            // A transfer that has not finished within an election timeout has failed; accept proposals again.
            _leadTransferee = 0;
        }

        if (_heartbeatElapsed >= _config.HeartbeatTicks)
        {
            _heartbeatElapsed = 0;
            BroadcastHeartbeat(ReadOnlyMemory<byte>.Empty);
        }

        MaybeAutoLeave();
    }

    private bool CheckQuorumActive()
    {
        var active = _tracker.QuorumActive(Id);
        foreach (var id in _tracker.Nodes)
        {
            if (id != Id)
            {
                _tracker.Get(id)!.RecentActive = false;
            }
        }

        return active;
    }

    private void StartElection()
    {
        if (_role == RaftRole.Leader || !Promotable || HasUnappliedConfChange())
        {
            // A committed but unapplied membership change may change who counts; wait until it is applied.
            return;
        }

        RunCampaign(preVote: _config.PreVote, transfer: false);
    }

    private void RunCampaign(bool preVote, bool transfer)
    {
        MessageType type;
        ulong voteTerm;
        if (preVote)
        {
            BecomePreCandidate();
            type = MessageType.PreVote;
            voteTerm = _term + 1;
        }
        else
        {
            BecomeCandidate();
            type = MessageType.Vote;
            voteTerm = _term;
        }

        if (_tracker.RecordVote(Id, granted: true) == VoteResult.Won)
        {
            // A single-voter group wins at once.
            if (preVote)
            {
                RunCampaign(preVote: false, transfer);
            }
            else
            {
                BecomeLeader();
            }

            return;
        }

        var lastIndex = _log.LastIndex;
        var lastTerm = _log.LastTerm;
        foreach (var id in _tracker.Nodes)
        {
            if (id != Id && _tracker.Config.IsVoter(id))
            {
                Send(new Message { Type = type, From = Id, To = id, Term = voteTerm, Index = lastIndex, LogTerm = lastTerm, Transfer = transfer });
            }
        }
    }

    // Returns false when the message must be ignored.
    private bool StepHigherTerm(Message m)
    {
        if (m.Type is MessageType.Vote or MessageType.PreVote)
        {
            // Thesis §4.2.3: a node that heard from a live leader within the election timeout ignores votes, so a
            // removed or partitioned node cannot depose a healthy leader. Transfers override this.
            var inLease = _config.CheckQuorum && _lead != 0 && _electionElapsed < _config.ElectionTimeoutTicks;
            if (inLease && !m.Transfer)
            {
                return false;
            }
        }

        if (m.Type == MessageType.PreVote || (m.Type == MessageType.PreVoteResponse && !m.Reject))
        {
            // Pre-votes are asked and granted for a future term; they change nobody's term.
            return true;
        }

        var leader = m.Type is MessageType.Append or MessageType.Heartbeat or MessageType.Snapshot ? m.From : 0;
        BecomeFollower(m.Term, leader);
        return true;
    }

    private void StepLowerTerm(Message m)
    {
        if ((_config.CheckQuorum || _config.PreVote) && m.Type is MessageType.Append or MessageType.Heartbeat)
        {
            // A stale leader would otherwise never learn our higher term: we ignore its appends and, with
            // check-quorum or pre-vote, our own campaigns may never reach it. Answering lets it step down, which
            // also frees a node stuck at a higher term (it then gets a chance to rejoin).
            Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = _term });
        }
        else if (m.Type == MessageType.PreVote)
        {
            Send(new Message { Type = MessageType.PreVoteResponse, From = Id, To = m.From, Term = _term, Reject = true });
        }
    }

    private void HandleVoteRequest(Message m)
    {
        var isPreVote = m.Type == MessageType.PreVote;
        var responseType = isPreVote ? MessageType.PreVoteResponse : MessageType.VoteResponse;
        // Paper §5.2: at most one vote per term (a repeated request from the same candidate is granted again).
        var canVote = !_rejoining && (_vote == m.From || (_vote == 0 && _lead == 0) || (isPreVote && m.Term > _term));
        // Paper §5.4.1: only for a candidate whose log is at least as up to date as ours.
        if (canVote && _log.IsUpToDate(m.Index, m.LogTerm))
        {
            Send(new Message { Type = responseType, From = Id, To = m.From, Term = m.Term });
            if (!isPreVote)
            {
                _electionElapsed = 0;
                _vote = m.From;
            }
        }
        else
        {
            Send(new Message { Type = responseType, From = Id, To = m.From, Term = _term, Reject = true });
        }
    }

    private void StepCandidate(Message m)
    {
        switch (m.Type)
        {
            case MessageType.Append:
            case MessageType.Heartbeat:
            case MessageType.Snapshot:
                // Paper §5.2: a candidate that hears from a leader of its term (or newer) returns to follower.
                BecomeFollower(m.Term, m.From);
                StepFollower(m);
                break;
            case MessageType.VoteResponse when _role == RaftRole.Candidate:
            case MessageType.PreVoteResponse when _role == RaftRole.PreCandidate:
                CountVote(m);
                break;
            default:
                break;
        }
    }

    private void CountVote(Message m)
    {
        switch (_tracker.RecordVote(m.From, !m.Reject))
        {
            case VoteResult.Won when _role == RaftRole.PreCandidate:
                RunCampaign(preVote: false, transfer: false);
                break;
            case VoteResult.Won:
                BecomeLeader();
                break;
            case VoteResult.Lost:
                BecomeFollower(_term, 0);
                break;
            default:
                break;
        }
    }

    private void ResetTo(ulong term)
    {
        Invariant.Check(term >= _term, "terms never go backwards");
        if (term != _term)
        {
            _term = term;
            _vote = 0;
        }

        _lead = 0;
        _electionElapsed = 0;
        _heartbeatElapsed = 0;
        _randomizedElectionTimeoutTicks = _config.ElectionTimeoutTicks + _random.NextInt(_config.ElectionTimeoutTicks);
        _leadTransferee = 0;
        _pendingConfIndex = 0;
        _uncommittedBytes = 0;
        _termStartIndex = 0;
        _tracker.ResetVotes();
        _reads.Clear();
        _readsAwaitingCommit.Clear();
        var next = _log.LastIndex + 1;
        var durable = _log.DurableLastIndex;
        foreach (var id in _tracker.Nodes)
        {
            _tracker.Get(id)!.ResetForNewTerm(next, id == Id ? durable : 0);
        }
    }

    private void BecomeFollower(ulong term, ulong leader)
    {
        ResetTo(term);
        _lead = leader;
        _role = RaftRole.Follower;
    }

    private void BecomePreCandidate()
    {
        Invariant.Check(_role != RaftRole.Leader);
        // The term does not change: a pre-candidate that loses leaves no trace on anyone.
        _tracker.ResetVotes();
        _lead = 0;
        _role = RaftRole.PreCandidate;
    }

    private void BecomeCandidate()
    {
        Invariant.Check(_role != RaftRole.Leader);
        ResetTo(_term + 1);
        _vote = Id;
        _role = RaftRole.Candidate;
    }

    private void BecomeLeader()
    {
        Invariant.Check(_role == RaftRole.Candidate, "only a candidate that won becomes leader");
        ResetTo(_term);
        _lead = Id;
        _role = RaftRole.Leader;
        // Conservatively assume the log holds an unapplied membership change until our first entry applies.
        _pendingConfIndex = _log.LastIndex;
        // Paper §5.4.2/§8: a no-op entry of the new term lets the leader commit (and serve reads) promptly.
        _termStartIndex = _log.LastIndex + 1;
        _log.Append([new Entry(_term, _termStartIndex, EntryType.Normal, ReadOnlyMemory<byte>.Empty)], 0);
        _tracker.Get(Id)?.BecomeReplicate();
        BroadcastAppend();
    }

    private bool HasUnappliedConfChange()
    {
        if (_log.Committed <= _log.Applied)
        {
            return false;
        }

        var entries = new List<Entry>();
        var low = _log.Applied + 1;
        while (low <= _log.Committed)
        {
            entries.Clear();
            if (!_log.TryGetEntries(low, _log.Committed + 1, _config.MessageBytesMax, entries) || entries.Count == 0)
            {
                return false;
            }

            foreach (var entry in entries)
            {
                if (entry.Type == EntryType.ConfChange)
                {
                    return true;
                }
            }

            low = entries[^1].Index + 1;
        }

        return false;
    }
}
