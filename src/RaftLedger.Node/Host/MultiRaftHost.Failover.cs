using Microsoft.Extensions.Logging;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// Fast failover. Waiting for the election timeout (randomized in [ET, 2ET), 1-2 s with the defaults) makes a leader
/// crash cost 1-2 s of unavailability. But a crashed process on the same host or LAN is noticed at once: its TCP
/// connections are reset and redials are refused. When the transport reports a peer down, every follower here
/// whose group that peer led forgets the leader (so it grants votes at once, <see cref="RaftNode.ForgetLeader"/>)
/// and one survivor per group campaigns a few ticks later. The survivors campaign in placement order (the group's
/// replica list without the dead node, a fixed stagger apart), so two of them never split the vote, and a survivor
/// whose attempt fails (its log is behind, or the other has not noticed yet) is followed by the next one.
/// A false report (a stream reset while the leader lives) is harmless: pre-vote fails against followers that still
/// hear the leader, no term changes, and the next heartbeat restores the leader.
/// </summary>
public sealed partial class MultiRaftHost
{
    // Group id → the tick at which this replica campaigns if the group still has no leader then.
    // Invariant: only groups whose replica forgot its leader because of a peer-down report are here.
    private readonly Dictionary<ulong, long> failoverCampaigns = [];
    private long failoverCampaignsStarted;

    /// <summary>Campaigns this node started because a group's leader was reported down (for tests and metrics).</summary>
    public long FailoverCampaignsStarted => Interlocked.Read(ref failoverCampaignsStarted);

    /// <summary>Transport callback: the peer's process is probably gone; handled on the scheduler loop.</summary>
    public void OnPeerDown(ulong node) => inbox.Writer.TryWrite(new HostInput.PeerDown(node));

    private void OnPeerDownInput(ulong node)
    {
        if (!options.FastFailover)
        {
            return;
        }

        foreach (var replica in replicas)
        {
            if (replica.Raft.Leader != node || !replica.Raft.ForgetLeader())
            {
                continue;
            }

            var rank = SurvivorRank(replica.Replicas, node, options.NodeId);
            var at = ticks + options.FailoverCampaignDelayTicks + (rank * (long)options.FailoverCampaignStaggerTicks);
            failoverCampaigns[replica.GroupId] = at;
            logger.LogInformation("shard {Shard}: leader node {Node} is down; forgot it, campaigning in {Ticks} ticks unless a leader appears",
                replica.Shard, node, at - ticks);
        }
    }

    /// <summary>Position of <paramref name="self"/> among the group's replicas once <paramref name="dead"/> is left out.</summary>
    public static int SurvivorRank(IReadOnlyList<ulong> replicas, ulong dead, ulong self)
    {
        var rank = 0;
        foreach (var id in replicas)
        {
            if (id == self)
            {
                return rank;
            }

            if (id != dead)
            {
                rank++;
            }
        }

        Invariant.Check(false, "a replica's own node is in its group's replica list");
        return rank;
    }

    /// <summary>On each tick: campaigns whose time has come, for groups that still have no leader.</summary>
    private void RunFailoverCampaigns()
    {
        if (failoverCampaigns.Count == 0)
        {
            return;
        }

        foreach (var replica in replicas)
        {
            if (!failoverCampaigns.TryGetValue(replica.GroupId, out var at) || at > ticks)
            {
                continue;
            }

            failoverCampaigns.Remove(replica.GroupId);
            if (replica.Raft.Leader == 0 && replica.Raft.Role is RaftRole.Follower or RaftRole.PreCandidate)
            {
                logger.LogInformation("shard {Shard}: campaigning after its leader went down (term {Term})", replica.Shard, replica.Raft.Term);
                replica.Raft.Campaign();
                Interlocked.Increment(ref failoverCampaignsStarted);
            }
        }
    }
}
