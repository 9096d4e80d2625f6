using System.Buffers.Binary;
using System.IO.Hashing;
using RaftLedger.Common;

namespace RaftLedger.Common.Placement;

/// <summary>
/// Account → shard routing. Every node and every client must compute the same answer forever, so the
/// functions here are pinned by golden-vector tests: changing them silently would move accounts.
/// </summary>
public static class ShardRouter
{
    /// <summary>The most shards a cluster can be bootstrapped with (design brief: up to 4096).</summary>
    public const int ShardCountMax = 4096;

    /// <summary>
    /// Jump consistent hash (Lamping and Veach, 2014): maps <paramref name="key"/> to a bucket in
    /// [0, <paramref name="bucketCount"/>) so that growing the bucket count moves only 1/n of the keys.
    /// </summary>
    public static int JumpHash(ulong key, int bucketCount)
    {
        Invariant.Check(bucketCount > 0);
        long bucket = -1;
        long next = 0;
        // Each round moves the key forward to the next bucket it would jump to; the loop runs
        // O(ln bucketCount) times in expectation and stops once the jump lands past the last bucket.
        while (next < bucketCount)
        {
            bucket = next;
            key = unchecked((key * 2862933555777941757UL) + 1);
            next = (long)((bucket + 1) * ((double)(1L << 31) / ((key >> 33) + 1)));
        }

        Invariant.Check(bucket >= 0 && bucket < bucketCount);
        return (int)bucket;
    }

    /// <summary>XxHash64 (seed 0) of the account id's 16 bytes in little-endian order.</summary>
    public static ulong AccountKey(UInt128 accountId)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128LittleEndian(bytes, accountId);
        return XxHash64.HashToUInt64(bytes);
    }

    /// <summary>The shard (0-based) that owns <paramref name="accountId"/> in a cluster of <paramref name="shardCount"/> shards.</summary>
    public static int ShardOf(UInt128 accountId, int shardCount)
    {
        Invariant.Check(shardCount > 0 && shardCount <= ShardCountMax);
        return JumpHash(AccountKey(accountId), shardCount);
    }
}
