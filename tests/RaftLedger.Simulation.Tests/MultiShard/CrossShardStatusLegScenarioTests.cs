using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>
/// Posts and voids inside linked chains coordinated by another shard than their pending transfer's home (a status leg
/// holds the pending transfer there from Prepare to Finish) in the multi-shard simulator: the bank checks find every
/// pending transfer resolved at most once and every leg applied exactly once, also while a leader crashes after each
/// protocol step.
/// </summary>
public sealed class CrossShardStatusLegScenarioTests
{
    private static MultiShardCluster SetUpBank(ulong seed) =>
        BankScenario.SetUp(seed, twoPhaseFraction: 0.7, workload =>
        {
            workload.BalancingOrClosingShare = 0.1;
            workload.ChainPostElsewhereShare = 1;
        });

    // Acknowledged posts/voids that led a chain coordinated by another shard than their pending transfer's home.
    private static int ChainedElsewhere(MultiShardCluster cluster) => cluster.Workload.Fates.Count(f =>
        (f.Submitted.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0 &&
        (f.Submitted.Flags & TransferFlags.Linked) != 0 && f.Outcome == TransferOutcome.Created &&
        cluster.Workload.TryGetFate(f.Submitted.PendingId, out var p) && p.Home != f.Home);

    [Fact]
    public void Chains_post_and_void_pending_transfers_of_other_shards()
    {
        var cluster = SetUpBank(seed: 911);
        cluster.RunTicks(600);
        BankScenario.HealAndCheck(cluster, letPendingExpire: true);
        Assert.True(ChainedElsewhere(cluster) >= 5, $"only {ChainedElsewhere(cluster)} chained posts/voids of another shard's pending transfer were acknowledged");
        Assert.True(cluster.ReadsChecked > 0);
    }

    [Theory]
    [MemberData(nameof(BankScenario.ProtocolSteps), MemberType = typeof(BankScenario))]
    public void Crashing_the_leader_after_a_protocol_step_of_status_leg_traffic_loses_nothing(LedgerOperation step)
    {
        var cluster = SetUpBank(seed: 920 + (ulong)step);
        BankScenario.CrashLeadersAfter(cluster, step, rounds: 5); // Enough traffic that some chained post/void gets through every seed's crashes.

        BankScenario.HealAndCheck(cluster, letPendingExpire: true);
        Assert.True(ChainedElsewhere(cluster) > 0, "chained posts/voids of another shard's pending transfer were acknowledged");
    }
}
