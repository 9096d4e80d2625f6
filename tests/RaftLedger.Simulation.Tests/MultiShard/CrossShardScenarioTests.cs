using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>
/// The cross-shard protocol hosted in the multi-shard simulator: transfers between accounts on different shards
/// commit on both legs, and crashing the leader that proposed or applied any protocol step loses nothing and
/// leaves nothing prepared or unfinished once the cluster heals.
/// </summary>
public sealed class CrossShardScenarioTests
{
    private static MultiShardCluster SetUpBank(ulong seed, int nodes, int shards, double crossShardFraction, MultiShardHostBug bug = MultiShardHostBug.None)
    {
        var cluster = new MultiShardCluster(new MultiShardOptions
        {
            Seed = seed,
            NodeCount = nodes,
            ShardCount = shards,
            ClientCount = 4,
            CrossShardFraction = crossShardFraction,
            HostBug = bug,
            InitialBalance = MultiShardChaosOptions.RichBalance,
        });
        cluster.SetUp(ticksMax: 2_000);
        return cluster;
    }

    /// <summary>Heals, restarts every node, answers every request, waits for the protocol to finish and replicas to catch up, then runs every check.</summary>

    [Fact]
    public void Cross_shard_transfers_commit_on_both_legs_without_faults()
    {
        var cluster = SetUpBank(seed: 101, nodes: 4, shards: 3, crossShardFraction: 1);
        cluster.RunTicks(300);
        BankScenario.HealAndCheck(cluster);
        var acknowledged = cluster.Workload.Fates.Count(f => f.CrossShard && f.Outcome == TransferOutcome.Created);
        Assert.True(acknowledged >= 20, $"only {acknowledged} cross-shard transfers acknowledged");
        Assert.True(cluster.ProposedByOperation.GetValueOrDefault(LedgerOperation.CrossShardDecide) > 0);
    }

    [Fact]
    public void Reads_during_cross_shard_traffic_never_show_an_undecided_reservation()
    {
        var cluster = SetUpBank(seed: 103, nodes: 3, shards: 3, crossShardFraction: 1);
        cluster.RunTicks(400);
        Assert.True(cluster.ReadsChecked >= 50, $"only {cluster.ReadsChecked} reads checked");
        BankScenario.HealAndCheck(cluster);
    }

    [Fact]
    public void Real_time_check_catches_reads_that_show_undecided_reservations()
    {
        // The buggy host reads accounts with the reservations of prepared legs counted as pending: under
        // cross-shard traffic a read soon finds one (what verify --cross-shard reported on a real cluster).
        var cluster = SetUpBank(seed: 103, nodes: 3, shards: 3, crossShardFraction: 1, bug: MultiShardHostBug.ReadsShowReservations);
        var error = Assert.Throws<SimulationFailureException>(() => cluster.RunTicks(400));
        Assert.Contains("undecided cross-shard reservation", error.Message);
    }

    public static TheoryData<LedgerOperation, TrapMoment> ProtocolSteps()
    {
        var data = new TheoryData<LedgerOperation, TrapMoment>();
        foreach (var operation in new[] { LedgerOperation.CrossShardPrepare, LedgerOperation.CrossShardDecide, LedgerOperation.CrossShardFinish, LedgerOperation.CrossShardRetire })
        {
            data.Add(operation, TrapMoment.Proposed);
            data.Add(operation, TrapMoment.Applied);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ProtocolSteps))]
    public void Crashing_the_leader_right_after_a_protocol_step_loses_nothing(LedgerOperation step, TrapMoment moment)
    {
        var cluster = SetUpBank(seed: 200 + (ulong)step * 2 + (ulong)moment, nodes: 5, shards: 4, crossShardFraction: 0.8);
        for (var round = 1; round <= 3; round++)
        {
            cluster.RunTicks(30);
            cluster.Trap = new CrashTrap(step, moment);
            Assert.True(cluster.RunUntil(() => cluster.Trap is null, 400), $"round {round}: no leader {moment.ToString().ToLowerInvariant()} a {step} entry\n{cluster.Describe()}");
            cluster.RunTicks(20);
            foreach (var node in cluster.Nodes)
            {
                cluster.Restart(node.Id);
            }
        }

        Assert.Equal(3, cluster.TrapsFired[(step, moment)]);
        BankScenario.HealAndCheck(cluster);
        Assert.True(cluster.Workload.Fates.Count(f => f.CrossShard && f.Outcome == TransferOutcome.Created) > 0, "cross-shard transfers were acknowledged");
    }

    [Fact]
    public void A_coordinator_crash_before_its_decision_is_resolved_without_that_node()
    {
        // The home leader's node dies the moment it proposes a Decide and stays down: the shard's new leader
        // (which may or may not hold that Decide) and the participants must still finish or abort every
        // transaction within the abandonment timeout, and answer every client.
        var cluster = SetUpBank(seed: 301, nodes: 5, shards: 3, crossShardFraction: 1);
        cluster.RunTicks(40);
        cluster.Trap = new CrashTrap(LedgerOperation.CrossShardDecide, TrapMoment.Proposed);
        Assert.True(cluster.RunUntil(() => cluster.Trap is null, 400), "no Decide was proposed");
        cluster.RunTicks(1);
        var down = cluster.Nodes.Single(n => !n.IsUp);
        cluster.ClientsEnabled = false;
        var abandonTicks = (int)(cluster.Options.CrossShard.AbandonTimeoutNs / MultiShardLimits.TickNs);
        Assert.True(
            cluster.RunUntil(() => cluster.Clients.All(c => c.IsIdle) && cluster.CrossShardQuiet(), (4 * abandonTicks) + 200),
            $"node {down.Id} down: work unfinished\n{cluster.Describe()}");
        Assert.False(down.IsUp);
        BankScenario.HealAndCheck(cluster);
    }
}
