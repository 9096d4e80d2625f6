using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>The start and end of the multi-shard bank scenarios: set up a cross-shard bank; heal, let everything finish, run every check.</summary>
internal static class BankScenario
{
    /// <summary>
    /// A bank on 5 simulated nodes and 3 shards with 4 clients sending only cross-shard payments, a
    /// <paramref name="twoPhaseFraction"/> of them two-phase, set up and funded; <paramref name="configure"/> tunes the
    /// workload's mix before it starts, <paramref name="tune"/> the cluster's options.
    /// </summary>
    public static MultiShardCluster SetUp(ulong seed, double twoPhaseFraction, Action<BankWorkload>? configure = null, Func<MultiShardOptions, MultiShardOptions>? tune = null)
    {
        var options = new MultiShardOptions
        {
            Seed = seed,
            NodeCount = 5,
            ShardCount = 3,
            ClientCount = 4,
            CrossShardFraction = 1,
            TwoPhaseFraction = twoPhaseFraction,
        };
        var cluster = new MultiShardCluster(tune?.Invoke(options) ?? options);
        cluster.SetUp(ticksMax: 2_000);
        configure?.Invoke(cluster.Workload);
        return cluster;
    }

    /// <summary>The cross-shard protocol steps after which a leader is crashed in the scenario tests.</summary>
    public static TheoryData<LedgerOperation> ProtocolSteps() => new(LedgerOperation.CrossShardPrepare, LedgerOperation.CrossShardDecide, LedgerOperation.CrossShardFinish);

    /// <summary>
    /// <paramref name="rounds"/> times: runs <paramref name="ticksBefore"/> ticks, crashes the first leader that proposes a
    /// <paramref name="step"/> entry, runs <paramref name="ticksAfter"/> ticks, then restarts every node.
    /// </summary>
    public static void CrashLeadersAfter(MultiShardCluster cluster, LedgerOperation step, int rounds = 3, int ticksBefore = 60, int ticksAfter = 20)
    {
        for (var round = 1; round <= rounds; round++)
        {
            cluster.RunTicks(ticksBefore);
            cluster.Trap = new CrashTrap(step, TrapMoment.Proposed);
            Assert.True(cluster.RunUntil(() => cluster.Trap is null, 400), $"round {round}: no leader proposed a {step} entry\n{cluster.Describe()}");
            cluster.RunTicks(ticksAfter);
            foreach (var node in cluster.Nodes)
            {
                cluster.Restart(node.Id);
            }
        }
    }

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
