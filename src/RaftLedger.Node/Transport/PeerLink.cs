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
/// </summary>
internal sealed class PeerLink
{
    private readonly Channel<PeerMessage> queue = Channel.CreateBounded<PeerMessage>(
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
            Interlocked.Add(ref queuedBytes, -stale.Raft.Length);
            Interlocked.Increment(ref droppedMessages);
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

        var message = new PeerMessage { GroupId = groupId, Raft = UnsafeByteOperations.UnsafeWrap(raft), Heartbeats = heartbeats };
        if (fromShard >= 0)
        {
            message.ShardMessage = true;
            message.FromShard = (uint)fromShard;
        }

        if (!queue.Writer.TryWrite(message))
        {
            Interlocked.Add(ref queuedBytes, -raft.Length);
            Interlocked.Increment(ref droppedMessages);
            return false;
        }

        return true;
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

    private PeerBatch TakeBatch(ChannelReader<PeerMessage> reader)
    {
        var batch = new PeerBatch();
        long bytes = 0;
        while (reader.TryPeek(out var next) &&
               (batch.Messages.Count == 0 || bytes + next.Raft.Length <= TransportOptions.BatchBytesMax))
        {
            if (!reader.TryRead(out var message))
            {
                break;
            }

            bytes += message.Raft.Length;
            Interlocked.Add(ref queuedBytes, -message.Raft.Length);
            batch.Messages.Add(message);
        }

        Invariant.Check(bytes <= TransportOptions.BatchBytesMax);
        return batch;
    }
}
