using RaftLedger.Ledger;
using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

/// <summary>
/// The RocksDB store keeps its timestamp and per-account indexes in groups (one record per run of a write set's
/// entries, see <see cref="RocksTable"/>). These tests put a hot account into several groups per write set and
/// ask for windows that start and end inside groups, in both directions, and compare with the in-memory store.
/// </summary>
public sealed class RocksAccountIndexTests
{
    private const int Accounts = 8;
    private const ulong HotAccount = 1;

    [Fact]
    public void Account_queries_over_grouped_index_records_match_the_in_memory_store()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var store = new RocksLedgerStore(database.OpenShard(1));
        var rocks = new LedgerStateMachine(store);
        var memory = new LedgerStateMachine(new InMemoryLedgerStore());
        var timestamp = 1_000UL;
        var index = 0UL;
        Apply(memory, rocks, ref timestamp, ref index, CreateAccounts());

        // Write sets of 1, 700 (two groups for the hot account: 512 + 188) and 1,500 transfers (three groups).
        var nextId = 1UL;
        foreach (var size in new[] { 1, 700, 1_500, 3 })
        {
            Apply(memory, rocks, ref timestamp, ref index, HotAccountTransfers(size, ref nextId));
        }

        Assert.Equal(memory.Fingerprint(), rocks.Fingerprint());
        var checkedWindows = 0;
        foreach (var filter in Filters(memory.LastTimestamp))
        {
            var expected = new Transfer[LedgerLimits.QueryResultsMax];
            var actual = new Transfer[LedgerLimits.QueryResultsMax];
            var count = memory.GetAccountTransfers(filter, expected);
            Assert.Equal(count, rocks.GetAccountTransfers(filter, actual));
            Assert.True(expected.AsSpan(0, count).SequenceEqual(actual.AsSpan(0, count)),
                $"account {filter.AccountId}, [{filter.TimestampMin}, {filter.TimestampMax}], flags {filter.Flags}, limit {filter.Limit}");
            checkedWindows += count > 0 ? 1 : 0;
        }

        Assert.True(checkedWindows > 100, "most windows must return transfers, or the comparison proves little");
    }

    [Fact]
    public void Transfers_enumerate_in_timestamp_order_across_timestamp_groups()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var rocks = new LedgerStateMachine(new RocksLedgerStore(database.OpenShard(1)));
        var memory = new LedgerStateMachine(new InMemoryLedgerStore());
        var timestamp = 1_000UL;
        var index = 0UL;
        Apply(memory, rocks, ref timestamp, ref index, CreateAccounts());
        var nextId = 1UL;
        Apply(memory, rocks, ref timestamp, ref index, HotAccountTransfers(RocksLedgerLimits.TimestampGroupIdsMax * 2 + 5, ref nextId));
        Apply(memory, rocks, ref timestamp, ref index, HotAccountTransfers(7, ref nextId));

        var enumerated = rocks.Store.EnumerateTransfers().ToArray();
        Assert.Equal(memory.Store.EnumerateTransfers().ToArray(), enumerated);
        Assert.Equal(RocksLedgerLimits.TimestampGroupIdsMax * 2 + 12, enumerated.Length);
    }

    private static Account[] CreateAccounts()
    {
        var accounts = new Account[Accounts];
        for (var i = 0; i < Accounts; i++)
        {
            accounts[i] = new Account { Id = (UInt128)(i + 1), Ledger = 1, Code = 1 };
        }

        return accounts;
    }

    /// <summary>Transfers between the hot account and the others, the hot account alternating sides.</summary>
    private static Transfer[] HotAccountTransfers(int count, ref ulong nextId)
    {
        var transfers = new Transfer[count];
        for (var i = 0; i < count; i++)
        {
            var other = (UInt128)(2 + (i % (Accounts - 1)));
            var hotDebits = i % 3 != 0;
            transfers[i] = new Transfer
            {
                Id = nextId++,
                DebitAccountId = hotDebits ? HotAccount : other,
                CreditAccountId = hotDebits ? other : HotAccount,
                Amount = (UInt128)(1 + i),
                Ledger = 1,
                Code = 1,
            };
        }

        return transfers;
    }

    private static IEnumerable<AccountFilter> Filters(ulong lastTimestamp)
    {
        var first = 1_000UL + Accounts;
        var bounds = new List<ulong> { 0, first, first + 1, first + 2, first + 300, first + 511, first + 512, first + 513, first + 701, first + 1_800 };
        bounds.Add(lastTimestamp - 2);
        bounds.Add(lastTimestamp);
        var flags = new[]
        {
            AccountFilterFlags.Debits | AccountFilterFlags.Credits,
            AccountFilterFlags.Debits,
            AccountFilterFlags.Credits | AccountFilterFlags.Reversed,
            AccountFilterFlags.Debits | AccountFilterFlags.Credits | AccountFilterFlags.Reversed,
        };
        foreach (var account in new UInt128[] { HotAccount, 2 })
        {
            foreach (var min in bounds)
            {
                foreach (var max in bounds)
                {
                    if (max != 0 && max < min)
                    {
                        continue;
                    }

                    foreach (var flag in flags)
                    {
                        yield return new AccountFilter { AccountId = account, TimestampMin = min, TimestampMax = max, Flags = flag, Limit = 37 };
                    }
                }
            }
        }
    }

    private static void Apply(LedgerStateMachine memory, LedgerStateMachine rocks, ref ulong timestamp, ref ulong index, Account[] accounts)
    {
        timestamp += (ulong)accounts.Length;
        index++;
        var expected = new CreateAccountResult[accounts.Length];
        var actual = new CreateAccountResult[accounts.Length];
        memory.CreateAccounts(accounts, timestamp, expected, index);
        rocks.CreateAccounts(accounts, timestamp, actual, index);
        Assert.All(actual, result => Assert.Equal(CreateAccountResult.Created, result));
    }

    private static void Apply(LedgerStateMachine memory, LedgerStateMachine rocks, ref ulong timestamp, ref ulong index, Transfer[] transfers)
    {
        timestamp += (ulong)transfers.Length;
        index++;
        var expected = new CreateTransferResult[transfers.Length];
        var actual = new CreateTransferResult[transfers.Length];
        memory.CreateTransfers(transfers, timestamp, expected, index);
        rocks.CreateTransfers(transfers, timestamp, actual, index);
        Assert.All(actual, result => Assert.Equal(CreateTransferResult.Created, result));
        Assert.Equal(expected, actual);
    }
}
