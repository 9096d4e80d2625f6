using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>A seeded random workload of single and linked cross-shard (and local) transfers under chaos, then the quiet-state checks.</summary>
internal static class CrossShardWorkload
{
    public const string SeedVariable = "XSHARD_SEED";

    public static CrossShardOptions Options { get; } = new() { RetryIntervalNs = 20 * CrossShardCluster.StepNs, AbandonTimeoutNs = 200 * CrossShardCluster.StepNs };

    private const int AccountCount = 12;
    private static readonly UInt128 MissingAccount = 999;

    /// <summary>The sweep's run of one seed (what a replay runs): 3 or 4 shards, 600 steps of heavy chaos.</summary>
    public static CrossShardCluster RunSeed(int seed) => Run(seed, shardCount: 3 + (seed % 2), steps: 600, Chaos.Heavy);

    public static CrossShardCluster Run(int seed, int shardCount, int steps, Chaos chaos)
    {
        try
        {
            return RunUnchecked(seed, shardCount, steps, chaos);
        }
        catch (Exception exception)
        {
            throw new Xunit.Sdk.XunitException(
                $"cross-shard seed {seed} failed: {exception.Message}\nReplay: {SeedVariable}={seed} dotnet test tests/RaftLedger.Ledger.Tests -c Release --filter \"FullyQualifiedName~CrossShardSimulationTests.Replayed\"\n{exception}");
        }
    }

    private static CrossShardCluster RunUnchecked(int seed, int shardCount, int steps, Chaos chaos)
    {
        var cluster = new CrossShardCluster(shardCount, seed, Options);
        CreateAccounts(cluster);
        Fund(cluster);
        cluster.Chaos = chaos;
        for (var step = 0; step < steps; step++)
        {
            if (cluster.Random.Next(100) < 40)
            {
                SubmitRandom(cluster);
            }

            if (chaos != Chaos.None && cluster.Random.Next(100) == 0)
            {
                // A pause: timers fire at once and pending transfers (timeouts of 1 s) expire during the chaos.
                cluster.AdvanceNs(250 * CrossShardCluster.StepNs);
            }

            cluster.Step();
        }

        cluster.Chaos = Chaos.None;
        var quietStepsMax = (int)(20 * Options.AbandonTimeoutNs / CrossShardCluster.StepNs);
        Assert.True(cluster.RunUntilQuiet(quietStepsMax), $"the cluster is quiet within 20 abandonment timeouts after the chaos stops: {cluster.Describe()}");
        CrossShardChecks.AssertConsistent(cluster);

        // Every pending transfer with a timeout expires too.
        cluster.AdvanceNs(1500 * CrossShardCluster.StepNs);
        Assert.True(cluster.RunUntilQuiet(quietStepsMax), $"the cluster is quiet after the last expiries: {cluster.Describe()}");
        CrossShardChecks.AssertConsistent(cluster);
        return cluster;
    }

    private static void CreateAccounts(CrossShardCluster cluster)
    {
        var accounts = new List<Account>();
        for (var id = 1; id <= AccountCount; id++)
        {
            var flags = id switch
            {
                <= 4 => AccountFlags.DebitsMustNotExceedCredits,
                5 => AccountFlags.CreditsMustNotExceedDebits | AccountFlags.History,
                6 => AccountFlags.History,
                _ => AccountFlags.None,
            };
            accounts.Add(LedgerFixture.NewAccount((UInt128)id, ledger: 1, flags: flags));
        }

        accounts.Add(LedgerFixture.NewAccount(100, ledger: 2));
        cluster.CreateAccounts([.. accounts]);
    }

    // Limited accounts start with some credit, moved through the protocol itself without chaos.
    private static void Fund(CrossShardCluster cluster)
    {
        for (var id = 1; id <= 4; id++)
        {
            cluster.Submit([Transfer(cluster, cluster.Random.Next(cluster.ShardCount), (UInt128)(7 + id), (UInt128)id, 500)]);
        }

        Assert.True(cluster.RunUntilQuiet(10_000), cluster.Describe());
    }

    private static void SubmitRandom(CrossShardCluster cluster)
    {
        var roll = cluster.Random.Next(100);
        if (roll < 8 && cluster.Requests.Count > 0)
        {
            // A retry or a concurrent duplicate of an earlier request: same ids and fields.
            var earlier = cluster.Requests[cluster.Random.Next(cluster.Requests.Count)];
            cluster.Submit(earlier.Events);
            return;
        }

        if (roll < 12 && cluster.Requests.Count > 0)
        {
            // Another transfer reusing an earlier event's id (any event, also a chain's later one, whose id
            // may be homed away from its chain): sent to the id's home, it must get exists_with_different_*.
            var earlier = cluster.Requests[cluster.Random.Next(cluster.Requests.Count)];
            var reused = earlier.Events[cluster.Random.Next(earlier.Events.Length)];
            reused.Amount += 1;
            reused.Flags &= ~TransferFlags.Linked;
            cluster.Submit([reused]);
            return;
        }

        if (roll < 20 && PendingIds(cluster) is { Count: > 0 } pendingIds)
        {
            // A post (full or partial) or void of an earlier pending transfer, coordinated by its home (delegated there when its id lives elsewhere).
            var pendingId = pendingIds[cluster.Random.Next(pendingIds.Count)];
            var id = IdWithHome(cluster, cluster.Random.Next(2) == 0 ? cluster.ShardOf(pendingId) : cluster.Random.Next(cluster.ShardCount));
            cluster.Submit([cluster.Random.Next(3) == 0 ? LedgerFixture.Void(id, pendingId) : LedgerFixture.Post(id, pendingId, (UInt128)cluster.Random.Next(0, 60))]);
            return;
        }

        var home = cluster.Random.Next(cluster.ShardCount);
        var count = roll < 75 ? 1 : cluster.Random.Next(2, 5);
        var events = new Transfer[count];
        for (var i = 0; i < count; i++)
        {
            // A chain's later events may have ids homed on other shards (checked and recorded there).
            var idHome = i > 0 && cluster.Random.Next(3) == 0 ? cluster.Random.Next(cluster.ShardCount) : home;
            events[i] = Transfer(cluster, idHome, RandomAccount(cluster), RandomAccount(cluster), (UInt128)cluster.Random.Next(1, 120));
            events[i].Flags |= cluster.Random.Next(6) == 0 ? TransferFlags.Pending : TransferFlags.None;
            events[i].Flags |= cluster.Random.Next(10) switch
            {
                0 => TransferFlags.BalancingDebit, // clamped on a snapshot, guarded where applied
                1 => TransferFlags.BalancingCredit | TransferFlags.BalancingDebit,
                _ => TransferFlags.None,
            };
            if (cluster.Random.Next(40) == 0)
            {
                // Closes its debit account until voided or expired (timeout 1 s below, or a post keeps it closed).
                events[i].Flags |= TransferFlags.Pending | TransferFlags.ClosingDebit;
            }

            events[i].TimeoutSeconds = (events[i].Flags & TransferFlags.Pending) != 0 && cluster.Random.Next(2) == 0 ? 1u : 0u;
            if (i < count - 1 || cluster.Random.Next(50) == 0)
            {
                events[i].Flags |= count > 1 || cluster.Random.Next(2) == 0 ? TransferFlags.Linked : TransferFlags.None;
            }
        }

        cluster.Submit(events);
    }

    // The ids of the pending transfers submitted so far (created or not: a post of a failed one is refused).
    private static List<UInt128> PendingIds(CrossShardCluster cluster)
    {
        var ids = new List<UInt128>();
        foreach (var request in cluster.Requests)
        {
            foreach (var t in request.Events)
            {
                if ((t.Flags & TransferFlags.Pending) != 0)
                {
                    ids.Add(t.Id);
                }
            }
        }

        return ids;
    }

    private static UInt128 RandomAccount(CrossShardCluster cluster)
    {
        var roll = cluster.Random.Next(100);
        return roll switch
        {
            0 => MissingAccount,
            1 => 100, // another ledger
            _ => (UInt128)cluster.Random.Next(1, AccountCount + 1),
        };
    }

    public static Transfer Transfer(CrossShardCluster cluster, int home, UInt128 debit, UInt128 credit, UInt128 amount) =>
        LedgerFixture.NewTransfer(IdWithHome(cluster, home), debit, credit, amount);

    /// <summary>A random transfer id whose home shard is <paramref name="home"/>.</summary>
    public static UInt128 IdWithHome(CrossShardCluster cluster, int home)
    {
        while (true)
        {
            var id = new UInt128((ulong)cluster.Random.NextInt64(), (ulong)cluster.Random.NextInt64() | 1);
            if (cluster.ShardOf(id) == home)
            {
                return id;
            }
        }
    }
}
