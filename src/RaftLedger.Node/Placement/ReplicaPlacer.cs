using System.Buffers.Binary;
using System.IO.Hashing;
using RaftLedger.Common;
using RaftLedger.Common.Placement;

namespace RaftLedger.Node.Placement;

/// <summary>
/// Chooses which nodes hold each shard's replicas, and which replica should lead, at bootstrap.
/// Rendezvous (highest random weight) hashing gives each shard a stable preference order over node ids;
/// the top R nodes take the replicas, then a balancing pass moves replicas and preferred leaders so that
/// every node's count is within 1 of every other's. Pure and deterministic: same inputs, same map.
/// </summary>
public static class ReplicaPlacer
{
    /// <summary>Most replicas a shard can have (Raft groups beyond 7 voters only cost latency).</summary>
    public const int ReplicationMax = 7;

    /// <summary>The rendezvous weight of <paramref name="nodeId"/> for <paramref name="shard"/>: XxHash64 of both, little-endian.</summary>
    public static ulong Weight(int shard, ulong nodeId)
    {
        Span<byte> bytes = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, nodeId);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[8..], shard);
        return XxHash64.HashToUInt64(bytes);
    }

    /// <summary>
    /// Places <paramref name="shardCount"/> shards with <paramref name="replication"/> replicas each on
    /// <paramref name="nodeIds"/>. Each result lists the shard's replicas with the preferred leader first.
    /// </summary>
    public static ShardPlacement[] Place(IReadOnlyList<ulong> nodeIds, int shardCount, int replication)
    {
        Validate(nodeIds, shardCount, replication);
        var nodes = nodeIds.Order().ToArray();
        var replicas = new List<ulong>[shardCount];
        for (var shard = 0; shard < shardCount; shard++)
        {
            replicas[shard] = RankNodes(shard, nodes).Take(replication).ToList();
        }

        BalanceReplicas(nodes, replicas);
        var leaders = new ulong[shardCount];
        for (var shard = 0; shard < shardCount; shard++)
        {
            // The replica the shard itself ranks highest leads first; balancing only moves what it must.
            leaders[shard] = RankNodes(shard, replicas[shard].ToArray()).First();
        }

        BalanceLeaders(nodes, replicas, leaders);
        var result = new ShardPlacement[shardCount];
        for (var shard = 0; shard < shardCount; shard++)
        {
            var ordered = RankNodes(shard, replicas[shard].ToArray()).Where(n => n != leaders[shard]);
            result[shard] = new ShardPlacement(shard, [leaders[shard], .. ordered]);
        }

        return result;
    }

    private static void Validate(IReadOnlyList<ulong> nodeIds, int shardCount, int replication)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nodeIds.Count, 1, nameof(nodeIds));
        ArgumentOutOfRangeException.ThrowIfLessThan(shardCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(shardCount, ShardRouter.ShardCountMax);
        ArgumentOutOfRangeException.ThrowIfLessThan(replication, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(replication, Math.Min(ReplicationMax, nodeIds.Count));
        if (nodeIds.Contains(0UL) || nodeIds.Distinct().Count() != nodeIds.Count)
        {
            throw new ArgumentException("node ids must be distinct and not 0", nameof(nodeIds));
        }
    }

    /// <summary>Nodes in the shard's rendezvous order: highest weight first, ties broken by the lower id.</summary>
    private static IEnumerable<ulong> RankNodes(int shard, ulong[] nodes) =>
        nodes.OrderByDescending(n => Weight(shard, n)).ThenBy(n => n);

    /// <summary>
    /// Moves single replicas from the most to the least loaded node until loads differ by at most 1.
    /// A move always exists while max - min ≥ 2: the busier node holds at least two shards the idler one
    /// does not. Each move lowers the sum of squared loads, so the loop terminates.
    /// </summary>
    private static void BalanceReplicas(ulong[] nodes, List<ulong>[] replicas)
    {
        var load = nodes.ToDictionary(n => n, _ => 0);
        foreach (var set in replicas)
        {
            foreach (var node in set)
            {
                load[node]++;
            }
        }

        var movesMax = replicas.Length * nodes.Length;
        for (var moves = 0; ; moves++)
        {
            Invariant.Check(moves <= movesMax, "replica balancing must converge");
            var busiest = nodes.OrderByDescending(n => load[n]).ThenBy(n => n).First();
            var idlest = nodes.OrderBy(n => load[n]).ThenBy(n => n).First();
            if (load[busiest] - load[idlest] <= 1)
            {
                return;
            }

            // Move the shard where the idle node ranks highest, so the result stays close to pure HRW.
            var shard = Enumerable.Range(0, replicas.Length)
                .Where(s => replicas[s].Contains(busiest) && !replicas[s].Contains(idlest))
                .OrderByDescending(s => Weight(s, idlest)).ThenBy(s => s).First();
            replicas[shard][replicas[shard].IndexOf(busiest)] = idlest;
            load[busiest]--;
            load[idlest]++;
        }
    }

    /// <summary>
    /// Moves preferred leadership until leader counts differ by at most 1. A direct move from the busiest
    /// node may not exist, so it searches for a chain busiest → … → idle node where each step hands one
    /// shard's leadership to another replica of that shard (an augmenting path); intermediate nodes keep
    /// their count. Stops when no chain exists (only possible when the replica layout forbids balance).
    /// </summary>
    private static void BalanceLeaders(ulong[] nodes, List<ulong>[] replicas, ulong[] leaders)
    {
        var movesMax = leaders.Length * nodes.Length;
        for (var moves = 0; moves <= movesMax; moves++)
        {
            var load = nodes.ToDictionary(n => n, _ => 0);
            foreach (var leader in leaders)
            {
                load[leader]++;
            }

            var improved = false;
            foreach (var source in nodes.OrderByDescending(n => load[n]).ThenBy(n => n))
            {
                if (TryShiftLeadership(source, load, replicas, leaders))
                {
                    improved = true;
                    break;
                }
            }

            if (!improved)
            {
                return;
            }
        }

        Invariant.Check(false, "leader balancing must converge");
    }

    private static bool TryShiftLeadership(ulong source, Dictionary<ulong, int> load, List<ulong>[] replicas, ulong[] leaders)
    {
        // Breadth-first search over "u leads a shard that v replicates"; via[v] is that shard.
        var via = new Dictionary<ulong, int> { [source] = -1 };
        var queue = new Queue<ulong>();
        queue.Enqueue(source);
        while (queue.Count > 0)
        {
            var node = queue.Dequeue();
            if (load[node] <= load[source] - 2)
            {
                for (var at = node; at != source;)
                {
                    var shard = via[at];
                    var previous = leaders[shard];
                    leaders[shard] = at;
                    at = previous;
                }

                return true;
            }

            for (var shard = 0; shard < leaders.Length; shard++)
            {
                if (leaders[shard] != node)
                {
                    continue;
                }

                foreach (var next in replicas[shard])
                {
                    if (via.TryAdd(next, shard))
                    {
                        queue.Enqueue(next);
                    }
                }
            }
        }

        return false;
    }
}

/// <summary>One shard's replicas; <see cref="Replicas"/>[0] is the preferred leader. Node ids are never 0.</summary>
public sealed record ShardPlacement(int Shard, ulong[] Replicas)
{
    /// <summary>The node that should lead this shard when every replica is up.</summary>
    public ulong PreferredLeader => Replicas[0];
}
