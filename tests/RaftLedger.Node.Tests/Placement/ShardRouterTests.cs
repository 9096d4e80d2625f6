using System.IO.Hashing;
using RaftLedger.Common.Placement;
using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Tests.Placement;

// Golden vectors: account routing must never change by accident. The expected values were computed by an
// independent implementation of jump hash (Lamping and Veach, 2014, the published C++ listing) and of XXH64
// (the xxHash specification), not by this code; the jump vectors match dgryski/go-jump's test table.
public sealed class ShardRouterTests
{
    [Theory]
    [InlineData(256UL, 1024, 520)]
    [InlineData(1UL, 1, 0)]
    [InlineData(42UL, 57, 43)]
    [InlineData(0xDEAD10CCUL, 1, 0)]
    [InlineData(0xDEAD10CCUL, 666, 361)]
    [InlineData(1UL, 1000, 549)]
    [InlineData(2UL, 1000, 338)]
    [InlineData(123456789UL, 8, 7)]
    [InlineData(ulong.MaxValue, 4096, 1921)]
    public void Jump_hash_matches_the_published_algorithm(ulong key, int buckets, int expected) =>
        Assert.Equal(expected, ShardRouter.JumpHash(key, buckets));

    [Fact]
    public void XxHash64_of_empty_input_is_the_specification_value() =>
        Assert.Equal(0xEF46DB3751D8E999UL, XxHash64.HashToUInt64([]));

    public static TheoryData<string, ulong, int, int> AccountVectors => new()
    {
        { "1", 0x6c1cff0459c8bb10UL, 4, 561 },
        { "2", 0x871118a91a4e8fbbUL, 7, 10 },
        { "3", 0xa5ce0e8cc05f18a5UL, 5, 67 },
        { "42", 0x3db7297acf5abb38UL, 0, 125 },
        { "18446744073709551616", 0x5522e3e91134a8fbUL, 3, 95 },
        { "340282366920938463463374607431768211454", 0xc2e4aa14d79f0bd1UL, 5, 909 },
        { "1512366075204170929049582354406559215", 0x5999d5c123706647UL, 1, 366 },
    };

    [Theory]
    [MemberData(nameof(AccountVectors))]
    public void Account_routes_to_its_pinned_shard(string id, ulong key, int shardOf8, int shardOf1024)
    {
        var accountId = UInt128.Parse(id, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(key, ShardRouter.AccountKey(accountId));
        Assert.Equal(shardOf8, ShardRouter.ShardOf(accountId, 8));
        Assert.Equal(shardOf1024, ShardRouter.ShardOf(accountId, 1024));
    }

    [Fact]
    public void Growing_the_shard_count_moves_keys_only_to_the_new_shard()
    {
        // Jump hash's defining property: going from n to n + 1 buckets, a key either stays or moves to bucket n.
        for (ulong key = 0; key < 20_000; key++)
        {
            var hashed = ShardRouter.AccountKey(key);
            for (var n = 1; n < 40; n++)
            {
                var before = ShardRouter.JumpHash(hashed, n);
                var after = ShardRouter.JumpHash(hashed, n + 1);
                Assert.True(after == before || after == n, $"key {key}: {n}→{n + 1} moved {before}→{after}");
            }
        }
    }

    [Fact]
    public void Accounts_spread_evenly_over_shards()
    {
        const int shards = 8;
        const int accounts = 80_000;
        var counts = new int[shards];
        for (ulong id = 1; id <= accounts; id++)
        {
            counts[ShardRouter.ShardOf(id, shards)]++;
        }

        // Each shard expects 10,000; a uniform hash stays well within ±5 % (about 17 standard deviations).
        Assert.All(counts, c => Assert.InRange(c, 9_500, 10_500));
    }
}
