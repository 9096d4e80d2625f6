using RaftLedger.Node.Transport;

namespace RaftLedger.Node.Host;

public sealed partial class MultiRaftHost
{
    private readonly HeartbeatCoalescer heartbeats = new();

    /// <summary>Heartbeat bundles sent (one per destination node per round that had heartbeats for it).</summary>
    public long HeartbeatBundlesSent => heartbeats.BundlesSent;

    /// <summary>Transport callback: unpacks a heartbeat bundle into one Raft message per group and queues them for the loop.</summary>
    public void OnHeartbeats(ulong fromNode, ReadOnlyMemory<byte> bundle)
    {
        var beats = new List<CoalescedHeartbeat>();
        if (HeartbeatBundle.TryDecode(bundle, beats) is not null)
        {
            Interlocked.Increment(ref droppedPeerMessages);
            return;
        }

        foreach (var beat in beats)
        {
            if (Interlocked.Increment(ref inboxPeerMessages) > HostOptions.InboxPeerMessagesMax ||
                !inbox.Writer.TryWrite(new HostInput.Peer(beat.GroupId, beat.ToMessage(fromNode, options.NodeId))))
            {
                Interlocked.Decrement(ref inboxPeerMessages);
                Interlocked.Increment(ref droppedPeerMessages);
            }
        }
    }
}
