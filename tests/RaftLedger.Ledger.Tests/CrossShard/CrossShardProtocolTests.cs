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
}
