namespace RaftLedger.Cli;

/// <summary>
/// Runs a node from validated flags: the node host (src/RaftLedger.Node/Host) with the client
/// API (<see cref="Node.Api.ApiServer"/>) in front of it. This is the single seam between the CLI
/// and the host.
/// </summary>
public static class NodeLauncher
{
    public static async Task<int> RunAsync(NodeLaunchOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        // The multi-raft host lands on the `node` branch; until it is merged there is nothing to run.
        await Console.Error.WriteLineAsync(
            $"raftledger node: this build has no node host yet (node {options.NodeId} not started). " +
            "Build from a branch where src/RaftLedger.Node/Host exists.");
        return 3;
    }
}
