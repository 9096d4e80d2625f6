namespace RaftLedger.Raft;

// Linearizable reads without writing to the log: ReadIndex (thesis §6.4).
public sealed partial class RaftNode
{
    private ProposalResult HandleReadIndexRequest(ulong from, ReadOnlyMemory<byte> context)
    {
        if (_tracker.IsSingleVoter(Id))
        {
            RespondToRead(from, _log.Committed, context);
            return new ProposalResult(ProposalStatus.Accepted, Id, _term, _log.Committed, _log.Committed);
        }

        if (!CommittedInCurrentTerm())
        {
            // Thesis §6.4 step 1: until the new leader commits an entry of its term it does not know the true
            // commit index, so the read waits for the leader's no-op to commit.
            if (_readsAwaitingCommit.Count >= PendingReadsMax)
            {
                return ProposalResult.Refused(ProposalStatus.TooManyPendingReads, Id);
            }

            _readsAwaitingCommit.Add((from, context));
            return new ProposalResult(ProposalStatus.Accepted, Id, _term, 0, 0);
        }

        var index = _log.Committed;
        RegisterRead(from, context);
        return new ProposalResult(ProposalStatus.Accepted, Id, _term, index, index);
    }

    private void RegisterRead(ulong from, ReadOnlyMemory<byte> context)
    {
        if (_config.ReadOnlyMode == ReadOnlyMode.LeaseBased)
        {
            // The check-quorum lease stands in for the confirmation round; correct only with bounded clock drift.
            RespondToRead(from, _log.Committed, context);
            return;
        }

        if (_reads.Count >= PendingReadsMax || !_reads.Add(_log.Committed, from, context))
        {
            return;
        }

        // Thesis §6.4 step 3: confirm we are still leader with a heartbeat round carrying the request's context.
        ConfirmRead(Id, context);
        BroadcastHeartbeat(context);
    }

    private void ConfirmRead(ulong from, ReadOnlyMemory<byte> context)
    {
        var acks = _reads.Ack(from, context);
        if (acks is null || !_tracker.HasQuorum(acks))
        {
            return;
        }

        // A quorum acknowledged this request; every earlier request is confirmed by the same round.
        foreach (var read in _reads.ReleaseThrough(context))
        {
            RespondToRead(read.From, read.Index, read.Context);
        }
    }

    private void RespondToRead(ulong from, ulong index, ReadOnlyMemory<byte> context)
    {
        if (from == Id)
        {
            _readStates.Add(new ReadState(index, context));
            return;
        }

        Send(new Message { Type = MessageType.ReadIndexResponse, From = Id, To = from, Term = _term, Index = index, Context = context });
    }

    private bool CommittedInCurrentTerm() => _log.TryTerm(_log.Committed, out var term) && term == _term;

    private void ReleaseReadsAwaitingCommit()
    {
        if (_readsAwaitingCommit.Count == 0 || !CommittedInCurrentTerm())
        {
            return;
        }

        var waiting = _readsAwaitingCommit.ToArray();
        _readsAwaitingCommit.Clear();
        foreach (var (from, context) in waiting)
        {
            RegisterRead(from, context);
        }
    }
}
