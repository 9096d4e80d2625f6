using RaftLedger.Common;

namespace RaftLedger.Raft;

// Log replication (Raft paper §5.3, §5.4; thesis §10.2 pipelining/flow control) and snapshots (paper §7).
public sealed partial class RaftNode
{
    private void StepLeader(Message m)
    {
        switch (m.Type)
        {
            case MessageType.AppendResponse:
                HandleAppendResponse(m);
                break;
            case MessageType.HeartbeatResponse:
                HandleHeartbeatResponse(m);
                break;
            default:
                // Another leader in our own term cannot exist; anything else is stale or for other roles.
                break;
        }
    }

    /// <summary>
    /// A rejoining node may vote again once its committed prefix ends in an entry of the current leader's term: that
    /// leader had every entry committed before its term (Leader Completeness) and they precede its own entries.
    /// </summary>
    private void EndRejoinIfCaughtUp()
    {
        if (_rejoining && _log.Committed > 0 && _log.TryTerm(_log.Committed, out var term) && term == _term)
        {
            _rejoining = false;
        }
    }

    private void StepFollower(Message m)
    {
        switch (m.Type)
        {
            case MessageType.Append:
                _electionElapsed = 0;
                _lead = m.From;
                HandleAppend(m);
                EndRejoinIfCaughtUp();
                break;
            case MessageType.Heartbeat:
                _electionElapsed = 0;
                _lead = m.From;
                HandleHeartbeat(m);
                EndRejoinIfCaughtUp();
                break;
            case MessageType.Snapshot:
                _electionElapsed = 0;
                _lead = m.From;
                HandleSnapshot(m);
                EndRejoinIfCaughtUp();
                break;
            case MessageType.TimeoutNow:
                // Thesis §3.10: the leader asked us to take over; skip pre-vote and the leader's lease.
                if (Promotable && !HasUnappliedConfChange())
                {
                    RunCampaign(preVote: false, transfer: true);
                }

                break;
            case MessageType.ReadIndexResponse:
                _readStates.Add(new ReadState(m.Index, m.Context));
                break;
            default:
                break;
        }
    }

    private void StepForwarded(Message m)
    {
        // Forwarded requests are handled only by the leader; a node that is no longer leader drops them rather
        // than forwarding again, so requests never loop. The requester times out and retries.
        if (_role != RaftRole.Leader)
        {
            return;
        }

        switch (m.Type)
        {
            case MessageType.Propose:
                AcceptForwardedProposal(m);
                break;
            case MessageType.ReadIndex:
                HandleReadIndexRequest(m.From, m.Context);
                break;
            case MessageType.TransferLeader:
                StartTransfer(m.Index);
                break;
            default:
                break;
        }
    }

    private void AcceptForwardedProposal(Message m)
    {
        if (m.Entries.Count == 0)
        {
            return;
        }

        var entries = new Entry[m.Entries.Count];
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = m.Entries[i];
            if (entries[i].Type == EntryType.ConfChange &&
                (!ConfChangeCodec.TryDecode(entries[i].Data.Span, out var change, out _) || !CheckConfChange(change!).IsAccepted))
            {
                return;
            }
        }

        _ = AppendProposal(entries);
    }

    private ProposalResult ForwardProposal(Entry[] entries)
    {
        if (_lead == 0 || _role != RaftRole.Follower)
        {
            return ProposalResult.Refused(ProposalStatus.NoLeader, 0);
        }

        if (_config.ProposalForwarding == ProposalForwarding.Refuse)
        {
            return ProposalResult.Refused(ProposalStatus.NotLeader, _lead);
        }

        foreach (var entry in entries)
        {
            if (entry.SizeBytes > _config.MessageBytesMax)
            {
                return ProposalResult.Refused(ProposalStatus.EntryTooLarge, _lead);
            }
        }

        Send(new Message { Type = MessageType.Propose, From = Id, To = _lead, Entries = entries });
        return ProposalResult.Refused(ProposalStatus.Forwarded, _lead);
    }

    // Leader: assign term and indexes, append, replicate. Entries carry type and payload only.
    private ProposalResult AppendProposal(Entry[] entries)
    {
        Invariant.Check(_role == RaftRole.Leader);
        if (_leadTransferee != 0)
        {
            return ProposalResult.Refused(ProposalStatus.LeadershipTransferInProgress, Id);
        }

        long bytes = 0;
        foreach (var entry in entries)
        {
            if (entry.SizeBytes > _config.MessageBytesMax)
            {
                return ProposalResult.Refused(ProposalStatus.EntryTooLarge, Id);
            }

            bytes += entry.SizeBytes;
        }

        // An empty uncommitted log always accepts one batch, so a batch larger than the limit cannot wedge the group.
        if (_uncommittedBytes > 0 && _uncommittedBytes + bytes > _config.UncommittedBytesMax)
        {
            return ProposalResult.Refused(ProposalStatus.UncommittedLogFull, Id);
        }

        var first = _log.LastIndex + 1;
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = entries[i] with { Term = _term, Index = first + (ulong)i };
            if (entries[i].Type == EntryType.ConfChange)
            {
                _pendingConfIndex = entries[i].Index;
            }
        }

        _log.Append(entries, 0);
        _uncommittedBytes += bytes;
        BroadcastAppend();
        return new ProposalResult(ProposalStatus.Accepted, Id, _term, first, entries[^1].Index);
    }

    private void BroadcastAppend()
    {
        foreach (var id in _tracker.Nodes)
        {
            if (id != Id)
            {
                MaybeSendAppend(id, sendIfEmpty: true);
            }
        }
    }

    private void BroadcastHeartbeat(ReadOnlyMemory<byte> context)
    {
        foreach (var id in _tracker.Nodes)
        {
            if (id != Id)
            {
                // Only up to what the follower has: it must not commit entries it may not hold.
                var commit = Math.Min(_tracker.Get(id)!.Match, _log.Committed);
                Send(new Message { Type = MessageType.Heartbeat, From = Id, To = id, Term = _term, Commit = commit, Context = context });
            }
        }
    }

    /// <summary>
    /// Sends the follower the entries after its Next (or a snapshot when they are compacted), within the
    /// message-size and in-flight limits. Returns false when nothing was sent.
    /// </summary>
    private bool MaybeSendAppend(ulong to, bool sendIfEmpty)
    {
        var pr = _tracker.Get(to);
        if (pr is null || pr.IsPaused)
        {
            return false;
        }

        var prevIndex = pr.Next - 1;
        if (!_log.TryTerm(prevIndex, out var prevTerm))
        {
            return SendSnapshot(to, pr);
        }

        var entries = new List<Entry>((int)Math.Min(_log.LastIndex + 1 - Math.Min(pr.Next, _log.LastIndex + 1), 256));
        if (!_log.TryGetEntries(pr.Next, _log.LastIndex + 1, _config.MessageBytesMax, entries))
        {
            return SendSnapshot(to, pr);
        }

        if (entries.Count == 0 && !sendIfEmpty)
        {
            return false;
        }

        long bytes = 0;
        foreach (var entry in entries)
        {
            bytes += entry.SizeBytes;
        }

        Send(new Message
        {
            Type = MessageType.Append,
            From = Id,
            To = to,
            Term = _term,
            Index = prevIndex,
            LogTerm = prevTerm,
            Entries = entries,
            Commit = _log.Committed,
        });
        pr.SentEntries(entries.Count, entries.Count > 0 ? entries[^1].Index : prevIndex, bytes);
        return true;
    }

    private bool SendSnapshot(ulong to, Progress pr)
    {
        if (!pr.RecentActive)
        {
            // Do not start streaming a snapshot to a node that has not been heard from recently.
            return false;
        }

        var snapshot = _storage.Snapshot;
        Invariant.Check(snapshot.Index + 1 >= _log.FirstIndex, "log compacted past the latest snapshot");
        pr.BecomeSnapshot(snapshot.Index);
        Send(new Message { Type = MessageType.Snapshot, From = Id, To = to, Term = _term, Snapshot = snapshot });
        return true;
    }

    private void HandleAppendResponse(Message m)
    {
        var pr = _tracker.Get(m.From);
        if (pr is null)
        {
            return;
        }

        pr.RecentActive = true;
        if (m.Reject && m.LostState && pr.Match > m.RejectHint)
        {
            // A wiped follower: the match it acknowledged is gone, and probing never goes below the match. Start over
            // from its log's end (lowering what the leader believes is only ever conservative: commit never moves back).
            pr.ForgetMatch(m.RejectHint);
            MaybeSendAppend(m.From, sendIfEmpty: true);
            return;
        }

        if (m.Reject)
        {
            // Fast backtracking (paper §5.3 optimisation): skip every entry of a term the follower cannot match.
            var hint = m.LogTerm > 0 ? _log.FindConflictByTerm(m.RejectHint, m.LogTerm).Index : m.RejectHint;
            if (pr.MaybeDecreaseTo(m.Index, hint))
            {
                if (pr.State == ProgressState.Replicate)
                {
                    pr.BecomeProbe();
                }

                MaybeSendAppend(m.From, sendIfEmpty: true);
            }

            return;
        }

        if (!pr.MaybeUpdate(m.Index) && !(pr.Match == m.Index && pr.State == ProgressState.Probe))
        {
            // Stale or duplicated acknowledgement: progress never moves backwards.
            return;
        }

        switch (pr.State)
        {
            case ProgressState.Probe:
                pr.BecomeReplicate();
                break;
            case ProgressState.Snapshot when pr.Match + 1 >= _log.FirstIndex:
                pr.BecomeProbe();
                pr.BecomeReplicate();
                break;
            case ProgressState.Replicate:
                pr.Inflights.FreeUpTo(m.Index);
                break;
            default:
                break;
        }

        MaybeCommitAndRelease();
        while (MaybeSendAppend(m.From, sendIfEmpty: false))
        {
        }

        if (m.From == _leadTransferee && pr.Match == _log.LastIndex)
        {
            Send(new Message { Type = MessageType.TimeoutNow, From = Id, To = m.From, Term = _term });
        }
    }

    private void HandleHeartbeatResponse(Message m)
    {
        var pr = _tracker.Get(m.From);
        if (pr is null)
        {
            return;
        }

        pr.RecentActive = true;
        pr.ProbeSent = false;
        if (m.LostState && pr.Match > m.RejectHint)
        {
            pr.ForgetMatch(m.RejectHint); // see HandleAppendResponse; the append below starts the probe
        }

        if (pr.State == ProgressState.Replicate && pr.Inflights.Full)
        {
            pr.Inflights.FreeFirstOne();
        }

        if (pr.Match < _log.LastIndex)
        {
            MaybeSendAppend(m.From, sendIfEmpty: true);
        }

        if (!m.Context.IsEmpty && _config.ReadOnlyMode == ReadOnlyMode.Safe)
        {
            ConfirmRead(m.From, m.Context);
        }
    }

    /// <summary>
    /// Commits the highest index a quorum holds, but only if it is from the current term: paper §5.4.2 / Figure 8,
    /// an older-term entry is committed only indirectly, by committing a newer one after it.
    /// </summary>
    private bool MaybeCommit()
    {
        var quorumIndex = _tracker.CommittedIndex();
        if (quorumIndex <= _log.Committed || quorumIndex == ulong.MaxValue)
        {
            return false;
        }

        if (!_log.TryTerm(quorumIndex, out var term) || term != _term)
        {
            return false;
        }

        _log.CommitTo(quorumIndex);
        return true;
    }

    // The new commit index reaches followers lazily, on the next append or heartbeat: no extra messages per commit.
    private void MaybeCommitAndRelease()
    {
        if (MaybeCommit())
        {
            ReleaseReadsAwaitingCommit();
        }
    }

    private void HandleAppend(Message m)
    {
        if (m.Index < _log.Committed)
        {
            // Everything up to our commit index matches the leader's log (Log Matching); tell it so.
            Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = _term, Index = _log.Committed });
            return;
        }

        if (_log.TryAppendFromLeader(m.Index, m.LogTerm, m.Commit, m.Entries, out var lastNew))
        {
            Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = _term, Index = lastNew });
            return;
        }

        // Paper §5.3: reject, with a hint so the leader can skip a whole term of mismatching entries at once.
        var (hintIndex, hintTerm) = _log.FindConflictByTerm(Math.Min(m.Index, _log.LastIndex), m.LogTerm);
        Send(new Message
        {
            Type = MessageType.AppendResponse,
            From = Id,
            To = m.From,
            Term = _term,
            Index = m.Index,
            Reject = true,
            RejectHint = hintIndex,
            LogTerm = hintTerm,
            LostState = _rejoining,
        });
    }

    private void HandleHeartbeat(Message m)
    {
        _log.CommitTo(Math.Min(m.Commit, _log.LastIndex));
        // The leader sends at most what it believes we hold as commit: more than our log means we lost it (a wipe), and
        // an idle leader would otherwise never send the append whose rejection tells it so.
        var lost = _rejoining && m.Commit > _log.LastIndex;
        Send(new Message
        {
            Type = MessageType.HeartbeatResponse,
            From = Id,
            To = m.From,
            Term = _term,
            Context = m.Context,
            LostState = lost,
            RejectHint = lost ? _log.LastIndex : 0,
        });
    }

    private void HandleSnapshot(Message m)
    {
        if (m.Snapshot is { } snapshot && RestoreSnapshot(snapshot))
        {
            Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = _term, Index = _log.LastIndex });
            return;
        }

        Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = _term, Index = _log.Committed });
    }

    private bool RestoreSnapshot(SnapshotMetadata snapshot)
    {
        if (snapshot.Index <= _log.Committed)
        {
            return false;
        }

        var membership = Membership.From(snapshot.ConfState);
        if (!membership.Contains(Id) && _tracker.Config.Contains(Id))
        {
            // We know we are a member, and the snapshot predates that: installing it would make us forget it.
            // A node that does not know its membership yet (a new joiner) installs it and learns from the log.
            return false;
        }

        if (_log.MatchTerm(snapshot.Index, snapshot.Term))
        {
            // We already have the entry it ends at, so our log matches the leader's up to there.
            _log.CommitTo(snapshot.Index);
            return false;
        }

        _log.Restore(snapshot);
        _tracker.SetConfig(membership, _log.LastIndex + 1);
        return true;
    }
}
