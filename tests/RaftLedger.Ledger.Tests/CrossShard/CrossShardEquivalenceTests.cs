namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// A cross-shard transfer (or linked chain) gets exactly the status, and leaves exactly the balances,
/// that the same events get on one ledger holding every account: the protocol reuses the ledger's
/// checks and only splits them by side, so TigerBeetle's precedence must survive the split.
/// </summary>
public sealed class CrossShardEquivalenceTests
{
    private const int Cases = 200;

    [Fact]
    public void Cross_shard_results_and_balances_equal_a_single_ledgers()
    {
        var replay = Environment.GetEnvironmentVariable(CrossShardWorkload.SeedVariable);
        var first = replay is null ? 0 : int.Parse(replay, System.Globalization.CultureInfo.InvariantCulture);
        var count = replay is null ? Cases : 1;
        var seen = new HashSet<CreateTransferResult>();
        for (var seed = first; seed < first + count; seed++)
        {
            try
            {
                RunCase(seed, seen);
            }
            catch (Exception exception)
            {
                throw new Xunit.Sdk.XunitException(
                    $"equivalence case {seed} failed: {exception.Message}\nReplay: {CrossShardWorkload.SeedVariable}={seed} dotnet test tests/RaftLedger.Ledger.Tests -c Release --filter \"FullyQualifiedName~CrossShardEquivalenceTests\"");
            }
        }

        if (replay is null)
        {
            // The cases must reach the statuses whose precedence the split could get wrong.
            CreateTransferResult[] wanted = [CreateTransferResult.Created, CreateTransferResult.Exists, CreateTransferResult.IdAlreadyFailed,
                CreateTransferResult.DebitAccountNotFound, CreateTransferResult.CreditAccountNotFound, CreateTransferResult.AccountsMustHaveTheSameLedger,
                CreateTransferResult.TransferMustHaveTheSameLedgerAsAccounts, CreateTransferResult.DebitAccountAlreadyClosed,
                CreateTransferResult.CreditAccountAlreadyClosed, CreateTransferResult.OverflowsDebitsPosted, CreateTransferResult.OverflowsCreditsPosted,
                CreateTransferResult.ExceedsCredits, CreateTransferResult.ExceedsDebits, CreateTransferResult.LinkedEventFailed];
            Assert.All(wanted, status => Assert.Contains(status, seen));
        }
    }

    private static void RunCase(int seed, HashSet<CreateTransferResult> seen)
    {
        var cluster = new CrossShardCluster(2, seed, CrossShardWorkload.Options);
        var random = new Random(seed);
        var local = new LedgerFixture();
        var accounts = RandomAccounts(cluster, random);
        Install(cluster, local, accounts);

        // Two requests: the second repeats the first's ids (exists / id_already_failed must match too).
        var events = RandomEvents(cluster, random, accounts);
        for (var round = 0; round < 2; round++)
        {
            local.ClockNanoseconds = Math.Max(local.ClockNanoseconds, cluster.NowNs);
            var expected = local.CreateTransfers(events);
            var request = cluster.Submit(events);
            Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
            Assert.Empty(request.Failures);
            Assert.Equal(expected, request.Results);
            seen.UnionWith(expected);
        }

        foreach (var account in accounts)
        {
            var onShard = cluster.Shards[cluster.ShardOf(account.Id)].Ledger.TryLookupAccount(account.Id, out var actual);
            var inLocal = local.Ledger.TryLookupAccount(account.Id, out var wanted);
            Assert.Equal(inLocal, onShard);
            Assert.Equal((wanted.DebitsPosted, wanted.CreditsPosted, wanted.DebitsPending, wanted.CreditsPending),
                (actual.DebitsPosted, actual.CreditsPosted, actual.DebitsPending, actual.CreditsPending));
        }
    }

    internal static List<Account> RandomAccounts(CrossShardCluster cluster, Random random)
    {
        var accounts = new List<Account>();
        for (UInt128 id = 1; accounts.Count < 4; id++)
        {
            // Two accounts on each shard.
            if (accounts.FindAll(a => cluster.ShardOf(a.Id) == cluster.ShardOf(id)).Count == 2)
            {
                continue;
            }

            var near = UInt128.MaxValue - 100;
            var account = LedgerFixture.NewAccount(id, ledger: random.Next(8) == 0 ? 2u : 1u);
            account.Flags = random.Next(4) switch
            {
                0 => AccountFlags.DebitsMustNotExceedCredits,
                1 => AccountFlags.CreditsMustNotExceedDebits,
                _ => AccountFlags.None,
            };
            account.Flags |= random.Next(10) == 0 ? AccountFlags.Closed : AccountFlags.None;
            account.CreditsPosted = random.Next(6) == 0 ? near : (UInt128)random.Next(0, 300);
            account.DebitsPosted = random.Next(6) == 0 ? near : (UInt128)random.Next(0, 300);
            account.Timestamp = 1;
            accounts.Add(account);
        }

        return accounts;
    }

    internal static void Install(CrossShardCluster cluster, LedgerFixture local, List<Account> accounts)
    {
        var missing = accounts[^1].Id; // The last account exists nowhere: not-found statuses.
        foreach (var account in accounts)
        {
            if (account.Id == missing)
            {
                continue;
            }

            Commit(cluster.Shards[cluster.ShardOf(account.Id)].Store, account, cluster.NowNs);
            Commit(local.Store, account, cluster.NowNs);
        }
    }

    private static void Commit(ILedgerStore store, Account account, ulong timestamp)
    {
        var writes = new LedgerWriteSet();
        writes.AddAccount(account);
        writes.LastTimestamp = Math.Max(timestamp, store.LastTimestamp);
        store.Commit(writes);
    }

    private static Transfer[] RandomEvents(CrossShardCluster cluster, Random random, List<Account> accounts)
    {
        var home = random.Next(2);
        var count = random.Next(1, 4);
        var events = new Transfer[count];
        for (var i = 0; i < count; i++)
        {
            var debit = accounts[random.Next(accounts.Count)].Id;
            var credit = accounts[random.Next(accounts.Count)].Id;
            var amount = random.Next(5) == 0 ? UInt128.MaxValue - (UInt128)random.Next(0, 200) : (UInt128)random.Next(0, 400);
            events[i] = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, home), debit, credit, amount, ledger: random.Next(10) == 0 ? 2u : 1u);
            events[i].Flags = i < count - 1 ? TransferFlags.Linked : TransferFlags.None;
        }

        return events;
    }
}
