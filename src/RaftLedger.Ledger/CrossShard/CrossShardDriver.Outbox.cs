using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// Messages wait per destination shard and go out when the host takes actions, many in one bundle
// (CrossShardBundle): one send per shard pair per round instead of one per transaction.
public sealed partial class CrossShardDriver
{
    // Encoded messages per destination shard (null until first used), and the destinations with messages in the
    // order they got their first one (so the actions come out in the same order on every run).
    // Invariant: outboxCount == the messages in outbox; every shard in outboxShards has a nonempty list.
    private List<byte[]>?[]? outbox;
    private readonly List<int> outboxShards = [];
    private int outboxCount;

    /// <summary>Queues a message for another shard's leader; dropped (like a lost message) when too many wait.</summary>
    private void QueueSend(int toShard, CrossShardMessage message)
    {
        Invariant.Check(toShard != shard && toShard >= 0 && toShard < shardCount);
        if (actions.Count + outboxCount >= CrossShardLimits.ActionsQueuedMax)
        {
            return; // The sender's retry sends it again.
        }

        outbox ??= new List<byte[]>?[shardCount];
        var messages = outbox[toShard] ??= [];
        if (messages.Count == 0)
        {
            outboxShards.Add(toShard);
        }

        messages.Add(message.Encode());
        outboxCount++;
    }

    /// <summary>One action per destination per bundle; a lone message goes as it is.</summary>
    private void FlushSends()
    {
        foreach (var toShard in outboxShards)
        {
            var messages = outbox![toShard]!;
            Invariant.Check(messages.Count > 0);
            for (var i = 0; i < messages.Count;)
            {
                var count = CrossShardBundle.CountFitting(messages, i);
                actions.Enqueue(new SendAction(toShard, count == 1 ? messages[i] : CrossShardBundle.Encode(messages, i, count)));
                i += count;
            }

            messages.Clear();
        }

        outboxShards.Clear();
        outboxCount = 0;
    }

    private void ClearOutbox()
    {
        foreach (var toShard in outboxShards)
        {
            outbox![toShard]!.Clear();
        }

        outboxShards.Clear();
        outboxCount = 0;
    }

    /// <summary>Each message of a bundle is taken as if it had come alone; a malformed bundle is dropped whole.</summary>
    private void OnBundle(int fromShard, ReadOnlySpan<byte> bundle)
    {
        var ranges = new List<Range>();
        if (!CrossShardBundle.TrySplit(bundle, ranges))
        {
            MessagesDropped++;
            return;
        }

        foreach (var range in ranges)
        {
            if (CrossShardBundle.IsBundle(bundle[range]))
            {
                MessagesDropped++; // Bundles are never nested.
                continue;
            }

            OnMessage(fromShard, bundle[range]);
        }
    }
}
