using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>
/// A coordinator answers its client once its Decide is applied and every participant leader fenced its legs (Fenced) or
/// proposed its Finish (FinishTaken), before that Finish commits or even arrives. A fenced leg closes its accounts to
/// reads and writes until the Finish is proposed; crashing a participant leader right after it proposed a Finish loses the
/// Finish while the client may already have its answer: the next leader must fence the inherited legs' accounts until
/// they are finished.
/// </summary>
public sealed class CrossShardFenceScenarioTests
{
    private static MultiShardCluster CrashParticipantsAfterFinish(ulong seed, MultiShardHostBug bug)
    {
        var cluster = BankScenario.SetUp(seed, twoPhaseFraction: 0, tune: options => options with
        {
            ClientCount = 6,
            HostBug = bug,
            ReadAfterAcknowledgementProbability = 1,
            InitialBalance = MultiShardChaosOptions.RichBalance,
        });
        BankScenario.CrashLeadersAfter(cluster, LedgerOperation.CrossShardFinish, rounds: 12, ticksBefore: 15, ticksAfter: 40);
        return cluster;
    }

    [Fact]
    public void Answers_given_before_a_lost_Finish_are_seen_by_every_later_read_and_write()
    {
        var cluster = CrashParticipantsAfterFinish(seed: 41, MultiShardHostBug.None);
        Assert.True(cluster.ReadsChecked >= 50, $"only {cluster.ReadsChecked} reads checked");
        BankScenario.HealAndCheck(cluster);
        Assert.True(cluster.Workload.Fates.Count(f => f.CrossShard && f.Outcome == TransferOutcome.Created) > 0, "cross-shard transfers were acknowledged");
    }

    [Fact]
    public void Real_time_check_catches_a_host_that_ignores_the_fence()
    {
        var error = Assert.Throws<SimulationFailureException>(() => CrashParticipantsAfterFinish(seed: 41, MultiShardHostBug.IgnoreFences));
        Assert.Contains("not linearizable", error.Message);
    }

    [Fact]
    public void Real_time_check_catches_a_host_that_ignores_the_fences_of_announced_legs_without_any_crash()
    {
        var cluster = BankScenario.SetUp(seed: 43, twoPhaseFraction: 0, tune: options => options with
        {
            ClientCount = 6,
            HostBug = MultiShardHostBug.IgnoreFences,
            ReadAfterAcknowledgementProbability = 1,
            InitialBalance = MultiShardChaosOptions.RichBalance,
        });
        var error = Assert.Throws<SimulationFailureException>(() => cluster.RunTicks(600));
        Assert.Contains("not linearizable", error.Message);
    }
}
