using RaftLedger.Common;

namespace RaftLedger.Raft;

/// <summary>
/// Append messages sent to one follower and not yet acknowledged, as a ring buffer of (last index, bytes).
/// Bounds pipelining: the leader stops sending when either limit is reached.
/// </summary>
internal sealed class Inflights
{
    private readonly ulong[] _lastIndexes;
    private readonly long[] _bytes;
    private readonly long _bytesMax;
    private int _start;

    // Invariant: 0 <= Count <= capacity and 0 <= Bytes; indexes in the ring are strictly ascending.
    public Inflights(int messagesMax, long bytesMax)
    {
        Invariant.Check(messagesMax >= 1);
        _lastIndexes = new ulong[messagesMax];
        _bytes = new long[messagesMax];
        _bytesMax = bytesMax;
    }

    public int Count { get; private set; }

    public long Bytes { get; private set; }

    public bool Full => Count == _lastIndexes.Length || Bytes >= _bytesMax;

    public void Add(ulong lastIndex, long bytes)
    {
        Invariant.Check(!Full, "the caller checks Full before sending");
        var slot = (_start + Count) % _lastIndexes.Length;
        Invariant.Check(Count == 0 || _lastIndexes[(slot + _lastIndexes.Length - 1) % _lastIndexes.Length] < lastIndex);
        _lastIndexes[slot] = lastIndex;
        _bytes[slot] = bytes;
        Count++;
        Bytes += bytes;
    }

    /// <summary>Frees every message whose last index is at or below <paramref name="index"/> (acknowledged).</summary>
    public void FreeUpTo(ulong index)
    {
        while (Count > 0 && _lastIndexes[_start] <= index)
        {
            Bytes -= _bytes[_start];
            _start = (_start + 1) % _lastIndexes.Length;
            Count--;
        }

        Invariant.Check(Bytes >= 0);
        if (Count == 0)
        {
            _start = 0;
        }
    }

    /// <summary>Frees the oldest message: a heartbeat response shows the follower is alive, so a lost ack must not stall it.</summary>
    public void FreeFirstOne()
    {
        if (Count > 0)
        {
            FreeUpTo(_lastIndexes[_start]);
        }
    }

    public void Reset()
    {
        Count = 0;
        Bytes = 0;
        _start = 0;
    }
}

/// <summary>The leader's knowledge of one peer's log (Raft paper's nextIndex/matchIndex plus flow control).</summary>
internal sealed class Progress
{
    public Progress(ulong next, int inflightMessagesMax, long inflightBytesMax, bool isLearner)
    {
        Next = next;
        Inflights = new Inflights(inflightMessagesMax, inflightBytesMax);
        IsLearner = isLearner;
        RecentActive = true;
    }

    // Invariant: Match < Next. Match only grows while this node leads in one term.
    public ulong Match { get; private set; }

    public ulong Next { get; private set; }

    /// <summary>
    /// The follower acknowledged an append of this leader (or this node is the leader itself), so
    /// <see cref="Match"/> is a position it reported rather than the 0 a new leader starts every follower from.
    /// </summary>
    public bool MatchKnown { get; private set; }

    public ProgressState State { get; private set; }

    /// <summary>Index of the snapshot being sent while in <see cref="ProgressState.Snapshot"/>.</summary>
    public ulong PendingSnapshot { get; private set; }

    /// <summary>Heard from since the last check-quorum round.</summary>
    public bool RecentActive { get; set; }

    /// <summary>In Probe: an append is out and unanswered, so do not send another until a response or heartbeat.</summary>
    public bool ProbeSent { get; set; }

    public bool IsLearner { get; set; }

    public Inflights Inflights { get; }

    public bool IsPaused => State switch
    {
        ProgressState.Probe => ProbeSent,
        ProgressState.Replicate => Inflights.Full,
        _ => true,
    };

    public void ResetForNewTerm(ulong next, ulong match)
    {
        Match = match;
        Next = Math.Max(next, match + 1);
        State = ProgressState.Probe;
        PendingSnapshot = 0;
        ProbeSent = false;
        Inflights.Reset();
        RecentActive = true;
        MatchKnown = false;
    }

    /// <summary>
    /// The follower lost its durable state (it says so while rejoining, <see cref="Message.LostState"/>): nothing it
    /// acknowledged is known to be there any more. Probe from just after its log's last index. The match stays known:
    /// the follower answered, and 0 is the most it is sure to hold.
    /// </summary>
    public void ForgetMatch(ulong followerLastIndex)
    {
        SetState(ProgressState.Probe);
        Match = 0;
        Next = followerLastIndex + 1;
    }

    public void BecomeProbe()
    {
        // After a snapshot the follower has at least the snapshot's index; probe just after it.
        var next = State == ProgressState.Snapshot ? Math.Max(Match + 1, PendingSnapshot + 1) : Match + 1;
        SetState(ProgressState.Probe);
        Next = next;
    }

    /// <summary>The host could not deliver the snapshot: probe from the current match and try again later.</summary>
    public void SnapshotFailed()
    {
        PendingSnapshot = 0;
        BecomeProbe();
    }

    public void BecomeReplicate()
    {
        SetState(ProgressState.Replicate);
        Next = Match + 1;
    }

    public void BecomeSnapshot(ulong snapshotIndex)
    {
        SetState(ProgressState.Snapshot);
        PendingSnapshot = snapshotIndex;
    }

    /// <summary>Records that the follower has entries up to <paramref name="index"/>; false if that is old news.</summary>
    public bool MaybeUpdate(ulong index)
    {
        MatchKnown = true;
        var updated = false;
        if (Match < index)
        {
            Match = index;
            updated = true;
            ProbeSent = false;
        }

        Next = Math.Max(Next, index + 1);
        Invariant.Check(Match < Next);
        return updated;
    }

    /// <summary>
    /// Handles a rejection of the append after <paramref name="rejected"/>; <paramref name="matchHint"/> is the
    /// highest index that may still match. Returns false for a stale rejection (reordered or duplicated), which
    /// must not move Next backwards.
    /// </summary>
    public bool MaybeDecreaseTo(ulong rejected, ulong matchHint)
    {
        if (State == ProgressState.Replicate)
        {
            if (rejected <= Match)
            {
                return false;
            }

            Next = Match + 1;
            return true;
        }

        if (Next - 1 != rejected)
        {
            return false;
        }

        Next = Math.Max(Math.Min(rejected, matchHint + 1), Match + 1);
        ProbeSent = false;
        Invariant.Check(Next >= 1);
        return true;
    }

    /// <summary>Records an append just sent: pipelines in Replicate, pauses in Probe.</summary>
    public void SentEntries(int count, ulong lastIndex, long bytes)
    {
        if (State == ProgressState.Replicate)
        {
            if (count > 0)
            {
                Next = lastIndex + 1;
                Inflights.Add(lastIndex, bytes);
            }
        }
        else if (State == ProgressState.Probe)
        {
            ProbeSent = true;
        }
    }

    public PeerProgress ToPeerProgress(ulong id) =>
        new(id, Match, Next, State, IsLearner, RecentActive, Inflights.Count, PendingSnapshot);

    private void SetState(ProgressState state)
    {
        ProbeSent = false;
        PendingSnapshot = 0;
        State = state;
        Inflights.Reset();
    }
}
