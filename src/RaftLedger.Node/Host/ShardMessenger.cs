using RaftLedger.Common;
using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Host;

/// <summary>
/// Picks the node to send a cross-shard protocol message to: the node believed to lead the target shard. For a
/// shard this node hosts, its own replica knows the leader; for others it remembers the node the shard's leader
/// last wrote from, and when it has not heard back for a while it tries the shard's replicas in turn. Messages
/// sent to a node that does not lead the shard are dropped there; the protocol retries, so a wrong guess costs
/// a retry, never correctness. Scheduler thread only.
/// </summary>
internal sealed class ShardMessenger
{
    /// <summary>Messages sent to a remembered leader without hearing from that shard before the guess is dropped.</summary>
    public const int GuessSendsMax = 16;

    private readonly ClusterMap map;

    // Per shard: the node believed to lead it (0 = unknown), messages sent since it was last heard from, and the
    // next replica to try when no leader is known. Invariant: guessed[s] is 0 or a replica of shard s.
    private readonly ulong[] guessed;
    private readonly int[] sendsSinceHeard;
    private readonly int[] nextReplica;

    public ShardMessenger(ClusterMap map)
    {
        this.map = map;
        guessed = new ulong[map.ShardCount];
        sendsSinceHeard = new int[map.ShardCount];
        nextReplica = new int[map.ShardCount];
    }

    /// <summary>A message arrived from the leader of <paramref name="shard"/> on <paramref name="node"/>: remember it.</summary>
    public void Heard(int shard, ulong node)
    {
        if (shard < 0 || shard >= guessed.Length || Array.IndexOf(map.Shards[shard].Replicas, node) < 0)
        {
            return;
        }

        guessed[shard] = node;
        sendsSinceHeard[shard] = 0;
    }

    /// <summary>The node to send to for <paramref name="shard"/>, given what this node's own replica (if any) knows.</summary>
    public ulong Target(int shard, in ShardView local)
    {
        Invariant.Check(shard >= 0 && shard < guessed.Length);
        if (local.Hosted && local.Leader != 0)
        {
            return local.Leader;
        }

        if (guessed[shard] != 0 && ++sendsSinceHeard[shard] <= GuessSendsMax)
        {
            return guessed[shard];
        }

        // No fresh knowledge: try the replicas in turn (each send moves on), starting over with a new guess.
        var replicas = map.Shards[shard].Replicas;
        var target = replicas[nextReplica[shard]++ % replicas.Length];
        guessed[shard] = 0;
        Invariant.Check(target != 0);
        return target;
    }
}
