using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Simulation;

/// <summary>
/// The simulator's seeded PRNG: the core's <see cref="DeterministicRandom"/> (xoshiro256**) with the
/// choices a fault schedule needs. Every random choice of a run comes from one of these, so a seed replays
/// the run exactly. <see cref="Fork"/> gives independent streams so that, for example, the network's choices
/// do not shift when a client makes one more draw.
/// </summary>
public sealed class SimRandom
{
    private readonly DeterministicRandom random;

    public SimRandom(ulong seed) => random = new DeterministicRandom(seed);

    /// <summary>A new generator whose sequence is independent of this one's later draws.</summary>
    public SimRandom Fork() => new(NextUInt64());

    public ulong NextUInt64() => random.NextUInt64();

    /// <summary>Uniform in [0, maxExclusive), without modulo bias.</summary>
    public int Next(int maxExclusive) => random.NextInt(maxExclusive);

    /// <summary>Uniform in [minInclusive, maxExclusive).</summary>
    public int Between(int minInclusive, int maxExclusive) => random.NextInt(minInclusive, maxExclusive);

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => random.NextDouble();

    /// <summary>
    /// True with the given probability (0 never, 1 always). A probability of 0 draws nothing, so turning a
    /// fault off does not shift the rest of the run's choices.
    /// </summary>
    public bool Chance(double probability) => probability > 0 && random.NextDouble() < probability;

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
}
