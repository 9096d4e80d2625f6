using Microsoft.Extensions.Logging;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// Planned stops (SIGTERM): before the process exits, every group this node leads hands its leadership to the
/// most up-to-date active follower (thesis §3.10), so clients see a transfer of a few milliseconds instead of an
/// election after the leader vanished. The wait is bounded: a group whose transfer does not finish in time falls
/// back to the followers' failover.
/// </summary>
public sealed partial class MultiRaftHost
{
    /// <summary>Hand-offs tried per group during a planned stop.</summary>
    private const int HandOffAttemptsMax = 2;

    private readonly Dictionary<ulong, int> handOffAttempts = []; // Group id → hand-offs tried during the planned stop.
    private bool handingOffLeadership; // Set on the loop when a planned stop begins; the balancer then stands down.

    /// <summary>Hands off the leadership of every group led here; returns how many groups were still led at the deadline.</summary>
    public async Task<int> HandOffLeadershipAsync(TimeSpan timeout, CancellationToken cancel)
    {
        var deadline = options.Time.GetTimestamp() + (long)(timeout.TotalSeconds * options.Time.TimestampFrequency);
        while (true)
        {
            int led;
            try
            {
                led = await QueryAsync(_ => RequestHandOffs()).WaitAsync(timeout, options.Time, cancel).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException or ObjectDisposedException)
            {
                return -1;
            }

            if (led == 0 || options.Time.GetTimestamp() >= deadline)
            {
                logger.LogInformation("leadership hand-off before stopping: this node still leads {Led} of its groups", led);
                return led;
            }

            await Task.Delay(options.TickInterval, options.Time, cancel).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// On the scheduler thread: asks each led group to transfer to its best follower; returns how many groups are
    /// led here and still worth waiting for. A group that came back after <see cref="HandOffAttemptsMax"/> hand-offs
    /// is not waited for: when the whole cluster stops at once, the followers are stopping too and would only hand
    /// it back and forth until the deadline.
    /// </summary>
    private int RequestHandOffs()
    {
        handingOffLeadership = true; // From now on this node never asks for a leadership back.
        var led = 0;
        foreach (var replica in replicas)
        {
            led += RequestHandOff(replica.Raft, replica.GroupId);
        }

        if (meta is not null)
        {
            led += RequestHandOff(meta.Raft, Placement.ClusterMap.MetaGroupId);
        }

        return led;
    }

    /// <summary>1 when the group is led here and worth waiting for (a transfer was asked or is under way), else 0.</summary>
    private int RequestHandOff(RaftNode raft, ulong groupId)
    {
        if (raft.Role != RaftRole.Leader)
        {
            return 0;
        }

        var status = raft.Status();
        var attempts = handOffAttempts.GetValueOrDefault(groupId);
        if (status.LeadTransferee != 0)
        {
            return 1; // A transfer is already under way.
        }

        if (attempts >= HandOffAttemptsMax)
        {
            return 0;
        }

        var target = HandOffTarget(status);
        if (target != 0)
        {
            handOffAttempts[groupId] = attempts + 1;
            raft.TransferLeadership(target);
        }

        return 1;
    }

    /// <summary>The connected, replicating follower with the longest log, or 0 when there is none.</summary>
    private ulong HandOffTarget(RaftStatus status)
    {
        ulong target = 0, match = 0;
        foreach (var peer in status.Progress)
        {
            // Not RecentActive: the leader clears it at every quorum check (see BalanceLeadership).
            if (peer.Id != options.NodeId && !peer.IsLearner && peer.State == ProgressState.Replicate && sender!.IsConnected(peer.Id) &&
                (target == 0 || peer.Match > match))
            {
                (target, match) = (peer.Id, peer.Match);
            }
        }

        return target;
    }
}
