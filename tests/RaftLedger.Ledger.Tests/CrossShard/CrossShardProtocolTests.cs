using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>The protocol step by step on a calm network: commits, refusals with TigerBeetle's statuses, and recovery.</summary>
public sealed class CrossShardProtocolTests
{
    private static (CrossShardCluster Cluster, UInt128 A, UInt128 B) TwoShardsWithAccountsOnEach(int shardCount = 2)
    {
        var cluster = new CrossShardCluster(shardCount, seed: 1, CrossShardWorkload.Options);
        UInt128 a = 0, b = 0;
        for (UInt128 id = 1; a == 0 || b == 0; id++)
        {
            if (cluster.ShardOf(id) == 0 && a == 0)
            {
                a = id;
            }
            else if (cluster.ShardOf(id) == 1 && b == 0)
            {
                b = id;
            }
        }

        cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b));
        return (cluster, a, b);
    }

    [Fact]
    public void Transfer_between_two_shards_is_created_and_posted_on_both_legs()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        var request = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, a, b, 70)]);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.Equal(CreateTransferResult.Created, request.Results[0]);
        Assert.True(request.Known[0]);
        Assert.True(cluster.Shards[0].Ledger.TryLookupAccount(a, out var debit));
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var credit));
        Assert.Equal((UInt128)70, debit.DebitsPosted);
        Assert.Equal((UInt128)70, credit.CreditsPosted);
        Assert.True(cluster.Shards[1].Ledger.TryLookupTransfer(request.Events[0].Id, out _), "the credit shard keeps a copy for the account's queries");
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Concurrent_duplicates_create_the_transfer_once_and_the_loser_gets_exists()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        Transfer[] events = [CrossShardWorkload.Transfer(cluster, 1, a, b, 5)];
        var first = cluster.Submit(events);
        var second = cluster.Submit(events);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.Equal(
            new[] { CreateTransferResult.Created, CreateTransferResult.Exists }.Order(),
            new[] { first.Results[0], second.Results[0] }.Order());
        Assert.True(cluster.Shards[0].Ledger.TryLookupAccount(a, out var debit));
        Assert.Equal((UInt128)5, debit.DebitsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Coordinator_crash_after_prepare_aborts_the_legs_after_the_abandonment_timeout()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        var request = cluster.Submit([CrossShardWorkload.Transfer(cluster, 0, a, b, 9)]);
        var steps = 0;
        while (cluster.Shards[1].Driver.PreparedTransactionCount == 0)
        {
            cluster.Step();
            Assert.True(++steps < 100, "the participant prepares");
        }

        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var reserved));
        Assert.Equal((UInt128)9, reserved.CreditsPending);
        cluster.Shards[0].CrashLosingLog();
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Single(request.Failures);
        Assert.False(request.Known[0]);
        Assert.False(cluster.Shards[0].Ledger.TryLookupTransfer(request.Events[0].Id, out _));
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var released));
        Assert.Equal(UInt128.Zero, released.CreditsPending);
        Assert.Equal(UInt128.Zero, released.CreditsPosted);
        Assert.Contains(cluster.Shards[0].Store.EnumerateSideRecords(), r => r.Table == CrossShardTables.Tombstone);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Retry_after_an_unknown_outcome_with_the_same_id_creates_it_once()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        Transfer[] events = [CrossShardWorkload.Transfer(cluster, 0, a, b, 3)];
        var first = cluster.Submit(events);
        cluster.Step();
        cluster.Shards[0].Crash();
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        var retry = cluster.Submit(events);
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        Assert.Contains(retry.Results[0], new[] { CreateTransferResult.Created, CreateTransferResult.Exists });
        Assert.True(cluster.Shards[1].Ledger.TryLookupAccount(b, out var credit));
        Assert.Equal((UInt128)3, credit.CreditsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Kinds_not_supported_across_shards_are_refused_with_cross_shard_not_supported()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        var pending = CrossShardWorkload.Transfer(cluster, 0, a, b, 3);
        pending.Flags = TransferFlags.Pending;
        var balancing = CrossShardWorkload.Transfer(cluster, 0, a, b, 3);
        balancing.Flags = TransferFlags.BalancingDebit;
        var post = LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, 0), CrossShardWorkload.IdWithHome(cluster, 1), 3);
        var request = cluster.Submit([pending, balancing, post]);
        Assert.True(cluster.RunUntilQuiet(1000), cluster.Describe());
        Assert.All(request.Results, r => Assert.Equal(CreateTransferResult.CrossShardNotSupported, r));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void Classify_keeps_a_chain_whole_when_one_event_crosses_shards()
    {
        var (cluster, a, b) = TwoShardsWithAccountsOnEach();
        UInt128 a2 = a + 1;
        while (cluster.ShardOf(a2) != 0)
        {
            a2++;
        }

        var local = CrossShardWorkload.Transfer(cluster, 0, a, a2, 1);
        var cross = CrossShardWorkload.Transfer(cluster, 0, a, b, 1);
        var linkedLocal = local;
        linkedLocal.Flags = TransferFlags.Linked;
        Transfer[] events = [local, linkedLocal, cross, local];
        var flags = new bool[events.Length];
        cluster.Shards[0].Driver.Classify(events, flags);
        Assert.Equal(new[] { false, true, true, false }, flags);
    }
}
