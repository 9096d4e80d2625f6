using RaftLedger.Node.Host;

namespace RaftLedger.Node.Tests.Transport;

/// <summary>
/// Waits for a condition with a bounded timeout. Polling a condition is a barrier, not a sleep used as
/// synchronisation: the test proceeds the moment the state it needs exists, and fails with a message if
/// it never does.
/// </summary>
internal static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    public static Task Until(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        Until(condition, () => what, timeout);

    /// <summary>As above; <paramref name="what"/> is evaluated at the timeout, so it can describe the state then.</summary>
    public static async Task Until(Func<bool> condition, Func<string> what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out waiting for: {what()}");
            }

            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>
    /// Waits until every shard on every given node is led by its preferred replica. Right after start (and after a
    /// node returns) the leader balancer moves leaderships, and a move interrupts the requests in flight on that
    /// shard (their outcome becomes unknown); a test that asserts exact results starts from a settled cluster.
    /// </summary>
    public static Task LeadersSettled(IEnumerable<NodeHost> nodes, TimeSpan? timeout = null) =>
        Until(() => nodes.All(n => n.Service.IsReady && n.Scheduler.LeadersSettled), () =>
            "every shard to be led by its preferred replica: " + string.Join("; ", nodes.Select(n => $"node {n.Options.NodeId} sees " + string.Join(", ",
                Enumerable.Range(0, n.Scheduler.ShardCount).Select(s => n.Scheduler.View(s)).Where(v => v.Hosted)
                    .Select(v => $"shard {v.Shard} leader {v.Leader} term {v.Term} (preferred {n.Map.Shards[v.Shard].PreferredLeader})")))), timeout);
}
