using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport;

namespace RaftLedger.Node.Host;

/// <summary>
/// Cross-shard protocol messages between shard leaders. A replica's driver hands the host a message for another
/// shard; the host delivers it through its own inbox when this node leads that shard, or sends it over the peer
/// transport to the node believed to lead it (<see cref="ShardMessenger"/>). Arriving messages go through the
/// inbox like Raft messages (same bound) and reach the driver only while this node leads the target shard:
/// a message for a former leader is dropped and the sender's driver retries.
/// </summary>
public sealed partial class MultiRaftHost
{
    private ShardMessenger? messenger;
    private IShardMessageSender? shardSender;
    private long droppedShardMessages;
    private long deliveredShardMessages;

    /// <summary>Cross-shard messages dropped (inbox full, too large, no leader here, no route).</summary>
    public long DroppedShardMessages => Interlocked.Read(ref droppedShardMessages);

    /// <summary>Cross-shard messages handed to a local leader's driver.</summary>
    public long DeliveredShardMessages => Interlocked.Read(ref deliveredShardMessages);

    /// <summary>Wires the cross-shard message path; called once before <see cref="Start"/>.</summary>
    internal void UseCrossShard(ShardMessenger shardMessenger, IShardMessageSender transport)
    {
        messenger = shardMessenger;
        shardSender = transport;
        foreach (var replica in replicas)
        {
            replica.ShardMessageOut = SendShardMessage;
            replica.CrossShardLog = logger;
        }
    }

    /// <summary>Transport callback (any thread): queues a message from another node's shard leader for the loop.</summary>
    public void OnShardMessage(ulong fromNode, int fromShard, ulong groupId, ReadOnlyMemory<byte> message)
    {
        var known = groupId != ClusterMap.MetaGroupId && groupId <= (ulong)views.Length && fromShard >= 0 && fromShard < views.Length;
        if (!known || message.Length > HostOptions.ShardMessageBytesMax || !TryQueueShardMessage(fromNode, fromShard, ClusterMap.ShardOfGroup(groupId), message))
        {
            Interlocked.Increment(ref droppedShardMessages);
        }
    }

    private bool TryQueueShardMessage(ulong fromNode, int fromShard, int toShard, ReadOnlyMemory<byte> message)
    {
        if (Interlocked.Increment(ref inboxPeerMessages) > HostOptions.InboxPeerMessagesMax ||
            !inbox.Writer.TryWrite(new HostInput.ShardMessage(fromNode, fromShard, toShard, message)))
        {
            Interlocked.Decrement(ref inboxPeerMessages);
            return false;
        }

        return true;
    }

    /// <summary>Scheduler thread: a driver's message from <paramref name="fromShard"/> to the leader of <paramref name="toShard"/>.</summary>
    private void SendShardMessage(int fromShard, int toShard, byte[] message)
    {
        var sent = false;
        if (toShard >= 0 && toShard < views.Length && message.Length <= HostOptions.ShardMessageBytesMax)
        {
            var local = FindReplica(toShard);
            if (local is not null && local.IsLeader)
            {
                sent = TryQueueShardMessage(options.NodeId, fromShard, toShard, message);
            }
            else if (messenger is not null && shardSender is not null)
            {
                var target = messenger.Target(toShard, views[toShard]);
                sent = target != options.NodeId && shardSender.SendShardMessage(target, fromShard, ClusterMap.GroupOf(toShard), message);
            }
        }

        if (!sent)
        {
            Interlocked.Increment(ref droppedShardMessages);
        }
    }

    /// <summary>Scheduler thread: hands a queued message to the target shard's driver if this node leads it.</summary>
    private void DeliverShardMessage(HostInput.ShardMessage input)
    {
        Interlocked.Decrement(ref inboxPeerMessages);
        if (input.FromNode != options.NodeId)
        {
            messenger?.Heard(input.FromShard, input.FromNode);
        }

        var replica = FindReplica(input.ToShard);
        if (replica is null || !replica.OnShardMessage(input.FromShard, input.Message.Span))
        {
            Interlocked.Increment(ref droppedShardMessages);
            return;
        }

        Interlocked.Increment(ref deliveredShardMessages);
    }
}
