using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Cli.Bench;

/// <summary>
/// Picks accounts by popularity rank: uniformly (s = 0) or Zipf(s), where rank r has weight
/// 1 / (r + 1)^s. Besides the global choice it samples the same distribution restricted to one
/// shard (per-shard cumulative tables), so a batch homed on a shard draws its debit accounts from
/// that shard without distorting the overall distribution. Immutable after construction and shared
/// by all generators; sampling is a binary search, with no allocation.
/// </summary>
public sealed class AccountChooser
{
    // Invariant: each cumulative table is strictly increasing and its last entry is the table's total weight.
    private readonly double[] cumulative;
    private readonly int[][] ranksByShard;
    private readonly double[][] cumulativeByShard;

    public AccountChooser(BenchAccounts accounts, double zipfExponent)
    {
        ArgumentNullException.ThrowIfNull(accounts);
        Invariant.Check(zipfExponent >= 0);
        Accounts = accounts;
        ZipfExponent = zipfExponent;
        var count = accounts.Count;
        cumulative = new double[count];
        var perShard = new List<int>[accounts.ShardCount];
        for (var shard = 0; shard < perShard.Length; shard++)
        {
            perShard[shard] = [];
        }

        var total = 0.0;
        for (var rank = 0; rank < count; rank++)
        {
            total += Weight(rank);
            cumulative[rank] = total;
            perShard[accounts.ShardByRank[rank]].Add(rank);
        }

        ranksByShard = new int[perShard.Length][];
        cumulativeByShard = new double[perShard.Length][];
        ShardWeights = new double[perShard.Length];
        for (var shard = 0; shard < perShard.Length; shard++)
        {
            ranksByShard[shard] = [.. perShard[shard]];
            cumulativeByShard[shard] = new double[ranksByShard[shard].Length];
            var sum = 0.0;
            for (var i = 0; i < ranksByShard[shard].Length; i++)
            {
                sum += Weight(ranksByShard[shard][i]);
                cumulativeByShard[shard][i] = sum;
            }

            ShardWeights[shard] = sum / total;
            Invariant.Check(ranksByShard[shard].Length >= BenchLimits.AccountsPerShardMin);
        }
    }

    public BenchAccounts Accounts { get; }

    public double ZipfExponent { get; }

    /// <summary>Probability that a globally chosen account lives on each shard.</summary>
    public double[] ShardWeights { get; }

    public int ShardCount => ranksByShard.Length;

    public int AccountsOnShard(int shard) => ranksByShard[shard].Length;

    private double Weight(int rank) => ZipfExponent == 0 ? 1.0 : Math.Pow(rank + 1, -ZipfExponent);

    /// <summary>A rank from the whole population.</summary>
    public int NextRank(DeterministicRandom random)
    {
        if (ZipfExponent == 0)
        {
            return random.NextInt(cumulative.Length);
        }

        return Search(cumulative, random.NextDouble() * cumulative[^1]);
    }

    /// <summary>A rank among the accounts of <paramref name="shard"/>, with the same relative weights.</summary>
    public int NextRankOnShard(DeterministicRandom random, int shard)
    {
        var ranks = ranksByShard[shard];
        if (ZipfExponent == 0)
        {
            return ranks[random.NextInt(ranks.Length)];
        }

        var table = cumulativeByShard[shard];
        return ranks[Search(table, random.NextDouble() * table[^1])];
    }

    /// <summary>A shard chosen with probability equal to its share of the total weight.</summary>
    public int NextShard(DeterministicRandom random) => Accounts.ShardByRank[NextRank(random)];

    /// <summary>The first index whose cumulative weight exceeds <paramref name="target"/>.</summary>
    private static int Search(double[] table, double target)
    {
        int low = 0, high = table.Length - 1;
        while (low < high)
        {
            var middle = (low + high) >>> 1;
            if (table[middle] > target)
            {
                high = middle;
            }
            else
            {
                low = middle + 1;
            }
        }

        Invariant.Check(low >= 0 && low < table.Length);
        return low;
    }
}
