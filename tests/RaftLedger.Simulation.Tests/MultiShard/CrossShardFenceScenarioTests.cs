using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>
/// A coordinator answers its client once every participant leader proposed its Finish (FinishTaken), before that Finish
/// commits. Crashing a participant leader right after it proposed a Finish loses the Finish while the client may already
/// have its answer: the next leader must fence the inherited legs' accounts (reads and writes wait) until they are finished.
/// </summary>
public sealed class CrossShardFenceScenarioTests
{
    private static MultiShardCluster CrashParticipantsAfterFinish(ulong seed, MultiShardHostBug bug, int rounds)
    {
        var cluster = new MultiShardCluster(new MultiShardOptions
        {
            Seed = seed,
            NodeCount = 5,
            ShardCount = 3,
            ClientCount = 6,
            CrossShardFraction = 1,
            HostBug = bug,
            ReadAfterAcknowledgementProbability = 1,
            InitialBalance = MultiShardChaosOptions.RichBalance,
        });
        cluster.SetUp(ticksMax: 2_000);
        for (var round = 1; round <= rounds; round++)
        {
            cluster.RunTicks(15);
            cluster.Trap = new CrashTrap(LedgerOperation.CrossShardFinish, TrapMoment.Proposed);
            Assert.True(cluster.RunUntil(() => cluster.Trap is null, 400), $"round {round}: no leader proposed a Finish\n{cluster.Describe()}");
            cluster.RunTicks(40);
            foreach (var node in cluster.Nodes)
            {
                cluster.Restart(node.Id);
            }
        }

        return cluster;
    }

    [Fact]
    public void Answers_given_before_a_lost_Finish_are_seen_by_every_later_read_and_write()
    {
        var cluster = CrashParticipantsAfterFinish(seed: 41, MultiShardHostBug.None, rounds: 12);
        Assert.True(cluster.ReadsChecked >= 50, $"only {cluster.ReadsChecked} reads checked");
        BankScenario.HealAndCheck(cluster);
        Assert.True(cluster.Workload.Fates.Count(f => f.CrossShard && f.Outcome == TransferOutcome.Created) > 0, "cross-shard transfers were acknowledged");
    }

    [Fact]
    public void Real_time_check_catches_a_host_that_ignores_the_fence()
    {
        var error = Assert.Throws<SimulationFailureException>(() => CrashParticipantsAfterFinish(seed: 41, MultiShardHostBug.IgnoreFences, rounds: 12));
        Assert.Contains("not linearizable", error.Message);
    }
}
