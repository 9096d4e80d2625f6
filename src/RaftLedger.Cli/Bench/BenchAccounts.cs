using RaftLedger.Common;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Raft;

namespace RaftLedger.Cli.Bench;

/// <summary>
/// The bench's accounts: ids drawn from the seed so that every shard owns the same number (± 1),
/// then ranked in a seeded random order for the Zipf choice, so the hottest accounts land on
/// random shards. Pure: no IO, no clock.
/// </summary>
public sealed class BenchAccounts
{
    public const uint Ledger = 1;
    public const ushort Code = 1;

    private BenchAccounts(UInt128[] byRank, int[] shardByRank, int shardCount)
    {
        ByRank = byRank;
        ShardByRank = shardByRank;
        ShardCount = shardCount;
    }

    /// <summary>Account ids; index = popularity rank (0 is the hottest under Zipf).</summary>
    public UInt128[] ByRank { get; }

    /// <summary>The shard of <c>ByRank[i]</c>.</summary>
    public int[] ShardByRank { get; }

    public int ShardCount { get; }

    public int Count => ByRank.Length;

    public static BenchAccounts Create(int count, int shardCount, ulong seed)
    {
        Invariant.Check(shardCount >= 1 && shardCount <= ShardRouter.ShardCountMax);
        if (count < shardCount * BenchLimits.AccountsPerShardMin)
        {
            throw new ArgumentOutOfRangeException(nameof(count),
                $"{count} accounts cannot give each of {shardCount} shards {BenchLimits.AccountsPerShardMin}; use --accounts {shardCount * BenchLimits.AccountsPerShardMin} or more.");
        }

        var random = new DeterministicRandom(seed ^ 0xACC0_0000_0000_0001UL);
        var ids = new UInt128[count];
        var shards = new int[count];
        for (var i = 0; i < count; i++)
        {
            // Round-robin over shards: draw ids until one lands on the wanted shard (about shardCount draws).
            shards[i] = i % shardCount;
            UInt128 id;
            do
            {
                id = new UInt128(random.NextUInt64() >> 1, random.NextUInt64() | 1);
            }
            while (ShardRouter.ShardOf(id, shardCount) != shards[i]);
            ids[i] = id;
        }

        // Fisher-Yates: popularity rank independent of the shard.
        for (var i = count - 1; i > 0; i--)
        {
            var j = random.NextInt(i + 1);
            (ids[i], ids[j]) = (ids[j], ids[i]);
            (shards[i], shards[j]) = (shards[j], shards[i]);
        }

        return new BenchAccounts(ids, shards, shardCount);
    }

    /// <summary>The accounts as create_accounts events: no balance limits, so every payment can succeed.</summary>
    public Account[] NewAccounts()
    {
        var accounts = new Account[ByRank.Length];
        for (var i = 0; i < accounts.Length; i++)
        {
            accounts[i] = new Account { Id = ByRank[i], Ledger = Ledger, Code = Code };
        }

        return accounts;
    }
}
