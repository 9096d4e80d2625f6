using System.Collections.Concurrent;
using RaftLedger.Common;

namespace RaftLedger.Node.Transport;

/// <summary>
/// The outbound side of the connection to one remote node: a bounded queue of Raft messages for every
/// group, drained into batches (one frame each) onto the connection attached last. Messages that do not fit
/// the queue are dropped and counted: Raft retransmits, and an unbounded queue to a dead peer would not end.
/// <para>
/// Who writes: whoever queues a message drains the queue on its own thread when no drain is running
/// (<see cref="Kick"/>), so a message costs no thread hand-off: socket writes complete at once while the kernel's send
/// buffer has room, and only a write that must wait continues on the thread that completes it. A drain is exclusive
/// (<c>draining</c>), so one frame is written at a time; a message queued during a drain is taken by that drain, which
/// looks at the queue again after it lets go. Before, every message woke a pump task on the thread pool, a wake-up per
/// message on each side of every Raft round (docs/PERFORMANCE.md, "Twenty-fourth session").
/// </para>
/// </summary>
internal sealed class PeerLink
{
    private readonly ConcurrentQueue<PeerFrameMessage> queue = new();

    // Invariant: 0 <= queuedMessages <= QueueMessagesMax and 0 <= queuedBytes <= QueueBytesMax (each + one message while
    // a writer races a reader).
    private int queuedMessages;
    private long queuedBytes;
    private long droppedMessages;
    private long sentBatches;
    private int attachedStreams;

    // 1 once the peer was reported down and no stream has been attached since (one report per outage).
    private int reportedDown;

    // 1 while a drain owns the attached connection's writer (only the owner takes from the queue and writes).
    private int draining;

    // The connection attached last, which drains write to; null while none is attached.
    private IPeerFrameWriter? writer;

    // While set, queued messages wait for Kick instead of being written at once (see PeerTransport.HoldSends).
    private readonly Func<bool> holding;

    public PeerLink(ulong remoteId, Func<bool>? holding = null)
    {
        Invariant.Check(remoteId != 0);
        RemoteId = remoteId;
        this.holding = holding ?? (static () => false);
    }

    public ulong RemoteId { get; }

    public long DroppedMessages => Interlocked.Read(ref droppedMessages);

    public long SentBatches => Interlocked.Read(ref sentBatches);

    public bool IsConnected => Volatile.Read(ref attachedStreams) > 0;

    /// <summary>True from <see cref="TryMarkDown"/> until a stream is attached again: the peer is known to be gone.</summary>
    public bool IsReportedDown => Volatile.Read(ref reportedDown) != 0;

    /// <summary>
    /// True the first time it is called after the last attached stream; false while already reported. While the peer
    /// is down, queued and new messages are dropped: they would reach a restarted process stale, and a sender that
    /// learns of the drop (Raft's ReportUnreachable) stops pipelining to it and probes instead.
    /// </summary>
    public bool TryMarkDown()
    {
        if (Interlocked.Exchange(ref reportedDown, 1) != 0)
        {
            return false;
        }

        // Only a drain takes from the queue; one still finishing a write to the old connection keeps what it finds
        // there and stops at its next look (the connection is no longer the attached one).
        if (Interlocked.CompareExchange(ref draining, 1, 0) == 0)
        {
            while (queue.TryDequeue(out var stale))
            {
                Taken(stale);
                if (stale.Kind != PeerMessageKind.Ping)
                {
                    Interlocked.Increment(ref droppedMessages);
                }
            }

            // Let go the way a drain does: a connection attached meanwhile found the drain held and left its queue to us.
            EndDrain();
        }

        return true;
    }

    /// <summary>
    /// Queues one message; false (and counted as dropped) when it is too large, the queue is full or the peer is down. A
    /// <paramref name="fromShard"/> of 0 or more marks a cross-shard protocol message from that shard's leader;
    /// <paramref name="heartbeats"/> marks a heartbeat bundle.
    /// </summary>
    public bool TryEnqueue(ulong groupId, ReadOnlyMemory<byte> raft, int fromShard = -1, bool heartbeats = false)
    {
        if (Volatile.Read(ref reportedDown) != 0)
        {
            Interlocked.Increment(ref droppedMessages);
            return false;
        }

        if (raft.Length > TransportOptions.MessageBytesMax || !TryReserve(raft.Length))
        {
            Interlocked.Increment(ref droppedMessages);
            return false;
        }

        var kind = heartbeats ? PeerMessageKind.Heartbeats : fromShard >= 0 ? PeerMessageKind.Shard : PeerMessageKind.Raft;
        queue.Enqueue(new PeerFrameMessage(kind, groupId, Math.Max(fromShard, 0), raft));
        if (!holding())
        {
            Kick();
        }

        return true;
    }

    /// <summary>Queues a ping (an idle connection's sign of life) and writes it; not counted anywhere, and skipped when the queue is full.</summary>
    public void TryEnqueuePing()
    {
        if (TryReserve(0))
        {
            queue.Enqueue(new PeerFrameMessage(PeerMessageKind.Ping, 0, 0, ReadOnlyMemory<byte>.Empty));
            Kick();
        }
    }

    /// <summary>Counts a message of <paramref name="bytes"/> into the queue's limits; false (nothing counted) when it does not fit.</summary>
    private bool TryReserve(int bytes)
    {
        if (Interlocked.Increment(ref queuedMessages) > TransportOptions.QueueMessagesMax)
        {
            Interlocked.Decrement(ref queuedMessages);
            return false;
        }

        if (Interlocked.Add(ref queuedBytes, bytes) > TransportOptions.QueueBytesMax)
        {
            Interlocked.Add(ref queuedBytes, -bytes);
            Interlocked.Decrement(ref queuedMessages);
            return false;
        }

        return true;
    }

    /// <summary>A message left the queue: its share of the limits is free again.</summary>
    private void Taken(in PeerFrameMessage message)
    {
        Interlocked.Decrement(ref queuedMessages);
        Interlocked.Add(ref queuedBytes, -message.Payload.Length);
    }

    /// <summary>
    /// A connection starts writing this link's queue: it becomes the one drains write to, the peer counts as up again
    /// (see <see cref="TryMarkDown"/>), and what was queued meanwhile is written.
    /// </summary>
    public void Attach(IPeerFrameWriter connection)
    {
        Interlocked.Increment(ref attachedStreams);
        Volatile.Write(ref reportedDown, 0);
        // A full fence, not a release: a sender that queued before this and found no writer left its message to this Kick.
        Interlocked.Exchange(ref writer, connection);
        Kick();
    }

    /// <summary>A connection stopped writing this link's queue; drains no longer write to it.</summary>
    public void Detach(IPeerFrameWriter connection)
    {
        Interlocked.CompareExchange(ref writer, null, connection);
        var attached = Interlocked.Decrement(ref attachedStreams);
        Invariant.Check(attached >= 0);
    }

    /// <summary>True while <paramref name="connection"/> is the one drains write to.</summary>
    public bool IsWriter(IPeerFrameWriter connection) => ReferenceEquals(Volatile.Read(ref writer), connection);

    /// <summary>
    /// Writes what is queued to the attached connection on this thread, unless a drain is already running (it will take
    /// what is queued) or no connection is attached (the next one to attach writes it). Never blocks: a write that cannot
    /// complete at once continues where it completes (<see cref="IPeerFrameWriter.Drain"/>), and its drain ends there.
    /// </summary>
    public void Kick()
    {
        while (!queue.IsEmpty && Volatile.Read(ref draining) == 0)
        {
            var connection = Volatile.Read(ref writer);
            if (connection is null || Interlocked.CompareExchange(ref draining, 1, 0) != 0)
            {
                return;
            }

            if (Interlocked.Read(ref queuedBytes) > TransportOptions.InlineDrainBytesMax)
            {
                // Bulk (batched appends, catch-up): a loopback send copies the bytes through to the receiver on the
                // sending thread, so the host's loop would pay for it before its fsync. A pool thread pays instead.
                ThreadPool.UnsafeQueueUserWorkItem(new DrainWork(this, connection), preferLocal: false);
                return;
            }

            if (!connection.Drain())
            {
                return; // The drain continues asynchronously and calls EndDrain when it is done.
            }

            // Let go, then look again: a message queued after the drain's last look saw draining = 1 and left it to us.
            Interlocked.Exchange(ref draining, 0);
        }
    }

    /// <summary>A drain handed to a pool thread (<see cref="Kick"/>): the link's drain is held for it.</summary>
    private sealed record DrainWork(PeerLink Link, IPeerFrameWriter Connection) : IThreadPoolWorkItem
    {
        public void Execute()
        {
            if (Connection.Drain())
            {
                Link.EndDrain();
            }
        }
    }

    /// <summary>An asynchronous drain has finished: let go of the writer and write whatever was queued meanwhile.</summary>
    public void EndDrain()
    {
        Interlocked.Exchange(ref draining, 0);
        Kick();
    }

    /// <summary>A batch of <see cref="TakeBatch"/> holding more than pings was written.</summary>
    public void CountSentBatch() => Interlocked.Increment(ref sentBatches);

    /// <summary>
    /// Moves everything queued meanwhile into <paramref name="batch"/>, up to <see cref="PeerFrames.FrameBytesMax"/> encoded,
    /// so all groups' messages for this peer share one frame and one send; true when it took more than pings.
    /// </summary>
    public bool TakeBatch(List<PeerFrameMessage> batch)
    {
        Invariant.Check(batch.Count == 0);
        Invariant.Check(Volatile.Read(ref draining) == 1, "only the drain takes from the queue");
        long bytes = 0;
        var data = false;
        while (queue.TryPeek(out var next) &&
               (batch.Count == 0 || bytes + next.EncodedBytes <= PeerFrames.FrameBytesMax))
        {
            if (!queue.TryDequeue(out var message))
            {
                break;
            }

            bytes += message.EncodedBytes;
            Taken(message);
            data |= message.Kind != PeerMessageKind.Ping;
            batch.Add(message);
        }

        Invariant.Check(bytes <= PeerFrames.FrameBytesMax);
        return data;
    }
}

/// <summary>The writing side of an attached peer connection, as its link drives it.</summary>
internal interface IPeerFrameWriter
{
    /// <summary>
    /// Called by the link with its drain held: writes what is queued (<see cref="PeerLink.TakeBatch"/>) as frames. True when
    /// it finished on this thread; false when a write is still in flight, in which case it calls
    /// <see cref="PeerLink.EndDrain"/> once done.
    /// </summary>
    bool Drain();
}
