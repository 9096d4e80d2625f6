using Microsoft.Extensions.Logging;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Host;

/// <summary>
/// The `raftledger node` process body: starts the node host and the client API in front of it, runs until
/// <paramref name="stop"/> fires (SIGTERM / Ctrl+C, wired by the CLI), then stops both cleanly.
/// </summary>
public static class NodeRunner
{
    /// <summary>Runs one node; returns the process exit code (0 after a clean stop).</summary>
    public static async Task<int> RunAsync(HostOptions options, ApiServerOptions? api, ILoggerFactory? logging, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(options);
        var logger = logging?.CreateLogger("RaftLedger.Node");
        await using var node = await NodeHost.StartAsync(options, logger, stop).ConfigureAwait(false);
        ApiServer? server = null;
        try
        {
            if (api is not null)
            {
                server = await ApiServer.StartAsync(api, node.Service, stop).ConfigureAwait(false);
            }

            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return 0;
        }
        finally
        {
            if (server is not null)
            {
                await server.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
