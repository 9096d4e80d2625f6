using RaftLedger.Client;
using RaftLedger.Common.Placement;

namespace RaftLedger.Client.Tests;

public sealed class IdsTests
{
    private const ulong Noon = 1_795_000_000_000; // 2026-11-17, ms since the Unix epoch

    [Theory]
    [InlineData(1, 1)]
    [InlineData(8, 2)]
    [InlineData(64, 3)]
    public void Transfer_id_lands_on_the_debit_accounts_shard(int shardCount, int seed)
    {
        var random = new Random(seed);
        for (var i = 0; i < 500; i++)
        {
            var debit = UlidBits.Next128(random);
            var id = TransferIds.New(debit, shardCount, Noon, random);
            Assert.True(ShardRouter.ShardOf(id, shardCount) == ShardRouter.ShardOf(debit, shardCount),
                $"id {id} of debit {debit} is on another shard (seed {seed}; replay: dotnet test --filter Transfer_id_lands_on_the_debit_accounts_shard)");
        }
    }

    [Fact]
    public void Ids_carry_their_millisecond_time_in_the_top_48_bits_and_sort_by_it()
    {
        var random = new Random(7);
        var earlier = TransferIds.New(debitAccountId: 42, shardCount: 8, Noon, random);
        var later = TransferIds.New(debitAccountId: 42, shardCount: 8, Noon + 1, random);
        Assert.Equal(Noon, UlidBits.TimeOf(earlier));
        Assert.Equal(Noon + 1, UlidBits.TimeOf(later));
        Assert.True(later > earlier);
        Assert.True(AccountIds.New(Noon + 1, random) > AccountIds.New(Noon, random));
    }

    [Fact]
    public void Same_time_and_seed_give_the_same_id_and_different_seeds_differ()
    {
        Assert.Equal(TransferIds.New(5, 8, Noon, new Random(1)), TransferIds.New(5, 8, Noon, new Random(1)));
        Assert.NotEqual(TransferIds.New(5, 8, Noon, new Random(1)), TransferIds.New(5, 8, Noon, new Random(2)));
        Assert.Equal(AccountIds.New(Noon, new Random(3)), AccountIds.New(Noon, new Random(3)));
    }

    [Fact]
    public void Ids_made_in_the_same_millisecond_are_unique()
    {
        var random = new Random(11);
        var seen = new HashSet<UInt128>();
        for (var i = 0; i < 20_000; i++)
        {
            Assert.True(seen.Add(TransferIds.New((UInt128)(i % 100), 8, Noon, random)), $"duplicate at {i} (seed 11)");
            Assert.True(seen.Add(AccountIds.New(Noon, random)), $"duplicate account id at {i} (seed 11)");
        }
    }

    [Fact]
    public void System_clock_ids_are_nonzero_valid_and_time_ordered_across_milliseconds()
    {
        var first = TransferIds.New(99, 8);
        var account = AccountIds.New();
        Assert.NotEqual(UInt128.Zero, first);
        Assert.NotEqual(UInt128.MaxValue, account);
        Assert.Equal(ShardRouter.ShardOf(99, 8), ShardRouter.ShardOf(first, 8));
        var now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.InRange(UlidBits.TimeOf(first), now - 60_000, now);
        Assert.True(UlidBits.TimeOf(TransferIds.New(99, 8)) >= UlidBits.TimeOf(first));
    }

    [Fact]
    public void Compose_keeps_only_80_random_bits_and_refuses_times_over_48_bits()
    {
        var id = UlidBits.Compose(1, UInt128.MaxValue);
        Assert.Equal((UInt128.One << 81) - 1, id);
        Assert.Throws<ArgumentOutOfRangeException>(() => UlidBits.Compose(UlidBits.TimeMillisecondsMax + 1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => TransferIds.New(1, 0, Noon, new Random(1)));
    }
}
