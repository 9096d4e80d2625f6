namespace RaftLedger.Node.Host;

/// <summary>
/// The meta group committed a cluster map whose configuration differs from the one this node runs: the nodes were
/// started with different --shards, --replication or --peers. The committed map is what the cluster agreed on, so
/// this node is the one that stops (its scheduler ends with this exception; the node process exits with code 1).
/// </summary>
public sealed class ClusterMapConflictException : Exception
{
    public ClusterMapConflictException(ulong nodeId, ulong metaIndex, string difference)
        : base($"node {nodeId} stops: the cluster map committed at meta index {metaIndex} has {difference}. Every node of a cluster must be " +
            "started with the same --shards, --replication and --peers. For a new cluster: stop all nodes, wipe their data folders and start " +
            "them again with the same flags. To add this node back to a running cluster: wipe its data folder and restart it with the " +
            "cluster's flags and --rejoin.")
    {
        Difference = difference;
    }

    public ClusterMapConflictException()
    {
        Difference = "";
    }

    public ClusterMapConflictException(string message)
        : base(message)
    {
        Difference = "";
    }

    public ClusterMapConflictException(string message, Exception innerException)
        : base(message, innerException)
    {
        Difference = "";
    }

    /// <summary>What differs, as "committed where this node runs".</summary>
    public string Difference { get; }
}
