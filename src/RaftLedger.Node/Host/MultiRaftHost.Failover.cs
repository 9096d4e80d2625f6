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
    /// <summary>Failover campaign slots tried per outage before leaving the group to ordinary elections.</summary>
    private const int FailoverSlotsPerSurvivor = 3;

    // Group id → the failover in progress for it: when its leader was reported down and which slots are done.
    // Invariant: only groups whose replica forgot its leader because of a peer-down report are here.
    private readonly Dictionary<ulong, FailoverState> failovers = [];
    private long failoverCampaignsStarted;

    /// <summary>Campaigns this node started because a group's leader was reported down (for tests and metrics).</summary>
    public long FailoverCampaignsStarted => Interlocked.Read(ref failoverCampaignsStarted);

    /// <summary>Transport callback: the peer's process is probably gone; handled on the scheduler loop.</summary>
    public void OnPeerDown(ulong node) => inbox.Writer.TryWrite(new HostInput.PeerDown(node));

    private void OnPeerDownInput(ulong node)
    {
        retention?.NodeDown(node);
        if (!options.FastFailover)
        {
            return;
        }

        foreach (var replica in replicas)
        {
            ForgetDownLeader(replica.Raft, replica.GroupId, replica.Replicas, node);
        }

        if (meta is not null)
        {
            ForgetDownLeader(meta.Raft, Placement.ClusterMap.MetaGroupId, meta.Voters, node);
        }
    }

    private void ForgetDownLeader(RaftNode raft, ulong groupId, ulong[] members, ulong node)
    {
        if (raft.Leader != node || !raft.ForgetLeader())
        {
            return;
        }

        var rank = SurvivorRank(members, node, options.NodeId);
        failovers[groupId] = new FailoverState(options.Time.GetTimestamp(), rank, members.Length - 1);
        logger.LogInformation("{Group}: leader node {Node} is down; forgot it, campaigning in slot {Rank} unless a leader appears",
            Placement.ClusterMap.DescribeGroup(groupId), node, rank);
    }

    /// <summary>Position of <paramref name="self"/> among the group's replicas once <paramref name="dead"/> is left out.</summary>
    public static int SurvivorRank(IReadOnlyList<ulong> replicas, ulong dead, ulong self)
    {
        ArgumentNullException.ThrowIfNull(replicas);
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

    /// <summary>
    /// The failover slot open at <paramref name="elapsed"/> after the leader went down: -1 before the first, then one
    /// slot per stagger. Slot k belongs to survivor k mod survivors, so survivors take turns and never collide; a
    /// turn that fails (log behind, split, the other had not noticed yet) is followed by the next survivor's.
    /// Slots follow the clock, not tick counts, so ticks that pile up while the loop is slow cannot bunch them.
    /// </summary>
    public static int FailoverSlot(TimeSpan elapsed, TimeSpan delay, TimeSpan stagger) =>
        elapsed < delay ? -1 : (int)Math.Min(int.MaxValue, (elapsed - delay).Ticks / stagger.Ticks);

    /// <summary>On each tick: survivors campaign in their slots, for groups that still have no leader.</summary>
    private void RunFailoverCampaigns()
    {
        if (failovers.Count == 0)
        {
            return;
        }

        var delay = options.TickInterval * options.FailoverCampaignDelayTicks;
        var stagger = options.TickInterval * options.FailoverCampaignStaggerTicks;
        foreach (var replica in replicas)
        {
            var backlog = replica.Raft.CommitIndex > replica.Applied ? replica.Raft.CommitIndex - replica.Applied : 0;
            RunFailoverCampaign(replica.Raft, replica.GroupId, delay, stagger, backlog);
        }

        if (meta is not null)
        {
            RunFailoverCampaign(meta.Raft, Placement.ClusterMap.MetaGroupId, delay, stagger, applyBacklog: 0);
        }
    }

    private void RunFailoverCampaign(RaftNode raft, ulong groupId, TimeSpan delay, TimeSpan stagger, ulong applyBacklog)
    {
        if (!failovers.TryGetValue(groupId, out var failover))
        {
            return;
        }

        var slot = FailoverSlot(options.Time.GetElapsedTime(failover.DownTimestamp), delay, stagger);
        var slotsMax = failover.Survivors * FailoverSlotsPerSurvivor;
        if (raft.Leader != 0 || raft.Role == RaftRole.Leader || slot >= slotsMax)
        {
            failovers.Remove(groupId); // A leader appeared, or ordinary elections take over.
            return;
        }

        if (slot > failover.LastSlot && slot % failover.Survivors == failover.Rank)
        {
            failovers[groupId] = failover with { LastSlot = slot };
            if (PassesFailoverTurn(slot, failover.Survivors, applyBacklog))
            {
                logger.LogInformation("{Group}: passing failover slot {Slot}: {Backlog} committed entries still to apply", Placement.ClusterMap.DescribeGroup(groupId), slot, applyBacklog);
                return;
            }

            logger.LogInformation("{Group}: campaigning in failover slot {Slot} (term {Term})", Placement.ClusterMap.DescribeGroup(groupId), slot, raft.Term);
            raft.Campaign();
            Interlocked.Increment(ref failoverCampaignsStarted);
        }
    }

    /// <summary>
    /// Whether a survivor lets its turn in <paramref name="slot"/> pass. A replica still applying a backlog (just
    /// restarted, or catching up) would win the election as easily as any other, but as leader it accepts no write
    /// until it has applied every entry before its term, so the shard would have a leader and no commits for as long
    /// as the backlog takes. It passes its first turn only: if no other survivor wins, it campaigns in its next one.
    /// </summary>
    public static bool PassesFailoverTurn(int slot, int survivors, ulong applyBacklogEntries) =>
        slot < survivors && applyBacklogEntries > HostOptions.FailoverApplyBacklogEntriesMax;

    /// <summary>A failover in progress: when the leader was reported down, our turn, and the last slot we campaigned in.</summary>
    private readonly record struct FailoverState(long DownTimestamp, int Rank, int Survivors, int LastSlot = -1);
}
