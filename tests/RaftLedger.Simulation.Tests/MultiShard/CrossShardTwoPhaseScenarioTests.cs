using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>
/// Two-phase transfers across shards in the multi-shard simulator: pending transfers between accounts on two
/// shards, then posts (full or partial) and voids coordinated by the pending transfer's home, also while that
/// home's or a leg's leader crashes at each protocol step. The bank checks count pending amounts: per ledger
/// pending debits == pending credits, each pending transfer resolved at most once, nothing left unfinished.
/// </summary>
public sealed class CrossShardTwoPhaseScenarioTests
{
    private static MultiShardCluster SetUpBank(ulong seed) =>
        BankScenario.SetUp(seed, twoPhaseFraction: 0.6);

    private static int Acknowledged(MultiShardCluster cluster, TransferFlags kind) =>
        cluster.Workload.Fates.Count(f => (f.Submitted.Flags & kind) != 0 && f.Outcome == TransferOutcome.Created);

    [Fact]
    public void Pending_transfers_across_shards_are_posted_and_voided_on_both_legs()
    {
        var cluster = SetUpBank(seed: 601);
        cluster.RunTicks(600);
        BankScenario.HealAndCheck(cluster);
        Assert.True(Acknowledged(cluster, TransferFlags.Pending) >= 10, $"only {Acknowledged(cluster, TransferFlags.Pending)} pending transfers acknowledged");
        Assert.True(Acknowledged(cluster, TransferFlags.PostPendingTransfer) >= 3, $"only {Acknowledged(cluster, TransferFlags.PostPendingTransfer)} posts acknowledged");
        Assert.True(Acknowledged(cluster, TransferFlags.VoidPendingTransfer) >= 1, $"only {Acknowledged(cluster, TransferFlags.VoidPendingTransfer)} voids acknowledged");
        Assert.Contains(cluster.Workload.Fates, f => f.Status is CreateTransferResult.PendingTransferAlreadyPosted or CreateTransferResult.PendingTransferAlreadyVoided);
        Assert.True(cluster.ReadsChecked > 0);
        var chained = cluster.Workload.Fates.Count(f => (f.Submitted.Flags & TransferFlags.Linked) != 0 && f.Outcome == TransferOutcome.Created &&
            (f.Submitted.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0);
        Assert.True(chained >= 1, "a post or void inside a cross-shard chain was acknowledged");
    }

    [Fact]
    public void Pending_transfers_with_a_timeout_expire_at_their_home_and_later_posts_get_pending_transfer_expired()
    {
        var cluster = SetUpBank(seed: 611);
        cluster.RunTicks(600);
        BankScenario.HealAndCheck(cluster);

        // Every timeout passes; then each unresolved pending transfer with one must be expired on both legs.
        cluster.RunTicks((BankWorkload.PendingTimeoutSecondsMax * 10) + 1);
        Assert.True(cluster.RunUntil(cluster.CrossShardQuiet, 2_000), $"expiries unfinished\n{cluster.Describe()}");
        BankChecker.CheckQuiet(cluster);
        var timed = cluster.Workload.Fates.Where(f => f.Submitted.TimeoutSeconds != 0 && f.Outcome == TransferOutcome.Created).ToList();
        Assert.True(timed.Count >= 5, $"only {timed.Count} pending transfers with a timeout acknowledged");
        Assert.Contains(cluster.Workload.Fates, f => f.Status == CreateTransferResult.PendingTransferExpired);
        Assert.Contains(timed, f => cluster.Leader(f.Home)?.Ledger?.GetPendingStatus(f.Submitted.Id) == PendingStatus.Expired);
    }

    [Theory]
    [MemberData(nameof(BankScenario.ProtocolSteps), MemberType = typeof(BankScenario))]
    public void Crashing_the_leader_after_a_protocol_step_of_two_phase_traffic_loses_nothing(LedgerOperation step)
    {
        var cluster = SetUpBank(seed: 700 + (ulong)step);
        BankScenario.CrashLeadersAfter(cluster, step);

        BankScenario.HealAndCheck(cluster);
        Assert.True(Acknowledged(cluster, TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer) > 0, "posts or voids were acknowledged");
    }
}
