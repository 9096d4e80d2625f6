namespace RaftLedger.Client;

/// <summary>A member node as the cluster map describes it.</summary>
/// <param name="Id">The node id.</param>
/// <param name="ApiAddress">Its REST/JSON API address (host:port).</param>
/// <param name="PeerAddress">Its node-to-node address (host:port).</param>
/// <param name="GrpcAddress">Its gRPC client API address, or empty when the node does not publish it.</param>
/// <param name="Up">Whether the answering node currently hears from it.</param>
public sealed record ClusterNode(ulong Id, string ApiAddress, string PeerAddress, string GrpcAddress, bool Up);

/// <summary>A shard: its replicas, leader and Raft progress, as the answering node knew them.</summary>
/// <param name="Id">The shard id (0-based).</param>
/// <param name="Replicas">Node ids holding a replica.</param>
/// <param name="Leader">The leader's node id; 0 when none is known.</param>
/// <param name="Term">The Raft term the leader was seen in.</param>
/// <param name="CommitIndex">The shard's commit index.</param>
/// <param name="AppliedIndex">The shard's applied index.</param>
public sealed record ClusterShard(uint Id, IReadOnlyList<ulong> Replicas, ulong Leader, ulong Term, ulong CommitIndex, ulong AppliedIndex);

/// <summary>
/// The cluster map: nodes and shards. <see cref="LedgerClient.ClusterMap"/> is the client's merged
/// view (for each shard, the leader reported with the highest term by any node that answered).
/// </summary>
/// <param name="Nodes">The member nodes.</param>
/// <param name="Shards">The shards, by id.</param>
public sealed record ClusterMap(IReadOnlyList<ClusterNode> Nodes, IReadOnlyList<ClusterShard> Shards)
{
    /// <summary>The number of shards (events are routed with <c>ShardRouter.ShardOf(id, ShardCount)</c>).</summary>
    public int ShardCount => Shards.Count;

    /// <summary>The leader of <paramref name="shard"/>, 0 when none is known.</summary>
    public ulong LeaderOf(int shard) => shard >= 0 && shard < Shards.Count ? Shards[shard].Leader : 0;
}

/// <summary>
/// The cluster refused a request as malformed or too large (gRPC INVALID_ARGUMENT or
/// RESOURCE_EXHAUSTED, or another status that retrying cannot fix). Nothing was applied; the
/// message says what to change.
/// </summary>
public sealed class LedgerRequestException : Exception
{
    /// <summary>Creates the exception with the cluster's explanation.</summary>
    public LedgerRequestException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>
/// A read (lookup or query) or the first cluster-map read got no answer from any node before its
/// deadline. Reads change nothing, so calling again later is always safe.
/// </summary>
public sealed class LedgerUnavailableException : TimeoutException
{
    /// <summary>Creates the exception with the last failure seen.</summary>
    public LedgerUnavailableException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
