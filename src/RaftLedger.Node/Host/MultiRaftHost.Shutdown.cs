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
                logger.LogInformation("leadership hand-off before stopping: {Led} group(s) still led here", led);
                return led;
            }

            await Task.Delay(options.TickInterval, options.Time, cancel).ConfigureAwait(false);
        }
    }

    /// <summary>On the scheduler thread: asks each led group to transfer to its best follower; returns how many are led here.</summary>
    private int RequestHandOffs()
    {
        var led = 0;
        foreach (var replica in replicas)
        {
            if (!replica.IsLeader)
            {
                continue;
            }

            led++;
            var status = replica.Raft.Status();
            if (status.LeadTransferee != 0)
            {
                continue; // A transfer is already under way.
            }

            ulong target = 0, match = 0;
            foreach (var peer in status.Progress)
            {
                if (peer.Id != options.NodeId && !peer.IsLearner && peer.RecentActive && (target == 0 || peer.Match > match))
                {
                    (target, match) = (peer.Id, peer.Match);
                }
            }

            if (target != 0)
            {
                // Another node's leader balancer may hand a group back if this node is its preferred replica; the
                // next pass hands it off again, and the wait stays bounded by the timeout.
                replica.Raft.TransferLeadership(target);
            }
        }

        return led;
    }
}
