using RaftLedger.Cli.Bench;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Tests.Bench;

public sealed class WorkloadGeneratorTests
{
    private const int ShardCount = 8;

    private static AccountChooser Chooser(int accounts = 2_000, double zipf = 0, ulong seed = 7) =>
        new(BenchAccounts.Create(accounts, ShardCount, seed), zipf);

    /// <summary>Runs a generator for a number of batches, acknowledging every event as created.</summary>
    private static List<(int Shard, Transfer Transfer)> Generate(WorkloadGenerator generator, int batches, int batchSize)
    {
        var produced = new List<(int, Transfer)>();
        var batch = new Transfer[batchSize];
        for (var i = 0; i < batches; i++)
        {
            var shard = generator.NextShard();
            var fill = generator.Fill(shard, batch, batchSize);
            for (var j = 0; j < fill.Events; j++)
            {
                produced.Add((shard, batch[j]));
                generator.Acknowledge(batch[j], created: true);
            }
        }

        return produced;
    }

    [Fact]
    public void Accounts_are_spread_evenly_over_shards_and_routed_by_the_shard_router()
    {
        var accounts = BenchAccounts.Create(1_003, ShardCount, seed: 3);
        var perShard = new int[ShardCount];
        for (var rank = 0; rank < accounts.Count; rank++)
        {
            Assert.Equal(ShardRouter.ShardOf(accounts.ByRank[rank], ShardCount), accounts.ShardByRank[rank]);
            perShard[accounts.ShardByRank[rank]]++;
        }

        Assert.True(perShard.Max() - perShard.Min() <= 1, string.Join(",", perShard));
        Assert.Equal(accounts.Count, accounts.ByRank.Distinct().Count());
    }

    [Fact]
    public void Too_few_accounts_for_the_shards_is_refused_with_the_minimum()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => BenchAccounts.Create(ShardCount, ShardCount, seed: 1));
        Assert.Contains($"--accounts {ShardCount * BenchLimits.AccountsPerShardMin}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Same_seed_and_acknowledgements_give_the_same_transfers()
    {
        var chooser = Chooser(zipf: 1.1);
        var mix = new WorkloadMix(0.3, 0.4);
        var first = Generate(new WorkloadGenerator(chooser, mix, seed: 42, new BenchIdSequence(9), stream: 2), 200, 16);
        var second = Generate(new WorkloadGenerator(chooser, mix, seed: 42, new BenchIdSequence(9), stream: 2), 200, 16);
        var otherSeed = Generate(new WorkloadGenerator(chooser, mix, seed: 43, new BenchIdSequence(9), stream: 2), 200, 16);

        Assert.Equal(first, second);
        Assert.NotEqual(first.Select(t => t.Transfer.DebitAccountId), otherSeed.Select(t => t.Transfer.DebitAccountId));
    }

    [Fact]
    public void Ids_are_unique_across_streams_and_runs_and_homed_on_the_debit_accounts_shard()
    {
        var chooser = Chooser();
        var mix = new WorkloadMix(0.5, 0.5);
        var all = new List<(int Shard, Transfer Transfer)>();
        var runs = new Dictionary<ulong, BenchIdSequence> { [1] = new(1), [2] = new(2) };
        foreach (var (runId, stream) in new[] { (1UL, 0), (1UL, 1), (2UL, 0) })
        {
            all.AddRange(Generate(new WorkloadGenerator(chooser, mix, seed: 5, runs[runId], stream), 100, 20));
        }

        Assert.Equal(all.Count, all.Select(t => t.Transfer.Id).Distinct().Count());
        Assert.All(all, t =>
        {
            Assert.Equal(t.Shard, ShardRouter.ShardOf(t.Transfer.Id, ShardCount));
            Assert.Equal(t.Shard, ShardRouter.ShardOf(t.Transfer.DebitAccountId, ShardCount));
            Assert.NotEqual(t.Transfer.DebitAccountId, t.Transfer.CreditAccountId);
        });
    }

    [Fact]
    public void Callers_sharing_a_run_make_ids_that_ascend_in_the_order_they_are_made()
    {
        // Like the SDK's time-ordered ids: a batch made later has higher ids whichever caller made it, so a node's
        // "above every stored id" check spares new transfers their lookup.
        var chooser = Chooser();
        var sequence = new BenchIdSequence(3);
        var callers = new[] { new WorkloadGenerator(chooser, new WorkloadMix(0, 0.5), 7, sequence, 0), new WorkloadGenerator(chooser, new WorkloadMix(0, 0.5), 7, sequence, 1) };
        var made = new List<UInt128>();
        for (var round = 0; round < 40; round++)
        {
            made.AddRange(Generate(callers[round % 2], 1, 10).Select(t => t.Transfer.Id));
        }

        Assert.Equal(400, made.Count);
        Assert.All(made.Zip(made.Skip(1)), pair => Assert.True(pair.First < pair.Second, $"{pair.Second} was made after {pair.First}"));
        Assert.True(made[^1] < new BenchIdSequence(4).Next(), "a later run's ids are higher");
    }

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.25, 0.0)]
    [InlineData(1.0, 1.1)]
    [InlineData(0.5, 2.0)]
    public void The_cross_shard_fraction_is_kept_and_decided_by_the_account_shards(double fraction, double zipf)
    {
        var generator = new WorkloadGenerator(Chooser(zipf: zipf), new WorkloadMix(fraction, 0), seed: 11, new BenchIdSequence(1), stream: 0);
        var payments = Generate(generator, 500, 40);
        var cross = payments.Count(p =>
            ShardRouter.ShardOf(p.Transfer.DebitAccountId, ShardCount) != ShardRouter.ShardOf(p.Transfer.CreditAccountId, ShardCount));

        Assert.Equal(generator.CrossShardPayments, cross);
        Assert.InRange((double)cross / payments.Count, fraction - 0.02, fraction + 0.02);
    }

    [Fact]
    public void Two_phase_payments_are_pending_first_and_resolved_only_after_their_acknowledgement()
    {
        var chooser = Chooser();
        var generator = new WorkloadGenerator(chooser, new WorkloadMix(0, 0.3), seed: 13, new BenchIdSequence(1), stream: 0);
        var batch = new Transfer[32];
        var acknowledged = new HashSet<UInt128>();
        var refused = new HashSet<UInt128>();
        var resolved = new HashSet<UInt128>();
        for (var i = 0; i < 400; i++)
        {
            var shard = generator.NextShard();
            var fill = generator.Fill(shard, batch, batch.Length);
            for (var j = 0; j < fill.Events; j++)
            {
                var transfer = batch[j];
                if ((transfer.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0)
                {
                    Assert.Contains(transfer.PendingId, acknowledged);
                    Assert.True(resolved.Add(transfer.PendingId), "a pending transfer is resolved once");
                }

                // Every fifth pending is refused by "the cluster": it must never be resolved.
                var created = (transfer.Flags & TransferFlags.Pending) == 0 || (j % 5) != 0;
                (created ? acknowledged : refused).Add(transfer.Id);
                generator.Acknowledge(transfer, created);
            }
        }

        Assert.Empty(resolved.Intersect(refused));
        Assert.Equal(generator.Posts + generator.Voids, resolved.Count);
        Assert.InRange((double)generator.PendingPayments / generator.Payments, 0.27, 0.33);
        Assert.InRange((double)generator.Posts / resolved.Count, 0.4, 0.6);
    }

    [Fact]
    public void The_payment_budget_limits_new_payments_but_not_resolutions()
    {
        var generator = new WorkloadGenerator(Chooser(), new WorkloadMix(0, 1), seed: 17, new BenchIdSequence(1), stream: 0);
        var batch = new Transfer[10];
        var first = generator.Fill(0, batch, paymentsMax: 4);
        Assert.Equal(new FillResult(4, 4), first);
        for (var i = 0; i < first.Events; i++)
        {
            generator.Acknowledge(batch[i], created: true);
        }

        Assert.Equal(new FillResult(4, 0), generator.Fill(0, batch, paymentsMax: 0));
        Assert.Equal(new FillResult(0, 0), generator.Fill(0, batch, paymentsMax: 0));
    }

    [Fact]
    public void Zipf_choice_follows_the_rank_weights_on_every_shard()
    {
        const double s = 1.2;
        var chooser = Chooser(accounts: 400, zipf: s);
        var random = new Raft.DeterministicRandom(99);
        const int draws = 200_000;
        var counts = new int[400];
        var shardCounts = new int[ShardCount];
        for (var i = 0; i < draws; i++)
        {
            counts[chooser.NextRank(random)]++;
            shardCounts[chooser.NextShard(random)]++;
        }

        var total = Enumerable.Range(1, 400).Sum(r => Math.Pow(r, -s));
        foreach (var rank in new[] { 0, 1, 5, 50 })
        {
            var expected = Math.Pow(rank + 1, -s) / total;
            Assert.InRange((double)counts[rank] / draws, expected * 0.9, expected * 1.1);
        }

        for (var shard = 0; shard < ShardCount; shard++)
        {
            Assert.InRange((double)shardCounts[shard] / draws, chooser.ShardWeights[shard] * 0.9, chooser.ShardWeights[shard] * 1.1);
            Assert.Equal(shard, chooser.Accounts.ShardByRank[chooser.NextRankOnShard(random, shard)]);
        }
    }
}
