using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Core;
using RaftLedger.Common;
using RaftLedger.Node.Transport.Protos;

namespace RaftLedger.Node.Transport;

/// <summary>
/// The outbound side of the connection to one remote node: a bounded queue of Raft messages for every
/// group, drained into batches onto whichever stream is currently attached. Messages that do not fit
/// the queue are dropped and counted: Raft retransmits, and an unbounded queue to a dead peer would not end.
/// <para>A batch is handed to the pump on the thread that queues it (the channel runs the waiting pump's continuation
/// synchronously): the scheduler writes its round's batch onto the stream itself instead of waking a thread-pool
/// thread for it. While the pump's previous write is still in flight, new batches wait in the queue and that write's
/// continuation takes them. Messages queued while the sender holds its sends (<see cref="PeerTransport.HoldSends"/>)
/// collect in one batch that is queued when it releases them, so a round's messages for this peer share one write.</para>
/// </summary>
internal sealed class PeerLink
{
    private readonly Channel<QueuedBatch> queue = Channel.CreateUnbounded<QueuedBatch>(
        new UnboundedChannelOptions { AllowSynchronousContinuations = true });

    // Invariant: 0 <= queuedBytes <= QueueBytesMax (+ one message while a writer races a reader).
    private long queuedBytes;

    // Invariant: 0 <= queuedMessages <= QueueMessagesMax (+ one message while a writer races a reader). Counts held ones.
    private long queuedMessages;
    private long droppedMessages;
    private long sentBatches;
    private int attachedStreams;

    // Messages of the holding thread not yet queued (only that thread touches them; see PeerTransport.HoldSends).
    private PeerBatch? held;
    private long heldBytes;

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
            Drop(stale);
        }

        return true;
    }

    /// <summary>
    /// Queues one message; false (and counted as dropped) when it is too large, the queue is full or the peer is down. A
    /// <paramref name="fromShard"/> of 0 or more marks a cross-shard protocol message from that shard's leader;
    /// <paramref name="heartbeats"/> marks a heartbeat bundle. With <paramref name="hold"/> (only from the thread that
    /// holds its sends) the message waits in the held batch until <see cref="ReleaseHeld"/>.
    /// </summary>
    public bool TryEnqueue(ulong groupId, ReadOnlyMemory<byte> raft, int fromShard = -1, bool heartbeats = false, bool hold = false)
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

        if (Interlocked.Increment(ref queuedMessages) > TransportOptions.QueueMessagesMax)
        {
            Interlocked.Decrement(ref queuedMessages);
            Interlocked.Add(ref queuedBytes, -raft.Length);
            Interlocked.Increment(ref droppedMessages);
            return false;
        }

        var message = new PeerMessage { GroupId = groupId, Raft = UnsafeByteOperations.UnsafeWrap(raft), Heartbeats = heartbeats };
        if (fromShard >= 0)
        {
            message.ShardMessage = true;
            message.FromShard = (uint)fromShard;
        }

        if (!hold)
        {
            Queue(new QueuedBatch(new PeerBatch { Messages = { message } }, raft.Length));
            return true;
        }

        if (held is not null && heldBytes + raft.Length > TransportOptions.BatchBytesMax)
        {
            ReleaseHeld();
        }

        held ??= new PeerBatch();
        held.Messages.Add(message);
        heldBytes += raft.Length;
        return true;
    }

    /// <summary>Queues the held batch, if any (from the holding thread). A waiting pump writes it before this returns.</summary>
    public void ReleaseHeld()
    {
        if (held is null)
        {
            return;
        }

        var batch = new QueuedBatch(held, heldBytes);
        held = null;
        heldBytes = 0;
        Queue(batch);
    }

    private void Queue(QueuedBatch batch)
    {
        Invariant.Check(batch.Bytes <= TransportOptions.BatchBytesMax);
        // A batch held while the peer was reported down would reach a restarted process stale: drop it as TryMarkDown does.
        if (Volatile.Read(ref reportedDown) != 0 || !queue.Writer.TryWrite(batch))
        {
            Drop(batch);
        }
    }

    private void Drop(QueuedBatch batch)
    {
        Interlocked.Add(ref queuedBytes, -batch.Bytes);
        Interlocked.Add(ref queuedMessages, -batch.Batch.Messages.Count);
        Interlocked.Add(ref droppedMessages, batch.Batch.Messages.Count);
    }

    /// <summary>
    /// Writes queued messages to <paramref name="writer"/> in batches until cancelled or the write fails.
    /// Each batch takes everything queued meanwhile, up to <see cref="TransportOptions.BatchBytesMax"/>, so
    /// all groups' messages for this peer share one send. A batch lost with a broken stream is not retried.
    /// </summary>
    public async Task PumpAsync(IAsyncStreamWriter<PeerBatch> writer, CancellationToken cancel)
    {
        Interlocked.Increment(ref attachedStreams);
        Volatile.Write(ref reportedDown, 0);
        try
        {
            var reader = queue.Reader;
            while (await reader.WaitToReadAsync(cancel).ConfigureAwait(false))
            {
                var batch = TakeBatch(reader);
                if (batch.Messages.Count == 0)
                {
                    continue;
                }

                await writer.WriteAsync(batch, cancel).ConfigureAwait(false);
                Interlocked.Increment(ref sentBatches);
            }
        }
        finally
        {
            Interlocked.Decrement(ref attachedStreams);
        }
    }

    /// <summary>The first queued batch, with the ones after it appended while the total stays within BatchBytesMax.</summary>
    private PeerBatch TakeBatch(ChannelReader<QueuedBatch> reader)
    {
        if (!reader.TryRead(out var first))
        {
            return new PeerBatch();
        }

        var batch = first.Batch;
        var bytes = first.Bytes;
        var messages = first.Batch.Messages.Count;
        while (reader.TryPeek(out var next) && bytes + next.Bytes <= TransportOptions.BatchBytesMax)
        {
            if (!reader.TryRead(out next))
            {
                break;
            }

            bytes += next.Bytes;
            messages += next.Batch.Messages.Count;
            batch.Messages.Add(next.Batch.Messages);
        }

        Interlocked.Add(ref queuedBytes, -bytes);
        Interlocked.Add(ref queuedMessages, -messages);
        Invariant.Check(bytes <= TransportOptions.BatchBytesMax);
        return batch;
    }

    /// <summary>A batch in the queue and the Raft bytes it carries.</summary>
    private readonly record struct QueuedBatch(PeerBatch Batch, long Bytes);
}
