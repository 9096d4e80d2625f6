using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>Hand-written multi-shard scenarios, and proofs that the bank checkers catch what they claim to catch.</summary>
public sealed class MultiShardScenarioTests
{
    private static MultiShardCluster SetUpBank(ulong seed, int nodes = 3, int shards = 3, int clients = 3, MultiShardHostBug bug = MultiShardHostBug.None, double readAfterAcknowledgement = 0.5)
    {
        var cluster = new MultiShardCluster(new MultiShardOptions
        {
            Seed = seed,
            NodeCount = nodes,
            ShardCount = shards,
            ClientCount = clients,
            HostBug = bug,
            ReadAfterAcknowledgementProbability = readAfterAcknowledgement,
        });
        cluster.SetUp(ticksMax: 2_000);
        return cluster;
    }

    private static void Quiesce(MultiShardCluster cluster)
    {
        cluster.ClientsEnabled = false;
        Assert.True(cluster.RunUntil(() => cluster.Clients.All(c => c.IsIdle), 2_000), $"requests unanswered\n{cluster.Describe()}");
        Assert.True(cluster.RunUntil(cluster.AllApplied, 500), $"replicas did not catch up\n{cluster.Describe()}");
    }

    [Fact]
    public void Set_up_creates_and_funds_every_account_on_every_replica_of_its_shard()
    {
        var cluster = SetUpBank(seed: 11, nodes: 5, shards: 4);
        Assert.True(cluster.RunUntil(cluster.AllApplied, 500));
        for (var shard = 0; shard < 4; shard++)
        {
            Assert.Equal(3, cluster.ReplicasOf(shard).Select(r => r.NodeId).Distinct().Count());
            foreach (var replica in cluster.ReplicasOf(shard))
            {
                foreach (var account in cluster.Workload.AccountsOf(shard).Where(a => !a.IsBank))
                {
                    Assert.True(replica.Ledger!.TryLookupAccount(account.Id, out var found), $"account missing on {replica}");
                    Assert.Equal((UInt128)cluster.Options.InitialBalance, found.CreditsPosted);
                }
            }
        }

        BankChecker.CheckQuiet(cluster);
    }

    [Fact]
    public void Single_shard_transfers_keep_every_acknowledgement_when_each_shard_leader_crashes()
    {
        var cluster = SetUpBank(seed: 21);
        for (var shard = 0; shard < cluster.Options.ShardCount; shard++)
        {
            cluster.RunTicks(60);
            var leader = cluster.Leader(shard);
            Assert.NotNull(leader);
            cluster.Crash(leader.NodeId);
            cluster.RunTicks(40);
            cluster.Restart(leader.NodeId);
        }

        Quiesce(cluster);
        Assert.True(cluster.CrashCount >= cluster.Options.ShardCount);
        Assert.True(cluster.Workload.Fates.Count(f => f.Outcome == TransferOutcome.Created) > 20, "the workload moved money");
        cluster.CheckReplicasAgree();
        BankChecker.CheckQuiet(cluster);
    }

    [Fact]
    public void Leader_timestamps_increase_per_shard_across_leader_changes()
    {
        var cluster = SetUpBank(seed: 31, shards: 2);
        var last = new ulong[2];
        for (var round = 0; round < 6; round++)
        {
            cluster.RunTicks(50);
            for (var shard = 0; shard < 2; shard++)
            {
                var leader = cluster.Leader(shard);
                if (leader is null)
                {
                    continue;
                }

                Assert.True(leader.Ledger!.LastTimestamp >= last[shard], $"shard {shard} timestamp went back");
                last[shard] = leader.Ledger.LastTimestamp;
                if (round % 2 == 0)
                {
                    leader.RunningCore.TransferLeadership((ulong)cluster.ReplicasOf(shard).First(r => r != leader).NodeId);
                }
            }
        }

        Assert.All(last, t => Assert.True(t > 0));
        Quiesce(cluster);
        BankChecker.CheckQuiet(cluster);
    }

    [Fact]
    public void Checker_catches_a_host_that_acknowledges_before_the_ledger_decided()
    {
        // The buggy host answers created on propose; transfers the ledger then refuses (exceeds_credits) are
        // acknowledged but never committed: the checker must report them lost. (No reads: the real-time check
        // would catch this bug first.)
        var cluster = SetUpBank(seed: 41, bug: MultiShardHostBug.AcknowledgeOnPropose, readAfterAcknowledgement: 0);
        cluster.RunTicks(600);
        Quiesce(cluster);
        var error = Assert.Throws<SimulationFailureException>(() => BankChecker.CheckQuiet(cluster));
        Assert.Contains("lost", error.Message);
    }

    [Fact]
    public void Real_time_check_catches_reads_served_before_the_read_index_is_applied()
    {
        // The buggy host serves an account read from a replica that may lag (a follower that has not applied
        // the entry yet): a read that starts after a transfer was acknowledged misses it.
        var error = Assert.Throws<SimulationFailureException>(() => SetUpBank(seed: 43, bug: MultiShardHostBug.StaleReads).RunTicks(600));
        Assert.Contains("not linearizable", error.Message);
    }

    [Fact]
    public void Reads_after_acknowledgements_are_served_and_checked_without_faults()
    {
        var cluster = SetUpBank(seed: 45);
        cluster.RunTicks(300);
        Quiesce(cluster);
        Assert.True(cluster.RunUntil(() => cluster.ReadsOutstanding == 0, 100));
        Assert.True(cluster.ReadsChecked >= 50, $"only {cluster.ReadsChecked} reads checked");
        BankChecker.CheckQuiet(cluster);
    }

    [Fact]
    public void Checker_catches_a_replica_whose_ledger_diverged()
    {
        var cluster = SetUpBank(seed: 51);
        Quiesce(cluster);
        var replica = cluster.ReplicasOf(1)[2];
        var bank = cluster.Workload.AccountsOf(1)[0].Id;
        var customer = cluster.Workload.AccountsOf(1)[1].Id;

        // A host bug: one replica applies a transfer that was never committed.
        var results = new CreateTransferResult[1];
        replica.Ledger!.CreateTransfers([new Transfer { Id = 77, DebitAccountId = bank, CreditAccountId = customer, Amount = 5, Ledger = 1, Code = 1 }],
            replica.Ledger.LastTimestamp + 1, results);
        Assert.Equal(CreateTransferResult.Created, results[0]);
        var error = Assert.Throws<SimulationFailureException>(cluster.CheckReplicasAgree);
        Assert.Contains("fingerprints differ", error.Message);
    }

    [Fact]
    public void Checker_catches_a_transfer_no_client_submitted()
    {
        var cluster = SetUpBank(seed: 61, shards: 2);
        Quiesce(cluster);
        var bank = cluster.Workload.AccountsOf(0)[0].Id;
        var customer = cluster.Workload.AccountsOf(0)[1].Id;
        foreach (var replica in cluster.ReplicasOf(0))
        {
            var results = new CreateTransferResult[1];
            replica.Ledger!.CreateTransfers([new Transfer { Id = 99, DebitAccountId = bank, CreditAccountId = customer, Amount = 5, Ledger = 1, Code = 1 }],
                replica.Ledger.LastTimestamp + 1, results);
        }

        var error = Assert.Throws<SimulationFailureException>(() => BankChecker.CheckQuiet(cluster));
        Assert.Contains("99", error.Message);
    }

    [Fact]
    public void Same_seed_replays_the_same_run()
    {
        var a = MultiShardChaos.Execute(7, new MultiShardChaosOptions());
        var b = MultiShardChaos.Execute(7, new MultiShardChaosOptions());
        Assert.True(a.Passed, a.ToString());
        Assert.Equal(a.ToString(), b.ToString());
        Assert.Equal(a.Ticks, b.Ticks);
        Assert.Equal(a.MessagesSent, b.MessagesSent);
    }

    [Fact]
    public void Limits_relate_as_the_simulator_needs()
    {
        Assert.True(MultiShardLimits.NodesMin >= MultiShardLimits.ReplicasPerShard, "every shard needs three distinct nodes");
        Assert.True(MultiShardLimits.NodesMax <= SimLimits.NodesMax);
        Assert.True(MultiShardLimits.RequestTransfersMax <= LedgerLimits.BatchEventsMax);
        var raft = MultiShardOptions.DefaultRaftConfig(1);
        Assert.True(RaftLedger.Ledger.CrossShard.CrossShardLimits.CommandBytesMax <= raft.MessageBytesMax, "a full chain's cross-shard command is one proposable entry");
        Assert.True(LedgerLimits.CommandBytesMax <= raft.MessageBytesMax);
        raft.Validate();
        Assert.True(BankWorkload.AmountMax < new MultiShardOptions { Seed = 1, NodeCount = 3, ShardCount = 2 }.InitialBalance, "customers start able to pay");
    }
}
