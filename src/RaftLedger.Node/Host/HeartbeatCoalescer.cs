using System.Runtime.InteropServices;
using RaftLedger.Common;
using RaftLedger.Node.Transport;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// Collects the heartbeats (and responses) every group sends in one scheduler round and sends them as one
/// <see cref="HeartbeatBundle"/> per destination node, so idle traffic between two nodes is one message per round
/// however many groups they share. Scheduler thread only.
/// </summary>
internal sealed class HeartbeatCoalescer
{
    // Per destination node: the round's heartbeats and, at the same positions, the replicas that sent them
    // (told when the bundle is dropped). Invariant: both lists have the same length.
    private readonly Dictionary<ulong, (List<CoalescedHeartbeat> Beats, List<ShardReplica> Senders)> pending = [];
    private long bundlesSent;

    /// <summary>Bundles handed to the transport so far.</summary>
    public long BundlesSent => Interlocked.Read(ref bundlesSent);

    /// <summary>Takes <paramref name="message"/> into its destination's bundle; false when it must be sent on its own.</summary>
    public bool TryAdd(ShardReplica replica, Message message)
    {
        if (!CoalescedHeartbeat.Fits(message))
        {
            return false;
        }

        if (!pending.TryGetValue(message.To, out var lists))
        {
            lists = ([], []);
            pending.Add(message.To, lists);
        }

        lists.Beats.Add(CoalescedHeartbeat.From(replica.GroupId, message));
        lists.Senders.Add(replica);
        return true;
    }

    /// <summary>Sends every destination's bundle; a dropped bundle counts as unreachable for each group in it.</summary>
    public void Flush(IRaftMessageSender sender)
    {
        foreach (var (node, lists) in pending)
        {
            Invariant.Check(lists.Beats.Count == lists.Senders.Count);
            var beats = CollectionsMarshal.AsSpan(lists.Beats);
            for (var start = 0; start < beats.Length; start += HeartbeatBundle.BeatsMax)
            {
                var count = Math.Min(HeartbeatBundle.BeatsMax, beats.Length - start);
                if (sender.SendHeartbeats(node, HeartbeatBundle.Encode(beats.Slice(start, count))))
                {
                    Interlocked.Increment(ref bundlesSent);
                    continue;
                }

                for (var i = start; i < start + count; i++)
                {
                    lists.Senders[i].Raft.ReportUnreachable(node);
                }
            }

            lists.Beats.Clear();
            lists.Senders.Clear();
        }
    }
}
