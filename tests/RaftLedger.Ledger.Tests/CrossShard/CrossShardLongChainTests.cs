using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// Linked chains longer than the old 64-event bound, up to a full request (<see cref="LedgerLimits.BatchEventsMax"/>),
/// spread over 2 to 8 shards: each is one atomic transaction and gets exactly the statuses, and leaves exactly the
/// balances, that the same events get on one ledger holding every account (no needs_cross_shard_path). Chains mix
/// plain transfers, pending ones (some with a timeout, so Decide's expires-elsewhere mask reaches past bit 64), posts and
/// voids of the chain's own pending transfers and of pending transfers created earlier on other shards, with ids homed
/// on every shard; each chain is sent twice (the second gets the single ledger's exists statuses).
/// </summary>
public sealed class CrossShardLongChainTests
{
    private const ulong TimeoutSeconds = 3600; // never expires during a test: both ledgers keep it pending

    [Theory]
    [InlineData(65, 2, 1)]
    [InlineData(1000, 4, 2)]
    [InlineData(LedgerLimits.BatchEventsMax, 8, 3)]
    public void A_long_mixed_chain_across_shards_equals_a_single_ledger(int length, int shardCount, int seed)
    {
        var (cluster, local, accounts) = Setup(shardCount, seed);
        var random = new Random(seed);

        // Pending transfers created by an earlier chain, homed on every shard: the long chain posts or voids some.
        var earlier = PendingChain(cluster, random, accounts, Math.Min(length / 4, 400));
        Compare(cluster, local, earlier);
        var open = new List<Transfer>(earlier);

        var chain = MixedChain(cluster, random, accounts, length, open);
        Assert.True(chain.Count(t => (t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0) > length / 10);
        Assert.True(chain.Skip(64).Any(t => (t.Flags & TransferFlags.Pending) != 0 && t.TimeoutSeconds != 0 && cluster.ShardOf(t.Id) != cluster.ShardOf(chain[0].Id)),
            "a pending transfer with a timeout past event 64 has its id homed off the coordinator");
        var results = Compare(cluster, local, chain);
        Assert.All(results, status => Assert.Equal(CreateTransferResult.Created, status));
        Compare(cluster, local, chain); // the same chain again: exists, linked_event_failed as on one ledger
        CrossShardEquivalenceTests.AssertSameState(cluster, local, accounts, [.. earlier, .. chain]);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Theory]
    [InlineData(65, 2, 4)]
    [InlineData(1000, 3, 5)]
    [InlineData(LedgerLimits.BatchEventsMax, 5, 6)]
    public void A_long_chain_failing_in_its_last_event_creates_nothing(int length, int shardCount, int seed)
    {
        var (cluster, local, accounts) = Setup(shardCount, seed);
        var random = new Random(seed);
        var earlier = PendingChain(cluster, random, accounts, 50);
        Compare(cluster, local, earlier);
        var chain = MixedChain(cluster, random, accounts, length, [.. earlier]);
        var missing = new UInt128(0xDEAD, 0xBEEF); // an account that exists nowhere
        chain[^1] = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, random.Next(shardCount)), missing, accounts[0].Id, 1);

        var results = Compare(cluster, local, chain);
        Assert.Equal(CreateTransferResult.DebitAccountNotFound, results[^1]);
        Assert.All(results[..^1], status => Assert.Equal(CreateTransferResult.LinkedEventFailed, status));
        foreach (var t in chain)
        {
            Assert.False(cluster.Shards[cluster.ShardOf(t.Id)].Ledger.TryLookupTransfer(t.Id, out _), "nothing of the chain is stored");
        }

        CrossShardEquivalenceTests.AssertSameState(cluster, local, accounts, [.. earlier, .. chain]);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void The_chain_index_answers_what_the_chain_scans_answer()
    {
        var random = new Random(7);
        var events = new Transfer[300];
        for (var i = 0; i < events.Length; i++)
        {
            var id = (UInt128)random.Next(1, 120);
            events[i] = random.Next(3) switch
            {
                0 => LedgerFixture.NewTransfer(id, 1, 2, 5, TransferFlags.Pending),
                1 => LedgerFixture.Post(id, (UInt128)random.Next(1, 120), 0),
                _ => LedgerFixture.Void(id, (UInt128)random.Next(1, 120)),
            };
        }

        var index = CrossShardChainIndex.Of(events);
        for (var i = 0; i < events.Length; i++)
        {
            Assert.Equal(CrossShardSameChain.PendingIndexOf(events, i), index.PendingIndexOf(i));
            Assert.Equal(CrossShardSameChain.ResolvedLater(events, i, out var posted), index.ResolvedLater(i, out var indexPosted));
            Assert.Equal(posted, indexPosted);
            var earlierSameId = Array.FindIndex(events, 0, i, t => t.Id == events[i].Id);
            Assert.Equal(earlierSameId, index.EarlierIndexOf(events[i].Id, i));
        }
    }

    private static (CrossShardCluster Cluster, LedgerFixture Local, List<Account> Accounts) Setup(int shardCount, int seed)
    {
        var cluster = new CrossShardCluster(shardCount, seed, CrossShardWorkload.Options);
        var local = new LedgerFixture();
        var accounts = new List<Account>();
        for (UInt128 id = 1; accounts.Count < 3 * shardCount; id++)
        {
            if (accounts.Count(a => cluster.ShardOf(a.Id) == cluster.ShardOf(id)) < 3)
            {
                accounts.Add(LedgerFixture.NewAccount(id) with { Timestamp = 1 });
            }
        }

        CrossShardEquivalenceTests.Install(cluster, local, [.. accounts, LedgerFixture.NewAccount(new UInt128(0xDEAD, 0xBEEF))]);
        return (cluster, local, accounts);
    }

    /// <summary>A chain of pending transfers between random accounts, ids on random shards.</summary>
    private static Transfer[] PendingChain(CrossShardCluster cluster, Random random, List<Account> accounts, int count)
    {
        var events = new Transfer[count];
        for (var i = 0; i < count; i++)
        {
            var (debit, credit) = TwoAccounts(random, accounts);
            events[i] = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, random.Next(cluster.ShardCount)), debit, credit,
                (UInt128)random.Next(1, 100), TransferFlags.Pending | TransferFlags.Linked);
        }

        events[^1].Flags &= ~TransferFlags.Linked;
        return events;
    }

    /// <summary>
    /// Plain and pending transfers, posts and voids of the chain's own earlier pending transfers and of
    /// <paramref name="open"/> (each resolved once), ids on random shards; every event should be created.
    /// </summary>
    private static Transfer[] MixedChain(CrossShardCluster cluster, Random random, List<Account> accounts, int length, List<Transfer> open)
    {
        var events = new Transfer[length];
        var ownPending = new List<Transfer>();
        for (var i = 0; i < length; i++)
        {
            var id = CrossShardWorkload.IdWithHome(cluster, random.Next(cluster.ShardCount));
            var roll = random.Next(20);
            if (i == 64)
            {
                // Past bit 63 of the old u64 mask: a pending transfer with a timeout whose id lives off the coordinator.
                id = CrossShardWorkload.IdWithHome(cluster, (cluster.ShardOf(events[0].Id) + 1) % cluster.ShardCount);
                roll = 19;
            }

            var pool = roll < 3 ? ownPending : roll < 6 ? open : null;
            if (pool is { Count: > 0 })
            {
                var p = pool[random.Next(pool.Count)];
                pool.Remove(p);
                events[i] = random.Next(3) == 0 ? LedgerFixture.Void(id, p.Id) : LedgerFixture.Post(id, p.Id, random.Next(2) == 0 ? 0 : p.Amount - 1);
            }
            else
            {
                var (debit, credit) = TwoAccounts(random, accounts);
                var pending = random.Next(3) == 0 || i == 64;
                events[i] = LedgerFixture.NewTransfer(id, debit, credit, (UInt128)random.Next(1, 100), pending ? TransferFlags.Pending : TransferFlags.None);
                if (pending)
                {
                    events[i].TimeoutSeconds = random.Next(2) == 0 || i == 64 ? (uint)TimeoutSeconds : 0;
                    ownPending.Add(events[i]);
                }
            }

            events[i].Flags |= i < length - 1 ? TransferFlags.Linked : TransferFlags.None;
        }

        return events;
    }

    private static (UInt128 Debit, UInt128 Credit) TwoAccounts(Random random, List<Account> accounts)
    {
        var debit = accounts[random.Next(accounts.Count)].Id;
        var credit = debit;
        while (credit == debit)
        {
            credit = accounts[random.Next(accounts.Count)].Id;
        }

        return (debit, credit);
    }

    private static CreateTransferResult[] Compare(CrossShardCluster cluster, LedgerFixture local, Transfer[] events)
    {
        local.ClockNanoseconds = Math.Max(local.ClockNanoseconds, cluster.NowNs);
        var expected = local.CreateTransfers(events);
        var request = cluster.Submit(events);
        Assert.True(cluster.RunUntilQuiet(4000), cluster.Describe());
        Assert.Empty(request.Failures);
        Assert.DoesNotContain(CreateTransferResult.NeedsCrossShardPath, request.Results);
        Assert.Equal(expected, request.Results);
        return request.Results;
    }
}
