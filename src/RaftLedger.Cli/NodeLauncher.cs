using Microsoft.Extensions.Logging;
using RaftLedger.Node.Api;
using RaftLedger.Node.Host;
using RaftLedger.Storage.Wal;
using RocksDbSharp;

namespace RaftLedger.Cli;

/// <summary>
/// Runs a node from validated flags: the node host (<see cref="NodeRunner"/>) with the client API
/// (<see cref="ApiServer"/>) in front of it. This is the single seam between the CLI and the host.
/// </summary>
public static class NodeLauncher
{
    public static async Task<int> RunAsync(NodeLaunchOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var host = ToHostOptions(options);
        try
        {
            host.Validate();
        }
        catch (ArgumentException exception)
        {
            await Console.Error.WriteLineAsync($"raftledger node: {exception.Message}");
            return 2;
        }

        using var logging = LoggerFactory.Create(builder => builder
            .AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.TimestampFormat = "HH:mm:ss.fff ";
            })
            .SetMinimumLevel(LogLevel.Information));
        var api = new ApiServerOptions { RestEndpoint = options.Api, GrpcEndpoint = options.Grpc };
        try
        {
            return await NodeRunner.RunAsync(host, api, logging, cancellationToken);
        }
        catch (Exception exception) when (exception is IOException or InvalidDataException or WalCorruptionException or RocksDbException)
        {
            // An address already in use, or a data folder that cannot be opened: unreadable or corrupt files, a full
            // disk. The message says which; a stack trace would bury it.
            var logger = logging.CreateLogger("RaftLedger.Node");
            logger.LogCritical(exception, "Node {NodeId} stopped: {Message}", options.NodeId, exception.Message);
            if (FullDiskAdvice.For(exception, host.DataDirectory) is { } advice)
            {
                logger.LogCritical("Node {NodeId}: {Advice}", options.NodeId, advice);
            }

            return 1;
        }
    }

    public static HostOptions ToHostOptions(NodeLaunchOptions options)
    {
        var host = new HostOptions
        {
            NodeId = options.NodeId,
            DataDirectory = Path.GetFullPath(options.DataDirectory),
            Listen = options.Listen,
            ApiAddress = options.Api.ToString(),
            Peers = options.Peers.ToDictionary(peer => peer.Key, peer => peer.Value.ToString()),
            ApiAddresses = options.ApiPeers.ToDictionary(peer => peer.Key, peer => peer.Value.ToString()),
            GrpcAddress = options.Grpc?.ToString() ?? "",
            GrpcAddresses = options.GrpcPeers.ToDictionary(peer => peer.Key, peer => peer.Value.ToString()),
            ShardCount = options.ShardCount,
            Replication = options.Replication,
            Rejoin = options.Rejoin,
        };
        // Without --secret the host's development default applies.
        return options.Secret is null ? host : host with { Secret = options.Secret };
    }
}
