using System.Collections.Concurrent;
using Grpc.Core;
using RaftLedger.Common;
using RaftLedger.Common.Placement;

namespace RaftLedger.Client.Internal;

/// <summary>
/// Automatic batching and safe retries for one kind of create call. A call is split into one part
/// per shard, and each part waits in the queue of the node that leads its shard (a fallback node when
/// the leader is unknown or failed recently). A node's queue sends at once when fewer than
/// <see cref="LedgerClientOptions.RequestsInFlightPerNodeMax"/> requests to that node are in flight
/// (no added latency when idle), and otherwise the part leaves with every other part waiting for that
/// node, whatever their shards, in the next request (up to <see cref="ClientLimits.BatchEventsMax"/>
/// events). The node splits the request by shard again and persists all its shards' entries of one
/// scheduler round with one fsync, so one request per node costs far less than one per shard.
/// Events sent to a node only as a fallback (their shard's leader is unknown or failed recently) wait
/// in a separate queue of that node: the node holds such a request until the shard has elected a
/// leader, and the events of the shards it leads must not wait with them.
/// </summary>
internal sealed class CreatePipeline<TEvent>
{
    private readonly EventKind<TEvent> kind;
    private readonly ClusterRouter router;
    private readonly LedgerClientOptions options;
    private readonly TimeProvider time;
    private readonly StatisticsCounters statistics;
    // Two queues per node slot (leader, fallback); slots live as long as the router, so queues are never removed.
    private readonly ConcurrentDictionary<QueueKey, NodeQueue<TEvent>> queues = new();

    public CreatePipeline(EventKind<TEvent> kind, ClusterRouter router, LedgerClientOptions options, TimeProvider time, StatisticsCounters statistics)
    {
        this.kind = kind;
        this.router = router;
        this.options = options;
        this.time = time;
        this.statistics = statistics;
    }

    /// <summary>Routes the call's parts to their nodes' queues; the call completes when every part has an answer or gave up.</summary>
    public async Task SubmitAsync(CreateCall<TEvent> call)
    {
        var route = await router.GetTableAsync(call.Deadline, call.Cancellation);
        var events = call.Events.Span;
        if (events.Length == 1)
        {
            // The common single-event call skips the split's bookkeeping.
            call.ExpectParts(1);
            var shard = ShardRouter.ShardOf(kind.RoutingId(events[0]), route.ShardCount);
            var part = new CallPart<TEvent>(call, shard, [0], kind.IsLinked(events[0]));
            QueueOf(TargetOf(route, shard)).Enqueue(part);
            return;
        }

        var split = ShardSplit.Split(events, route.ShardCount, kind);
        var parts = new List<CallPart<TEvent>>(split.Count);
        foreach (var (shard, indexes) in split)
        {
            parts.Add(new CallPart<TEvent>(call, shard, indexes, kind.IsLinked(events[indexes[^1]])));
        }

        call.ExpectParts(parts.Count);
        Route(route, parts);
    }

    /// <summary>
    /// Puts parts into their target nodes' queues, the parts bound for one node together, so that
    /// one call's parts for several shards led by one node can leave in one request.
    /// </summary>
    private void Route(RouteTable route, List<CallPart<TEvent>> parts)
    {
        Invariant.Check(parts.Count > 0);
        var groups = new List<(QueueKey Queue, List<CallPart<TEvent>> Parts)>();
        CallPart<TEvent>? open = null;
        foreach (var part in parts)
        {
            // A part that ends inside an open chain ends its request: added last, it does not push the
            // call's other parts for that node into the next request.
            if (part.EndsOpenChain)
            {
                open = part;
                continue;
            }

            GroupOf(groups, TargetOf(route, part.Shard)).Add(part);
        }

        if (open is not null)
        {
            GroupOf(groups, TargetOf(route, open.Shard)).Add(open);
        }

        foreach (var (queue, queueParts) in groups)
        {
            QueueOf(queue).Enqueue(queueParts);
        }
    }

    private static List<CallPart<TEvent>> GroupOf(List<(QueueKey Queue, List<CallPart<TEvent>> Parts)> groups, QueueKey queue)
    {
        foreach (var (known, parts) in groups)
        {
            if (known == queue)
            {
                return parts;
            }
        }

        var added = new List<CallPart<TEvent>>();
        groups.Add((queue, added));
        return added;
    }

    private QueueKey TargetOf(RouteTable route, int shard)
    {
        var node = router.Target(route, shard, out var toLeader);
        return new QueueKey(node, Fallback: !toLeader);
    }

    private NodeQueue<TEvent> QueueOf(QueueKey queue) =>
        queues.GetOrAdd(queue, static (key, pipeline) => new NodeQueue<TEvent>(key, pipeline, pipeline.options.RequestsInFlightPerNodeMax), this);

    /// <summary>
    /// Sends one batch to <paramref name="queue"/>'s node once. Parts whose call is over (deadline,
    /// cancellation, disposal) leave first, and parts that this queue should no longer send (their
    /// shard is now led elsewhere, or the node failed) move to their current target's queue. On a failure that retrying can fix, the parts are routed again after a backoff
    /// (by their shards' leaders then), with the same events and ids; this sender's slot is freed at
    /// once so the node's other traffic does not wait for the backoff.
    /// </summary>
    internal async Task SendAsync(QueueKey queue, List<CallPart<TEvent>> batch)
    {
        var earliestDeadline = DropFinished(batch);
        var route = router.Table;
        Invariant.Check(route is not null);
        MoveRerouted(route!, queue, batch);
        if (batch.Count == 0)
        {
            return;
        }

        var (events, count) = Gather(batch);
        Count(route!, queue, batch, count);
        var timeout = Min(options.RequestTimeout, router.Remaining(earliestDeadline));
        var connection = queue.Node.Connection;
        try
        {
            var answers = await kind.SendAsync(connection, events, count, timeout, router.Stopping);
            Deliver(batch, answers, count, connection);
            return;
        }
        catch (RpcException exception) when (!router.Stopping.IsCancellationRequested)
        {
            var failure = RetryPolicy.Classify(exception);
            var problem = $"{connection.Address}: {exception.Status.StatusCode}: {exception.Status.Detail}";
            if (failure == FailureKind.Fatal)
            {
                FailAll(batch, new LedgerRequestException($"The cluster refused the request ({problem}). Nothing was applied; fix the request, retrying it unchanged will not help.", exception));
                return;
            }

            var attempt = MarkFailed(batch, failure, problem);
            router.ReportFailure(connection, nodeLooksDown: !RetryPolicy.NodeAnswered(exception));
            _ = RetryLaterAsync(batch, attempt);
        }
        catch (Exception exception) when (router.Stopping.IsCancellationRequested)
        {
            FailAll(batch, new ObjectDisposedException(nameof(LedgerClient), $"The client was disposed while a request was in flight; its outcome is unknown. {exception.Message}"));
        }
    }

    /// <summary>Moves the parts that <paramref name="queue"/> should no longer send to their shards' current targets.</summary>
    private void MoveRerouted(RouteTable route, QueueKey queue, List<CallPart<TEvent>> batch)
    {
        List<CallPart<TEvent>>? moved = null;
        for (var i = batch.Count - 1; i >= 0; i--)
        {
            if (!router.StillTargets(route, batch[i].Shard, queue.Node, queue.Fallback))
            {
                (moved ??= []).Insert(0, batch[i]);
                batch.RemoveAt(i);
            }
        }

        if (moved is not null)
        {
            Route(route, moved);
        }
    }

    /// <summary>After the backoff of a failed request, its parts still running are routed by the current map.</summary>
    private async Task RetryLaterAsync(List<CallPart<TEvent>> batch, int attempt)
    {
        try
        {
            await BackOffAsync(attempt, router.Remaining(DropFinished(batch)));
            DropFinished(batch);
            if (batch.Count > 0)
            {
                var route = router.Table;
                Invariant.Check(route is not null);
                Route(route!, batch);
            }
        }
        catch (Exception exception)
        {
            // A bug here must not strand the callers: they get the exception.
            FailAll(batch, exception);
        }
    }

    private void Count(RouteTable route, QueueKey queue, List<CallPart<TEvent>> batch, int count)
    {
        var retry = false;
        var toLeader = !queue.Fallback;
        foreach (var part in batch)
        {
            retry |= part.FailedAttempts > 0;
            // MoveRerouted kept only the parts whose shard this node leads in a leader queue.
            Invariant.Check(queue.Fallback || ClusterRouter.IsLeader(route, part.Shard, queue.Node));
        }

        Interlocked.Increment(ref statistics.CreateRequests);
        Interlocked.Add(ref statistics.CreateRequestEvents, count);
        if (retry)
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
            // Disposed: the next DropFinished ends the parts.
        }
    }

    /// <summary>Removes parts whose call is over (deadline, cancellation, disposal); returns the earliest deadline left.</summary>
    private long DropFinished(List<CallPart<TEvent>> batch)
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
                part.GiveUp(part.Problem);
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

    /// <summary>
    /// Records a failed attempt on every part of the request. The node fails a request whole when any
    /// of its shards' parts failed, so every part shares the request's fate: all may have been
    /// applied after a 504 or a lost connection. Returns the backoff attempt number (the most failed part's).
    /// </summary>
    private static int MarkFailed(List<CallPart<TEvent>> batch, FailureKind failure, string problem)
    {
        var attempt = 0;
        foreach (var part in batch)
        {
            part.MaybeApplied |= failure == FailureKind.MaybeApplied;
            part.Problem = problem;
            attempt = Math.Max(attempt, part.FailedAttempts);
            part.FailedAttempts++;
        }

        return attempt;
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

/// <summary>A node's create queue: the one for the shards it leads, or the one for parts it gets as a fallback.</summary>
internal readonly record struct QueueKey(NodeSlot Node, bool Fallback);

/// <summary>
/// One node's waiting parts (of any shards) and its requests in flight. A sender that finishes a
/// request takes the next batch itself, so a busy node keeps exactly its in-flight limit of requests going.
/// </summary>
internal sealed class NodeQueue<TEvent>
{
    private readonly QueueKey queue;
    private readonly CreatePipeline<TEvent> pipeline;
    private readonly int inFlightMax;
    private readonly Lock gate = new();
    private readonly Queue<CallPart<TEvent>> waiting = new();
    // Invariant: 0 <= inFlight <= inFlightMax; waiting is empty whenever inFlight < inFlightMax.
    private int inFlight;

    public NodeQueue(QueueKey queue, CreatePipeline<TEvent> pipeline, int inFlightMax)
    {
        Invariant.Check(inFlightMax >= 1);
        this.queue = queue;
        this.pipeline = pipeline;
        this.inFlightMax = inFlightMax;
    }

    public void Enqueue(CallPart<TEvent> part)
    {
        List<CallPart<TEvent>> batch;
        lock (gate)
        {
            waiting.Enqueue(part);
            if (!TryStart(out batch))
            {
                return;
            }
        }

        _ = RunAsync(batch);
    }

    /// <summary>Enqueues several parts at once, so that with a free slot they leave in one request.</summary>
    public void Enqueue(List<CallPart<TEvent>> parts)
    {
        List<CallPart<TEvent>> batch;
        lock (gate)
        {
            foreach (var part in parts)
            {
                waiting.Enqueue(part);
            }

            if (!TryStart(out batch))
            {
                return;
            }
        }

        _ = RunAsync(batch);
    }

    private bool TryStart(out List<CallPart<TEvent>> batch)
    {
        Invariant.Check(inFlight <= inFlightMax);
        if (inFlight == inFlightMax)
        {
            batch = [];
            return false;
        }

        inFlight++;
        batch = TakeBatch(waiting, ClientLimits.BatchEventsMax);
        return true;
    }

    private async Task RunAsync(List<CallPart<TEvent>> batch)
    {
        while (true)
        {
            try
            {
                await pipeline.SendAsync(queue, batch);
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
    /// always), stopping after a part that ends inside a linked chain so that no other part's events
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
