using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>
/// Balancing and closing transfers across shards in the multi-shard simulator: balancing amounts are clamped (the
/// stored amount is what moved, and guarded customers are never overdrawn), closing transfers close their account
/// until voided or expired (the bank checks compare every account's closed flag with the committed closing
/// transfers), also while a leader crashes after each protocol step.
/// </summary>
public sealed class CrossShardBalancingClosingScenarioTests
{
    private static MultiShardCluster SetUpBank(ulong seed) =>
        BankScenario.SetUp(seed, twoPhaseFraction: 0.6, workload => workload.BalancingOrClosingShare = 0.7);

    private static Transfer Stored(MultiShardCluster cluster, TransferFate fate)
    {
        var ledger = cluster.Leader(fate.Home)?.Ledger;
        Assert.NotNull(ledger);
        Assert.True(ledger.TryLookupTransfer(fate.Submitted.Id, out var t), $"transfer {fate.Submitted.Id} is stored at its home");
        return t;
    }

    [Fact]
    public void Balancing_transfers_move_at_most_what_balances_and_closing_ones_close_until_resolved()
    {
        var cluster = SetUpBank(seed: 811);
        cluster.RunTicks(600);
        BankScenario.HealAndCheck(cluster, letPendingExpire: true);
        const TransferFlags balancing = TransferFlags.BalancingDebit | TransferFlags.BalancingCredit;
        const TransferFlags closing = TransferFlags.ClosingDebit | TransferFlags.ClosingCredit;
        var balanced = cluster.Workload.Fates.Where(f => (f.Submitted.Flags & balancing) != 0 && f.Outcome == TransferOutcome.Created).ToList();
        var clamped = balanced.Count(f => Stored(cluster, f).Amount < f.Submitted.Amount);
        Assert.True(clamped >= 5, $"only {clamped} of {balanced.Count} balancing transfers acknowledged were clamped");
        Assert.Contains(balanced, f => Stored(cluster, f).Amount == f.Submitted.Amount);
        var closed = cluster.Workload.Fates.Count(f => (f.Submitted.Flags & closing) != 0 && f.Outcome == TransferOutcome.Created);
        Assert.True(closed >= 3, $"only {closed} closing transfers acknowledged");
        Assert.Contains(cluster.Workload.Fates, f => f.Status is CreateTransferResult.DebitAccountAlreadyClosed or CreateTransferResult.CreditAccountAlreadyClosed);
        Assert.True(cluster.ReadsChecked > 0);
    }

    [Theory]
    [MemberData(nameof(BankScenario.ProtocolSteps), MemberType = typeof(BankScenario))]
    public void Crashing_the_leader_after_a_protocol_step_of_balancing_and_closing_traffic_loses_nothing(LedgerOperation step)
    {
        var cluster = SetUpBank(seed: 820 + (ulong)step);
        BankScenario.CrashLeadersAfter(cluster, step);

        BankScenario.HealAndCheck(cluster, letPendingExpire: true);
        Assert.True(cluster.Workload.Fates.Count(f => (f.Submitted.Flags & (TransferFlags.BalancingDebit | TransferFlags.BalancingCredit)) != 0 &&
            f.Outcome == TransferOutcome.Created) > 0, "balancing transfers were acknowledged");
    }
}
