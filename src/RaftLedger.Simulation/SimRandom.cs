using RaftLedger.Common;

namespace RaftLedger.Simulation;

/// <summary>
/// The simulator's seeded PRNG (xoshiro256**, seeded through SplitMix64). Every random choice of a run
/// comes from one of these, so a seed replays the run exactly. <see cref="Fork"/> gives independent
/// streams so that, for example, the network's choices do not shift when a client makes one more draw.
/// </summary>
public sealed class SimRandom
{
    // Invariant: not all four words are zero (xoshiro would then return zeros forever).
    private ulong _s0, _s1, _s2, _s3;

    public SimRandom(ulong seed)
    {
        var x = seed;
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
        Invariant.Check((_s0 | _s1 | _s2 | _s3) != 0);
    }

    /// <summary>A new generator whose sequence is independent of this one's later draws.</summary>
    public SimRandom Fork() => new(NextUInt64());

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

    /// <summary>Uniform in [0, maxExclusive). Uses rejection so that small ranges carry no modulo bias.</summary>
    public int Next(int maxExclusive)
    {
        Invariant.Check(maxExclusive > 0);
        var bound = (ulong)maxExclusive;
        var threshold = (0 - bound) % bound;
        while (true)
        {
            var r = NextUInt64();
            if (r >= threshold)
            {
                return (int)(r % bound);
            }
        }
    }

    /// <summary>Uniform in [minInclusive, maxExclusive).</summary>
    public int Between(int minInclusive, int maxExclusive)
    {
        Invariant.Check(minInclusive < maxExclusive);
        return minInclusive + Next(maxExclusive - minInclusive);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>True with the given probability (0 never, 1 always).</summary>
    public bool Chance(double probability) => probability > 0 && NextDouble() < probability;

    /// <summary>A uniformly chosen element.</summary>
    public T Pick<T>(IReadOnlyList<T> items)
    {
        Invariant.Check(items.Count > 0);
        return items[Next(items.Count)];
    }

    /// <summary>Shuffles in place (Fisher–Yates).</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong SplitMix(ref ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        var z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}
