using RaftLedger.Common;
using RaftLedger.Common.Placement;

namespace RaftLedger.Client.Internal;

/// <summary>
/// One application call to create events, split into per-shard parts that travel in batched
/// requests. Parts record answers (or why there is none) into the call's arrays; the call completes
/// when its last part does. Parts write disjoint indexes, so the arrays need no lock.
/// </summary>
internal sealed class CreateCall<TEvent>
{
    private readonly TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Invariant: 0 <= partsLeft <= parts created; the call completes exactly when it reaches 0.
    private int partsLeft;

    public CreateCall(ReadOnlyMemory<TEvent> events, long deadline, CancellationToken cancellation)
    {
        Events = events;
        Deadline = deadline;
        Cancellation = cancellation;
        Answers = new EventAnswer[events.Length];
        Outcomes = new EventOutcome[events.Length];
    }

    public ReadOnlyMemory<TEvent> Events { get; }

    /// <summary>TimeProvider timestamp after which no new attempt is made for this call's events.</summary>
    public long Deadline { get; }

    public CancellationToken Cancellation { get; }

    /// <summary>Per event: the answer (StatusName is null while there is none).</summary>
    public EventAnswer[] Answers { get; }

    /// <summary>Per event: why there is no answer, when there is none at completion.</summary>
    public EventOutcome[] Outcomes { get; }

    /// <summary>The last failure seen by a part that gave up at the deadline.</summary>
    public string? Problem { get; set; }

    public Task Done => done.Task;

    public void ExpectParts(int count)
    {
        Invariant.Check(count >= 1);
        partsLeft = count;
    }

    public void PartDone()
    {
        var left = Interlocked.Decrement(ref partsLeft);
        Invariant.Check(left >= 0);
        if (left == 0)
        {
            done.TrySetResult();
        }
    }

    public void Fail(Exception exception) => done.TrySetException(exception);

    public void Cancel() => done.TrySetCanceled(Cancellation);
}

/// <summary>
/// The events of one call that go to one shard (indexes into the call, ascending). A part travels
/// whole: it may share a request with parts of other calls and shards bound for the same node, and
/// after a failed attempt it is routed again by its shard's current leader.
/// </summary>
internal sealed class CallPart<TEvent>(CreateCall<TEvent> call, int shard, int[] indexes, bool endsOpenChain)
{
    public CreateCall<TEvent> Call { get; } = call;

    /// <summary>The shard whose leader applies these events (a linked chain's first event's shard).</summary>
    public int Shard { get; } = shard;

    public int[] Indexes { get; } = indexes;

    public int Count => Indexes.Length;

    /// <summary>The part ends inside a linked chain (the call's last event is linked): nothing may follow it in a request.</summary>
    public bool EndsOpenChain { get; } = endsOpenChain;

    /// <summary>Set once an attempt carrying this part had an unknown fate: its events may have been applied.</summary>
    public bool MaybeApplied { get; set; }

    /// <summary>Failed requests that carried this part so far (drives its backoff; 0 on the first attempt).</summary>
    public int FailedAttempts { get; set; }

    /// <summary>The last failure of a request that carried this part, reported if the deadline passes.</summary>
    public string? Problem { get; set; }

    public void Answer(ReadOnlySpan<EventAnswer> answers)
    {
        Invariant.Check(answers.Length == Indexes.Length);
        for (var i = 0; i < Indexes.Length; i++)
        {
            Call.Answers[Indexes[i]] = answers[i];
        }

        Call.PartDone();
    }

    /// <summary>The deadline passed: the events get no answer; say whether they may have been applied.</summary>
    public void GiveUp(string? problem)
    {
        var outcome = MaybeApplied ? EventOutcome.Unknown : EventOutcome.NotApplied;
        foreach (var index in Indexes)
        {
            Call.Outcomes[index] = outcome;
        }

        Call.Problem = problem ?? "The call's deadline passed before its events could be sent.";
        Call.PartDone();
    }
}

/// <summary>Splits a call's events by shard (pure).</summary>
internal static class ShardSplit
{
    /// <summary>
    /// Per shard, the indexes of the events routed there (ascending). Each event goes to
    /// <c>shard(routing id)</c>, except that a linked chain stays whole on its first event's shard:
    /// a chain is all-or-nothing, which only one request to one shard can give.
    /// </summary>
    public static List<(int Shard, int[] Indexes)> Split<TEvent>(ReadOnlySpan<TEvent> events, int shardCount, EventKind<TEvent> kind)
    {
        Invariant.Check(events.Length > 0);
        Invariant.Check(shardCount >= 1);
        var shards = new int[events.Length];
        var counts = new int[shardCount];
        var chainShard = -1;
        for (var i = 0; i < events.Length; i++)
        {
            var shard = chainShard >= 0 ? chainShard : ShardRouter.ShardOf(kind.RoutingId(events[i]), shardCount);
            shards[i] = shard;
            counts[shard]++;
            chainShard = kind.IsLinked(events[i]) ? shard : -1;
        }

        var parts = new List<(int, int[])>();
        var slots = new int[shardCount][];
        for (var shard = 0; shard < shardCount; shard++)
        {
            if (counts[shard] > 0)
            {
                slots[shard] = new int[counts[shard]];
                parts.Add((shard, slots[shard]));
                counts[shard] = 0;
            }
        }

        for (var i = 0; i < events.Length; i++)
        {
            slots[shards[i]][counts[shards[i]]++] = i;
        }

        return parts;
    }
}
