using System.Threading.Channels;
using RaftLedger.Common;

namespace RaftLedger.Node.Transport;

/// <summary>
/// The outbound side of the connection to one remote node: a bounded queue of Raft messages for every
/// group, drained into batches (one frame each) onto whichever connection is currently attached. Messages that do not fit
/// the queue are dropped and counted: Raft retransmits, and an unbounded queue to a dead peer would not end.
/// </summary>
internal sealed class PeerLink
{
    private readonly Channel<PeerFrameMessage> queue = Channel.CreateBounded<PeerFrameMessage>(
        new BoundedChannelOptions(TransportOptions.QueueMessagesMax) { FullMode = BoundedChannelFullMode.Wait });

    // Invariant: 0 <= queuedBytes <= QueueBytesMax (+ one message while a writer races a reader).
    private long queuedBytes;
    private long droppedMessages;
    private long sentBatches;
    private int attachedStreams;

    // 1 once the peer was reported down and no stream has been attached since (one report per outage).
    private int reportedDown;

    public PeerLink(ulong remoteId)
    {
        Invariant.Check(remoteId != 0);
        RemoteId = remoteId;
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

        while (queue.Reader.TryRead(out var stale))
        {
            if (stale.Kind != PeerMessageKind.Ping)
            {
                Interlocked.Add(ref queuedBytes, -stale.Payload.Length);
                Interlocked.Increment(ref droppedMessages);
            }
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

        if (raft.Length > TransportOptions.MessageBytesMax ||
            Interlocked.Add(ref queuedBytes, raft.Length) > TransportOptions.QueueBytesMax)
        {
            if (raft.Length <= TransportOptions.MessageBytesMax)
            {
                Interlocked.Add(ref queuedBytes, -raft.Length);
            }

            Interlocked.Increment(ref droppedMessages);
            return false;
        }

        var kind = heartbeats ? PeerMessageKind.Heartbeats : fromShard >= 0 ? PeerMessageKind.Shard : PeerMessageKind.Raft;
        if (!queue.Writer.TryWrite(new PeerFrameMessage(kind, groupId, Math.Max(fromShard, 0), raft)))
        {
            Interlocked.Add(ref queuedBytes, -raft.Length);
            Interlocked.Increment(ref droppedMessages);
            return false;
        }

        return true;
    }

    /// <summary>Queues a ping (an idle connection's sign of life); not counted anywhere, and skipped when the queue is full.</summary>
    public void TryEnqueuePing() => queue.Writer.TryWrite(new PeerFrameMessage(PeerMessageKind.Ping, 0, 0, ReadOnlyMemory<byte>.Empty));

    /// <summary>A connection starts writing this link's queue: the peer counts as up again (see <see cref="TryMarkDown"/>).</summary>
    public void Attach()
    {
        Interlocked.Increment(ref attachedStreams);
        Volatile.Write(ref reportedDown, 0);
    }

    /// <summary>A connection stopped writing this link's queue.</summary>
    public void Detach()
    {
        var attached = Interlocked.Decrement(ref attachedStreams);
        Invariant.Check(attached >= 0);
    }

    /// <summary>Waits until something is queued; false when the queue will never have more.</summary>
    public ValueTask<bool> WaitToReadAsync(CancellationToken cancel) => queue.Reader.WaitToReadAsync(cancel);

    /// <summary>A batch of <see cref="TakeBatch"/> holding more than pings was written.</summary>
    public void CountSentBatch() => Interlocked.Increment(ref sentBatches);

    /// <summary>
    /// Moves everything queued meanwhile into <paramref name="batch"/>, up to <see cref="PeerFrames.FrameBytesMax"/> encoded,
    /// so all groups' messages for this peer share one frame and one send; true when it took more than pings.
    /// </summary>
    public bool TakeBatch(List<PeerFrameMessage> batch)
    {
        Invariant.Check(batch.Count == 0);
        var reader = queue.Reader;
        long bytes = 0;
        var data = false;
        while (reader.TryPeek(out var next) &&
               (batch.Count == 0 || bytes + next.EncodedBytes <= PeerFrames.FrameBytesMax))
        {
            if (!reader.TryRead(out var message))
            {
                break;
            }

            bytes += message.EncodedBytes;
            Interlocked.Add(ref queuedBytes, -message.Payload.Length);
            data |= message.Kind != PeerMessageKind.Ping;
            batch.Add(message);
        }

        Invariant.Check(bytes <= PeerFrames.FrameBytesMax);
        return data;
    }
}
