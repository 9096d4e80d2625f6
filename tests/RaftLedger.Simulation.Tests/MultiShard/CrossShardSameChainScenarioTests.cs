using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>
/// Linked chains that create a pending transfer across shards and post or void it in the same chain, in the
/// multi-shard simulator: the bank checks find every leg applied exactly once, every pending transfer resolved at most
/// once with the status its resolution says, money conserved, also while a leader crashes after each protocol step.
/// </summary>
public sealed class CrossShardSameChainScenarioTests
{
    private static MultiShardCluster SetUpBank(ulong seed) =>
        BankScenario.SetUp(seed, twoPhaseFraction: 0.7, workload =>
        {
            workload.BalancingOrClosingShare = 0.1;
            workload.SameChainShare = 0.5;
        });

    // Acknowledged posts/voids of a pending transfer created in the same chain (only those are linked pending transfers).
    private static int SameChainCreated(MultiShardCluster cluster) => cluster.Workload.Fates.Count(f =>
        (f.Submitted.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0 &&
        f.Outcome == TransferOutcome.Created && cluster.Workload.TryGetFate(f.Submitted.PendingId, out var p) &&
        (p.Submitted.Flags & (TransferFlags.Linked | TransferFlags.Pending)) == (TransferFlags.Linked | TransferFlags.Pending));

    [Fact]
    public void Chains_create_and_resolve_their_own_pending_transfers_across_shards()
    {
        var cluster = SetUpBank(seed: 931);
        cluster.RunTicks(600);
        BankScenario.HealAndCheck(cluster, letPendingExpire: true);
        Assert.True(SameChainCreated(cluster) >= 5, $"only {SameChainCreated(cluster)} same-chain posts/voids were acknowledged");
        Assert.True(cluster.ReadsChecked > 0);
    }

    [Theory]
    [MemberData(nameof(BankScenario.ProtocolSteps), MemberType = typeof(BankScenario))]
    public void Crashing_the_leader_after_a_protocol_step_of_same_chain_traffic_loses_nothing(LedgerOperation step)
    {
        var cluster = SetUpBank(seed: 940 + (ulong)step);
        BankScenario.CrashLeadersAfter(cluster, step);

        BankScenario.HealAndCheck(cluster, letPendingExpire: true);
        Assert.True(SameChainCreated(cluster) > 0, "same-chain posts/voids were acknowledged");
    }
}
