using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Node.Placement;

namespace RaftLedger.Cli.Demo;

/// <summary>
/// The demo's accounts, grouped by shard: per shard one bank (no limits; it funds the customers)
/// and customers that may not overdraw. Payments stay inside a shard, since cross-shard transfers
/// arrive with issue 6.
/// </summary>
public sealed class DemoAccounts
{
    public const uint Ledger = 1;
    public const ushort Code = 1;

    private DemoAccounts(UInt128[] banks, UInt128[][] customers)
    {
        Banks = banks;
        Customers = customers;
    }

    /// <summary>Bank account of each shard.</summary>
    public UInt128[] Banks { get; }

    /// <summary>Customer accounts of each shard.</summary>
    public UInt128[][] Customers { get; }

    public IEnumerable<UInt128> All => Banks.Concat(Customers.SelectMany(c => c));

    /// <summary>Draws random ids (seeded) until every shard has its bank and customers.</summary>
    public static DemoAccounts Create(int shardCount, int customersPerShard, Random random)
    {
        var byShard = new List<UInt128>[shardCount];
        for (var shard = 0; shard < shardCount; shard++)
        {
            byShard[shard] = [];
        }

        var missing = shardCount * (customersPerShard + 1);
        while (missing > 0)
        {
            var id = new UInt128((ulong)random.NextInt64(1, long.MaxValue), (ulong)random.NextInt64(1, long.MaxValue));
            var list = byShard[ShardRouter.ShardOf(id, shardCount)];
            if (list.Count <= customersPerShard && !list.Contains(id))
            {
                list.Add(id);
                missing--;
            }
        }

        return new DemoAccounts(
            Array.ConvertAll(byShard, list => list[0]),
            Array.ConvertAll(byShard, list => list.Skip(1).ToArray()));
    }

    public Account[] NewAccounts()
    {
        var accounts = new List<Account>();
        foreach (var bank in Banks)
        {
            accounts.Add(new Account { Id = bank, Ledger = Ledger, Code = Code });
        }

        foreach (var customer in Customers.SelectMany(c => c))
        {
            accounts.Add(new Account { Id = customer, Ledger = Ledger, Code = Code, Flags = AccountFlags.DebitsMustNotExceedCredits });
        }

        return accounts.ToArray();
    }
}
