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
        var timeline = logger is null ? null : new StartupTimeline(logger, options.Time);
        timeline?.Mark("runtime up, node starting", InlineSocketCompletions.Enabled ? "socket completions inline" : "socket completions on the thread pool");
        await using var node = await NodeHost.StartAsync(options, logger, stop, timeline).ConfigureAwait(false);
        ApiServer? server = null;
        try
        {
            if (api is not null)
            {
                server = await ApiServer.StartAsync(api, node.Service, stop).ConfigureAwait(false);
                timeline?.Mark("client API listening");
            }

            // Run until stopped, or until the scheduler fails: a node whose WAL cannot sync or whose invariants broke
            // must stop serving rather than answer from state it cannot trust.
            var stopped = Task.Delay(Timeout.Infinite, stop);
            await Task.WhenAny(stopped, node.Scheduler.Completion).ConfigureAwait(false);
            if (node.Scheduler.Completion.Exception?.InnerException is ClusterMapConflictException conflict)
            {
                // The flags disagree with the cluster's: one line that says what differs and what to do.
                logger?.LogCritical("{Message}", conflict.Message);
                return 1;
            }

            if (node.Scheduler.Completion.IsFaulted)
            {
                logger?.LogCritical(node.Scheduler.Completion.Exception, "node {Node} stops: its scheduler failed", options.NodeId);
                if (FullDiskAdvice.For(node.Scheduler.Completion.Exception, options.DataDirectory) is { } advice)
                {
                    logger?.LogCritical("node {Node}: {Advice}", options.NodeId, advice);
                }
                return 1;
            }

            // A planned stop: hand this node's leaderships to followers first (bounded), so writes barely pause.
            await node.Scheduler.HandOffLeadershipAsync(options.ShutdownHandOffTimeout, CancellationToken.None).ConfigureAwait(false);
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
