using RaftLedger.Common;

namespace RaftLedger.Raft;

/// <summary>
/// A small, fast, seeded pseudo-random generator (xoshiro256**, state expanded from the seed with
/// splitmix64). Every source of randomness in the core and the simulator is one of these, so a run is
/// reproduced exactly from its seed. Not for cryptography.
/// </summary>
public sealed class DeterministicRandom
{
    // Invariant: the four state words are never all zero (xoshiro would then only ever return 0).
    private ulong _s0;
    private ulong _s1;
    private ulong _s2;
    private ulong _s3;

    /// <summary>Creates a generator whose whole output sequence is determined by <paramref name="seed"/>.</summary>
    public DeterministicRandom(ulong seed)
    {
        Seed = seed;
        var x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
        Invariant.Check((_s0 | _s1 | _s2 | _s3) != 0);
    }

    /// <summary>The seed this generator started from (print it to replay a run).</summary>
    public ulong Seed { get; }

    /// <summary>The next 64 uniformly distributed bits.</summary>
    public ulong NextUInt64()
    {
        var result = RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform integer in [0, <paramref name="maxExclusive"/>); maxExclusive must be positive.</summary>
    public int NextInt(int maxExclusive)
    {
        Invariant.Check(maxExclusive > 0);
        return (int)NextBelow((ulong)maxExclusive);
    }

    /// <summary>A uniform integer in [<paramref name="minInclusive"/>, <paramref name="maxExclusive"/>).</summary>
    public int NextInt(int minInclusive, int maxExclusive)
    {
        Invariant.Check(minInclusive < maxExclusive);
        return minInclusive + (int)NextBelow((ulong)((long)maxExclusive - minInclusive));
    }

    /// <summary>A uniform double in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>True with probability <paramref name="probability"/> (0 never, 1 always).</summary>
    public bool NextBool(double probability) => NextDouble() < probability;

    /// <summary>
    /// A new generator seeded from this one's output: gives each node or component its own stream
    /// so that adding draws in one place does not shift the sequence seen by another.
    /// </summary>
    public DeterministicRandom Split() => new(NextUInt64());

    // Rejection sampling: a plain modulo would favour small values when bound does not divide 2^64.
    private ulong NextBelow(ulong bound)
    {
        var threshold = (0 - bound) % bound;
        while (true)
        {
            var r = NextUInt64();
            if (r >= threshold)
            {
                return r % bound;
            }
        }
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix64(ref ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        var z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
