using RaftLedger.Common;

namespace RaftLedger.Raft;

public sealed partial class RaftNode
{
    private HardState CurrentHardState => new(_term, _vote, _log.Committed);

    /// <summary>True when <see cref="GetReady()"/> has work for the host.</summary>
    public bool HasReady =>
        _outstandingReady is null && (
            _messages.Count > 0 ||
            _log.UnstableEntries.Count > 0 ||
            _log.UnstableSnapshot is not null ||
            _readStates.Count > 0 ||
            CurrentHardState != _prevHardState ||
            new SoftState(_lead, _role) != _prevSoftState ||
            _log.HasNextCommittedEntries());

    /// <summary>
    /// Takes the pending work: see the contract on <see cref="Ready"/>. Call <see cref="Advance"/> with it before
    /// asking for the next one.
    /// </summary>
    public Ready GetReady() => GetReady(_config.ReadyCommittedBytesMax);

    /// <summary>
    /// Like <see cref="GetReady()"/>, with at most <paramref name="committedBytesMax"/> bytes of committed entries
    /// (but at least one entry when any is ready, and never more than <see cref="RaftConfig.ReadyCommittedBytesMax"/>).
    /// A host running many groups in one loop passes what is left of its apply budget for the round, so a replica
    /// with a large backlog (a restart, a follower catching up) applies it over several rounds and keeps answering
    /// heartbeats and votes in between. The rest stays committed and comes in the next Ready.
    /// </summary>
    public Ready GetReady(long committedBytesMax)
    {
        Invariant.Check(_outstandingReady is null, "call Advance with the previous Ready before GetReady");
        Invariant.Check(committedBytesMax >= 0);
        return TakeReady(_log.NextCommittedEntries(Math.Min(committedBytesMax, _config.ReadyCommittedBytesMax)));
    }

    /// <summary>
    /// Like <see cref="GetReady()"/>, but without committed entries: they stay for a later Ready. For a host whose round
    /// has spent its apply budget on other groups: this group's appends, messages (heartbeats, acknowledgements) and
    /// hard state still go out in the round, while its apply waits for a round that has budget left. With entries of
    /// thousands of transfers, one apply per group per round made rounds of a second and more under load, and the
    /// heartbeats that waited behind them cost leaderships.
    /// </summary>
    public Ready GetReadyWithoutApply()
    {
        Invariant.Check(_outstandingReady is null, "call Advance with the previous Ready before GetReady");
        return TakeReady([]);
    }

    private Ready TakeReady(IReadOnlyList<Entry> committed)
    {
        var hardState = CurrentHardState;
        var termOrVoteChanged = hardState.Term != _prevHardState.Term || hardState.Vote != _prevHardState.Vote;
        var snapshot = _log.UnstableSnapshot;
        var entries = _log.UnstableEntries.Count == 0 ? [] : _log.UnstableEntries.ToArray();
        var softState = new SoftState(_lead, _role);
        var ready = new Ready(
            softState,
            hardState != _prevHardState ? hardState : null,
            entries,
            snapshot,
            committed,
            _messages.Count == 0 ? Array.Empty<Message>() : _messages,
            _readStates.Count == 0 ? Array.Empty<ReadState>() : _readStates,
            messagesMaySendBeforePersist: _role == RaftRole.Leader && !termOrVoteChanged && snapshot is null)
        {
            MustSync = entries.Length > 0 || termOrVoteChanged || snapshot is not null,
        };
        // Hand the lists over only when used, so an idle Ready allocates nothing for them.
        if (_messages.Count > 0)
        {
            _messages = [];
        }

        if (_readStates.Count > 0)
        {
            _readStates = [];
        }

        _prevSoftState = softState;
        _outstandingReady = ready;
        return ready;
    }

    /// <summary>
    /// The host has persisted <paramref name="ready"/> (entries, hard state, snapshot durable), sent its messages
    /// and applied its committed entries. A leader now counts its own new entries towards the commit quorum.
    /// </summary>
    public void Advance(Ready ready)
    {
        ArgumentNullException.ThrowIfNull(ready);
        Invariant.Check(ReferenceEquals(ready, _outstandingReady), "Advance takes the Ready returned by the last GetReady");
        _outstandingReady = null;
        if (ready.HardState is { } hardState)
        {
            _prevHardState = hardState;
        }

        if (ready.Snapshot is { } snapshot)
        {
            _log.SnapshotInstalled(snapshot);
        }

        if (ready.Entries.Count > 0)
        {
            var last = ready.Entries[^1];
            _log.StableTo(last.Index, last.Term);
            if (_role == RaftRole.Leader && _tracker.Get(Id) is { } self && self.MaybeUpdate(_log.DurableLastIndex))
            {
                MaybeCommitAndRelease();
            }
        }

        if (ready.CommittedEntries.Count > 0)
        {
            AdvanceApplied(ready.CommittedEntries);
        }
    }

    private void AdvanceApplied(IReadOnlyList<Entry> committed)
    {
        long appliedBytes = 0;
        foreach (var entry in committed)
        {
            if (entry.Index > _log.Applied)
            {
                _log.AppliedTo(entry.Index);
                if (entry.Type == EntryType.ConfChange)
                {
                    ApplyConfChangeEntry(entry);
                }

                if (entry.Index >= _termStartIndex)
                {
                    appliedBytes += entry.SizeBytes;
                }
            }
        }

        if (_role == RaftRole.Leader)
        {
            _uncommittedBytes = Math.Max(0, _uncommittedBytes - appliedBytes);
            MaybeAutoLeave();
        }
    }
}
