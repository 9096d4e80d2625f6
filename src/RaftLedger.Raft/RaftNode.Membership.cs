using RaftLedger.Common;

namespace RaftLedger.Raft;

// Membership changes: learners, single changes and joint consensus (thesis §4.3), leadership transfer (§3.10).
public sealed partial class RaftNode
{
    private ProposalResult CheckConfChange(ConfChange change)
    {
        if (_pendingConfIndex > _log.Applied)
        {
            return ProposalResult.Refused(ProposalStatus.ConfChangePending, Id);
        }

        if (!_tracker.Config.TryApply(change, out _, out var error))
        {
            return ProposalResult.Refused(ProposalStatus.InvalidConfChange, Id) with { Detail = error };
        }

        return new ProposalResult(ProposalStatus.Accepted, Id, _term, 0, 0);
    }

    private void ApplyConfChangeEntry(Entry entry)
    {
        // Every replica applies the same entries to the same configuration, so skipping an invalid change is a
        // decision they all make identically.
        if (!ConfChangeCodec.TryDecode(entry.Data.Span, out var change, out _) ||
            !_tracker.Config.TryApply(change!, out var next, out _))
        {
            return;
        }

        SwitchConfig(next);
    }

    private void SwitchConfig(Membership next)
    {
        _tracker.SetConfig(next, _log.LastIndex + 1);
        if (_role != RaftRole.Leader)
        {
            return;
        }

        if (!next.IsVoter(Id))
        {
            // A leader removed (or demoted) by the change it just applied hands over by stepping down.
            BecomeFollower(_term, 0);
            return;
        }

        if (_leadTransferee != 0 && !next.IsVoter(_leadTransferee))
        {
            _leadTransferee = 0;
        }

        // Fewer voters may mean a smaller quorum has already replicated more (e.g. after removing a node).
        MaybeCommitAndRelease();
        foreach (var id in _tracker.Nodes)
        {
            if (id != Id)
            {
                MaybeSendAppend(id, sendIfEmpty: false);
            }
        }
    }

    private void MaybeAutoLeave()
    {
        if (_role != RaftRole.Leader || !_tracker.Config.AutoLeave || _pendingConfIndex > _log.Applied)
        {
            return;
        }

        // Thesis §4.3: once C(old,new) is applied the leader proposes C(new) by itself.
        Entry[] entries = [new Entry(0, 0, EntryType.ConfChange, ConfChangeCodec.Encode(ConfChange.LeaveJoint))];
        _ = AppendProposal(entries);
    }

    private ProposalResult StartTransfer(ulong to)
    {
        var pr = _tracker.Get(to);
        if (to == Id || pr is null || pr.IsLearner)
        {
            return ProposalResult.Refused(ProposalStatus.InvalidTransferTarget, Id);
        }

        if (_leadTransferee == to)
        {
            return new ProposalResult(ProposalStatus.Accepted, Id, _term, 0, 0);
        }

        _leadTransferee = to;
        // The transfer must finish within an election timeout (checked in TickLeader).
        _electionElapsed = 0;
        if (pr.Match == _log.LastIndex)
        {
            Send(new Message { Type = MessageType.TimeoutNow, From = Id, To = to, Term = _term });
        }
        else
        {
            MaybeSendAppend(to, sendIfEmpty: true);
        }

        Invariant.Check(_leadTransferee != 0);
        return new ProposalResult(ProposalStatus.Accepted, Id, _term, 0, 0);
    }

    private void ReplayAppliedConfChanges()
    {
        // Storage holds membership as of its snapshot; changes applied after it are replayed from the log.
        var low = _log.FirstIndex;
        var entries = new List<Entry>();
        while (low <= _log.Applied)
        {
            entries.Clear();
            var found = _log.TryGetEntries(low, _log.Applied + 1, _config.MessageBytesMax, entries);
            Invariant.Check(found && entries.Count > 0, "applied entries missing from storage");
            foreach (var entry in entries)
            {
                if (entry.Type == EntryType.ConfChange)
                {
                    ApplyConfChangeEntry(entry);
                }
            }

            low = entries[^1].Index + 1;
        }
    }
}
