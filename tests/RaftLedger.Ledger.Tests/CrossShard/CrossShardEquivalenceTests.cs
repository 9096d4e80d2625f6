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
                CreateTransferResult.ExceedsCredits, CreateTransferResult.ExceedsDebits, CreateTransferResult.LinkedEventFailed,
                CreateTransferResult.ClosingTransferMustBePending, BalancingClamped, ClosingCreated];
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

        var (clamped, closing) = AssertSameState(cluster, local, accounts, events);
        seen.Add(clamped > 0 ? BalancingClamped : CreateTransferResult.Created);
        seen.Add(closing > 0 ? ClosingCreated : CreateTransferResult.Created);
    }

    // Markers in the set of seen outcomes (not statuses): a balancing transfer was clamped, a closing one was created.
    private const CreateTransferResult BalancingClamped = (CreateTransferResult)250;
    private const CreateTransferResult ClosingCreated = (CreateTransferResult)251;

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
            events[i].Flags = (i < count - 1 ? TransferFlags.Linked : TransferFlags.None) | BalancingOrClosing(random);
        }

        return events;
    }

    /// <summary>
    /// Now and then balancing (debit, credit or both: the amount is clamped) or closing flags (a closing transfer must be
    /// pending; sometimes it is not, for closing_transfer_must_be_pending), so that they are compared with one ledger too.
    /// </summary>
    internal static TransferFlags BalancingOrClosing(Random random) => random.Next(12) switch
    {
        0 => TransferFlags.BalancingDebit,
        1 => TransferFlags.BalancingCredit,
        2 => TransferFlags.BalancingDebit | TransferFlags.BalancingCredit,
        3 => TransferFlags.BalancingDebit | TransferFlags.Pending,
        4 => TransferFlags.ClosingDebit | TransferFlags.Pending,
        5 => TransferFlags.ClosingCredit | (random.Next(4) == 0 ? TransferFlags.None : TransferFlags.Pending),
        6 => TransferFlags.ClosingDebit | TransferFlags.BalancingCredit | TransferFlags.Pending,
        _ => TransferFlags.None,
    };

    /// <summary>Every account's balances and closed flag, and every stored transfer's amount, equal the single ledger's.</summary>
    /// <returns>How many created transfers were clamped below their requested amount, and how many closing ones were created.</returns>
    internal static (int Clamped, int Closing) AssertSameState(CrossShardCluster cluster, LedgerFixture local, List<Account> accounts, IEnumerable<Transfer> events)
    {
        var (clamped, closing) = (0, 0);
        foreach (var account in accounts)
        {
            var onShard = cluster.Shards[cluster.ShardOf(account.Id)].Ledger.TryLookupAccount(account.Id, out var actual);
            var inLocal = local.Ledger.TryLookupAccount(account.Id, out var wanted);
            Assert.Equal(inLocal, onShard);
            Assert.Equal((wanted.DebitsPosted, wanted.CreditsPosted, wanted.DebitsPending, wanted.CreditsPending, wanted.Flags & AccountFlags.Closed),
                (actual.DebitsPosted, actual.CreditsPosted, actual.DebitsPending, actual.CreditsPending, actual.Flags & AccountFlags.Closed));
        }

        foreach (var t in events)
        {
            var stored = cluster.Shards[cluster.ShardOf(t.Id)].Ledger.TryLookupTransfer(t.Id, out var actual);
            Assert.Equal(local.Ledger.TryLookupTransfer(t.Id, out var wanted), stored);
            Assert.Equal((wanted.Amount, wanted.Flags), (actual.Amount, actual.Flags));
            clamped += stored && actual.Amount < t.Amount ? 1 : 0;
            closing += stored && (actual.Flags & (TransferFlags.ClosingDebit | TransferFlags.ClosingCredit)) != 0 ? 1 : 0;
        }

        return (clamped, closing);
    }
}
