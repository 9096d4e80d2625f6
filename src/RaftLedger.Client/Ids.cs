using RaftLedger.Common;
using RaftLedger.Common.Placement;

namespace RaftLedger.Client;

/// <summary>
/// ULID-like 128-bit ids: the top 48 bits are milliseconds since the Unix epoch, the low 80 bits
/// random. Ids made later sort higher (to the millisecond), which keeps the ledger's id indexes
/// append-mostly, and 80 random bits make collisions between processes negligible.
/// </summary>
public static class UlidBits
{
    /// <summary>Bits of random below the 48-bit time.</summary>
    public const int RandomBits = 80;

    /// <summary>The largest millisecond time that fits in 48 bits (year 10889).</summary>
    public const ulong TimeMillisecondsMax = (1UL << 48) - 1;

    /// <summary>Composes an id from a millisecond time and random bits (only the low 80 bits of <paramref name="random"/> are used).</summary>
    public static UInt128 Compose(ulong unixTimeMilliseconds, UInt128 random)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(unixTimeMilliseconds, TimeMillisecondsMax);
        var randomMask = (UInt128.One << RandomBits) - 1;
        return ((UInt128)unixTimeMilliseconds << RandomBits) | (random & randomMask);
    }

    /// <summary>The millisecond time an id was made at.</summary>
    public static ulong TimeOf(UInt128 id) => (ulong)(id >> RandomBits);

    /// <summary>128 random bits from <paramref name="random"/>.</summary>
    public static UInt128 Next128(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(bytes);
    }

    /// <summary>The current time in ms, never below the last value returned (clocks can step back).</summary>
    internal static ulong MonotonicNowMilliseconds(TimeProvider time)
    {
        var now = (ulong)time.GetUtcNow().ToUnixTimeMilliseconds();
        while (true)
        {
            var last = (ulong)Interlocked.Read(ref lastMilliseconds);
            var next = Math.Max(last, now);
            if (next == last || Interlocked.CompareExchange(ref lastMilliseconds, (long)next, (long)last) == (long)last)
            {
                return next;
            }
        }
    }

    private static long lastMilliseconds;
}

/// <summary>New account ids (see <see cref="UlidBits"/>).</summary>
public static class AccountIds
{
    /// <summary>A new unique, time-ordered account id from the system clock and a thread-safe PRNG seeded by the OS.</summary>
    public static UInt128 New() => New(UlidBits.MonotonicNowMilliseconds(TimeProvider.System), Random.Shared);

    /// <summary>The id for millisecond time <paramref name="unixTimeMilliseconds"/> with randomness from <paramref name="random"/> (pure: same inputs, same id).</summary>
    public static UInt128 New(ulong unixTimeMilliseconds, Random random)
    {
        var id = UlidBits.Compose(unixTimeMilliseconds, UlidBits.Next128(random));
        // Zero and u128 max are refused by the ledger; a 48-bit time above zero rules both out.
        Invariant.Check(id != 0 || unixTimeMilliseconds == 0);
        return id;
    }
}

/// <summary>
/// New transfer ids whose home shard (<c>shard(transfer id)</c>, where the transfer is recorded) is
/// the debit account's shard, so a transfer between two accounts of one shard stays on that shard
/// (one Raft write, no cross-shard protocol) and its request goes straight to that shard's leader.
/// </summary>
public static class TransferIds
{
    /// <summary>
    /// Draws are repeated until the id lands on the wanted shard: on average <c>shardCount</c> draws,
    /// each about 50 ns. This bound only guards against a broken random source.
    /// </summary>
    public const int DrawsMax = 1_000_000;

    /// <summary>A new unique, time-ordered transfer id on the debit account's shard, from the system clock and <see cref="Random.Shared"/>.</summary>
    public static UInt128 New(UInt128 debitAccountId, int shardCount) =>
        New(debitAccountId, shardCount, UlidBits.MonotonicNowMilliseconds(TimeProvider.System), Random.Shared);

    /// <summary>
    /// The id for <paramref name="unixTimeMilliseconds"/> with randomness from <paramref name="random"/>,
    /// resampled until <c>ShardRouter.ShardOf(id) == ShardRouter.ShardOf(debitAccountId)</c> (pure: same inputs, same id).
    /// </summary>
    public static UInt128 New(UInt128 debitAccountId, int shardCount, ulong unixTimeMilliseconds, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(shardCount, ShardRouter.ShardCountMax);
        var shard = ShardRouter.ShardOf(debitAccountId, shardCount);
        for (var draw = 0; draw < DrawsMax; draw++)
        {
            var id = UlidBits.Compose(unixTimeMilliseconds, UlidBits.Next128(random));
            if (ShardRouter.ShardOf(id, shardCount) == shard)
            {
                return id;
            }
        }

        throw new InvalidOperationException($"No id on shard {shard} of {shardCount} in {DrawsMax} draws: the random source is broken.");
    }
}
