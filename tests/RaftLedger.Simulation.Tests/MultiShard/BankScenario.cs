using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>The end of every multi-shard bank scenario: heal, let everything finish, run every check.</summary>
internal static class BankScenario
{
    /// <summary>
    /// Heals, restarts every node, answers every request, waits for the cross-shard protocol to finish and replicas to
    /// catch up, then runs every check. With <paramref name="letPendingExpire"/> it first lets every pending timeout
    /// pass, so pending (and closing) transfers that were never posted or voided expire and their expiry finishes too.
    /// </summary>
    public static void HealAndCheck(MultiShardCluster cluster, bool letPendingExpire = false)
    {
        cluster.Network.Heal();
        foreach (var node in cluster.Nodes)
        {
            cluster.Restart(node.Id);
        }

        cluster.ClientsEnabled = false;
        Assert.True(cluster.RunUntil(() => cluster.Clients.All(c => c.IsIdle), 2_000), $"requests unanswered\n{cluster.Describe()}");
        Assert.True(cluster.RunUntil(cluster.CrossShardQuiet, 2_000), $"cross-shard work unfinished\n{cluster.Describe()}");
        if (letPendingExpire)
        {
            cluster.RunTicks((BankWorkload.PendingTimeoutSecondsMax * 10) + 1);
            Assert.True(cluster.RunUntil(cluster.CrossShardQuiet, 2_000), $"expiries unfinished\n{cluster.Describe()}");
        }

        Assert.True(cluster.RunUntil(cluster.AllApplied, 500), $"replicas did not catch up\n{cluster.Describe()}");
        cluster.CheckLogs();
        cluster.CheckReplicasAgree();
        BankChecker.CheckQuiet(cluster);
    }
}
