using Grpc.Core;
using RaftLedger.Common;
using RaftLedger.Common.Placement;

namespace RaftLedger.Client.Internal;

/// <summary>
/// Automatic batching and safe retries for one kind of create call. Each shard has a queue: a call's
/// part for that shard is sent at once when fewer than <see cref="LedgerClientOptions.RequestsInFlightPerShardMax"/>
/// requests are in flight (no added latency when idle), and otherwise waits and leaves with every
/// other waiting part in the next request (up to <see cref="ClientLimits.BatchEventsMax"/> events).
/// </summary>
internal sealed class CreatePipeline<TEvent>
{
    private readonly EventKind<TEvent> kind;
    private readonly ClusterRouter router;
    private readonly LedgerClientOptions options;
    private readonly TimeProvider time;
    private readonly StatisticsCounters statistics;
    private readonly Lock queuesGate = new();
    private ShardQueue<TEvent>[]? queues;

    public CreatePipeline(EventKind<TEvent> kind, ClusterRouter router, LedgerClientOptions options, TimeProvider time, StatisticsCounters statistics)
    {
        this.kind = kind;
        this.router = router;
        this.options = options;
        this.time = time;
        this.statistics = statistics;
    }

    /// <summary>Routes the call's events to their shards' queues; the call completes when every part has an answer or gave up.</summary>
    public async Task SubmitAsync(CreateCall<TEvent> call)
    {
        var route = await router.GetTableAsync(call.Deadline, call.Cancellation);
        var shardQueues = QueuesFor(route.ShardCount);
        var events = call.Events.Span;
        if (events.Length == 1)
        {
            // The common single-event call skips the split's bookkeeping.
            call.ExpectParts(1);
            var shard = ShardRouter.ShardOf(kind.RoutingId(events[0]), route.ShardCount);
            shardQueues[shard].Enqueue(new CallPart<TEvent>(call, [0], kind.IsLinked(events[0])));
            return;
        }

        var parts = ShardSplit.Split(events, route.ShardCount, kind);
        call.ExpectParts(parts.Count);
        foreach (var (shard, indexes) in parts)
        {
            shardQueues[shard].Enqueue(new CallPart<TEvent>(call, indexes, kind.IsLinked(events[indexes[^1]])));
        }
    }

    private ShardQueue<TEvent>[] QueuesFor(int shardCount)
    {
        var known = Volatile.Read(ref queues);
        if (known is not null && known.Length == shardCount)
        {
            return known;
        }

        lock (queuesGate)
        {
            // The shard count is fixed when a cluster is bootstrapped; a different one means the
            // client was pointed at another cluster, which must not share queues with the first.
            Invariant.Check(queues is null || queues.Length == shardCount);
            queues ??= Enumerable.Range(0, shardCount).Select(shard => new ShardQueue<TEvent>(shard, this, options.RequestsInFlightPerShardMax)).ToArray();
            return queues;
        }
    }

    /// <summary>
    /// Sends one batch to the shard until it is answered, retrying the same events (same ids) on
    /// failures that retrying can fix. Parts whose call reached its deadline (or was cancelled) leave
    /// the batch before each attempt, with the outcome their attempts allow.
    /// </summary>
    internal async Task SendAsync(int shard, List<CallPart<TEvent>> batch)
    {
        string? problem = null;
        for (var attempt = 0; ; attempt++)
        {
            var earliestDeadline = DropFinished(batch, problem);
            if (batch.Count == 0)
            {
                return;
            }

            var (events, count) = Gather(batch);
            var route = router.Table;
            Invariant.Check(route is not null);
            var connection = router.Pick(route!, shard, out var toLeader);
            Count(attempt, count, toLeader);
            var timeout = Min(options.RequestTimeout, router.Remaining(earliestDeadline));
            try
            {
                var answers = await kind.SendAsync(connection, events, count, timeout, router.Stopping);
                Deliver(batch, answers, count, connection);
                return;
            }
            catch (RpcException exception) when (!router.Stopping.IsCancellationRequested)
            {
                var failure = RetryPolicy.Classify(exception);
                problem = $"{connection.Address}: {exception.Status.StatusCode}: {exception.Status.Detail}";
                if (failure == FailureKind.Fatal)
                {
                    FailAll(batch, new LedgerRequestException($"The cluster refused the request ({problem}). Nothing was applied; fix the request, retrying it unchanged will not help.", exception));
                    return;
                }

                MarkMaybeApplied(batch, failure);
                router.ReportFailure(connection, nodeLooksDown: exception.Trailers.Get(RetryPolicy.RetryAfterTrailer) is null);
            }
            catch (Exception exception) when (router.Stopping.IsCancellationRequested)
            {
                FailAll(batch, new ObjectDisposedException(nameof(LedgerClient), $"The client was disposed while a request was in flight; its outcome is unknown. {exception.Message}"));
                return;
            }

            await BackOffAsync(attempt, router.Remaining(DropFinished(batch, problem)));
        }
    }

    private void Count(int attempt, int count, bool toLeader)
    {
        Interlocked.Increment(ref statistics.CreateRequests);
        if (attempt > 0)
        {
            Interlocked.Increment(ref statistics.CreateRetries);
        }

        if (toLeader)
        {
            Interlocked.Increment(ref statistics.RequestsToLeader);
        }

        Invariant.Check(count <= ClientLimits.BatchEventsMax);
    }

    private async Task BackOffAsync(int attempt, TimeSpan remaining)
    {
        var delay = RetryPolicy.Backoff(attempt, options.RetryBackoffInitial, options.RetryBackoffMax, Random.Shared.NextDouble());
        if (remaining != Timeout.InfiniteTimeSpan && remaining < delay)
        {
            delay = remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero;
        }

        try
        {
            await Task.Delay(delay, time, router.Stopping);
        }
        catch (OperationCanceledException)
        {
            // Disposed: the next DropFinished round ends the batch.
        }
    }

    /// <summary>Removes parts whose call is over (deadline, cancellation, disposal); returns the earliest deadline left.</summary>
    private long DropFinished(List<CallPart<TEvent>> batch, string? problem)
    {
        var now = time.GetTimestamp();
        var earliest = long.MaxValue;
        for (var i = batch.Count - 1; i >= 0; i--)
        {
            var part = batch[i];
            if (part.Call.Cancellation.IsCancellationRequested)
            {
                part.Call.Cancel();
            }
            else if (router.Stopping.IsCancellationRequested)
            {
                part.Call.Fail(new ObjectDisposedException(nameof(LedgerClient), "The client was disposed before the call completed."));
            }
            else if (part.Call.Deadline <= now)
            {
                Interlocked.Add(ref statistics.EventsWithoutAnswer, part.Count);
                part.GiveUp(problem);
            }
            else
            {
                earliest = Math.Min(earliest, part.Call.Deadline);
                continue;
            }

            batch.RemoveAt(i);
        }

        return earliest;
    }

    private static (TEvent[] Events, int Count) Gather(List<CallPart<TEvent>> batch)
    {
        var count = 0;
        foreach (var part in batch)
        {
            count += part.Count;
        }

        var events = new TEvent[count];
        var next = 0;
        foreach (var part in batch)
        {
            var source = part.Call.Events.Span;
            foreach (var index in part.Indexes)
            {
                events[next++] = source[index];
            }
        }

        return (events, count);
    }

    private static void Deliver(List<CallPart<TEvent>> batch, EventAnswer[] answers, int count, INodeConnection connection)
    {
        if (answers.Length != count)
        {
            FailAll(batch, new InvalidDataException($"{connection.Address} answered {answers.Length} results for {count} events; the node and this client disagree on the protocol."));
            return;
        }

        var offset = 0;
        foreach (var part in batch)
        {
            part.Answer(answers.AsSpan(offset, part.Count));
            offset += part.Count;
        }

        Invariant.Check(offset == count);
    }

    private static void MarkMaybeApplied(List<CallPart<TEvent>> batch, FailureKind failure)
    {
        if (failure == FailureKind.MaybeApplied)
        {
            foreach (var part in batch)
            {
                part.MaybeApplied = true;
            }
        }
    }

    private static void FailAll(List<CallPart<TEvent>> batch, Exception exception)
    {
        foreach (var part in batch)
        {
            part.Call.Fail(exception);
        }

        batch.Clear();
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => b == Timeout.InfiniteTimeSpan || a <= b ? a : b;
}

/// <summary>
/// One shard's waiting parts and its requests in flight. A sender that finishes a request takes the
/// next batch itself, so a busy shard keeps exactly its in-flight limit of requests going.
/// </summary>
internal sealed class ShardQueue<TEvent>
{
    private readonly int shard;
    private readonly CreatePipeline<TEvent> pipeline;
    private readonly int inFlightMax;
    private readonly Lock gate = new();
    private readonly Queue<CallPart<TEvent>> waiting = new();
    // Invariant: 0 <= inFlight <= inFlightMax; waiting is empty whenever inFlight < inFlightMax.
    private int inFlight;

    public ShardQueue(int shard, CreatePipeline<TEvent> pipeline, int inFlightMax)
    {
        this.shard = shard;
        this.pipeline = pipeline;
        this.inFlightMax = inFlightMax;
    }

    public void Enqueue(CallPart<TEvent> part)
    {
        List<CallPart<TEvent>> batch;
        lock (gate)
        {
            waiting.Enqueue(part);
            if (inFlight == inFlightMax)
            {
                return;
            }

            inFlight++;
            batch = TakeBatch(waiting, ClientLimits.BatchEventsMax);
        }

        _ = RunAsync(batch);
    }

    private async Task RunAsync(List<CallPart<TEvent>> batch)
    {
        while (true)
        {
            try
            {
                await pipeline.SendAsync(shard, batch);
            }
            catch (Exception exception)
            {
                // A bug in the pipeline must not strand the callers: they get the exception.
                foreach (var part in batch)
                {
                    part.Call.Fail(exception);
                }
            }

            lock (gate)
            {
                Invariant.Check(inFlight >= 1);
                if (waiting.Count == 0)
                {
                    inFlight--;
                    return;
                }

                batch = TakeBatch(waiting, ClientLimits.BatchEventsMax);
            }
        }
    }

    /// <summary>
    /// Takes parts from the front while they fit in <paramref name="eventsMax"/> events (the first one
    /// always), stopping after a part that ends inside a linked chain so that no other call's events
    /// can join the chain.
    /// </summary>
    internal static List<CallPart<TEvent>> TakeBatch(Queue<CallPart<TEvent>> waiting, int eventsMax)
    {
        Invariant.Check(waiting.Count > 0);
        var batch = new List<CallPart<TEvent>>();
        var events = 0;
        while (waiting.TryPeek(out var next))
        {
            if (batch.Count > 0 && events + next.Count > eventsMax)
            {
                break;
            }

            waiting.Dequeue();
            batch.Add(next);
            events += next.Count;
            if (next.EndsOpenChain)
            {
                break;
            }
        }

        Invariant.Check(batch.Count > 0 && (events <= eventsMax || batch.Count == 1));
        return batch;
    }
}
