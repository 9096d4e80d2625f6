using System.CommandLine;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace RaftLedger.Cli;

/// <summary>The flags of <c>raftledger node</c>, validated.</summary>
public sealed record NodeLaunchOptions
{
    public required ulong NodeId { get; init; }

    public required string DataDirectory { get; init; }

    /// <summary>Node-to-node (peer) gRPC address.</summary>
    public required IPEndPoint Listen { get; init; }

    /// <summary>REST/JSON client API address (HTTP/1.1).</summary>
    public required IPEndPoint Api { get; init; }

    /// <summary>gRPC client API address (cleartext HTTP/2); null = no gRPC client API.</summary>
    public IPEndPoint? Grpc { get; init; }

    /// <summary>Every member of a new cluster: node id → peer address (includes this node).</summary>
    public required IReadOnlyDictionary<ulong, IPEndPoint> Peers { get; init; }

    /// <summary>Client API addresses of the members (node id → REST address), shown by /v1/cluster; may be empty.</summary>
    public IReadOnlyDictionary<ulong, IPEndPoint> ApiPeers { get; init; } = new Dictionary<ulong, IPEndPoint>();

    public IReadOnlyDictionary<ulong, IPEndPoint> GrpcPeers { get; init; } = new Dictionary<ulong, IPEndPoint>();

    public required int ShardCount { get; init; }

    public required int Replication { get; init; }

    /// <summary>Shared secret peers present on every stream; null = none (local development only).</summary>
    public string? Secret { get; init; }

    /// <summary>This node's data folder was wiped: its groups rejoin without voting until caught up (<c>HostOptions.Rejoin</c>).</summary>
    public bool Rejoin { get; init; }
}

/// <summary><c>raftledger node</c>: runs one node until SIGTERM / Ctrl+C.</summary>
public static class NodeCommand
{
    public static Command Create()
    {
        var id = new Option<ulong>("--id") { Description = "This node's id (1, 2, ...), as listed in --peers.", Required = true };
        var data = new Option<string>("--data") { Description = "Data folder (WAL and ledger state); created if missing.", Required = true };
        var listen = new Option<string>("--listen") { Description = "Peer (node-to-node) address, host:port.", Required = true };
        var api = new Option<string>("--api") { Description = "REST/JSON client API address, host:port.", Required = true };
        var grpc = new Option<string?>("--grpc") { Description = "gRPC client API address, host:port (cleartext HTTP/2 needs its own port)." };
        var peers = new Option<string>("--peers") { Description = "Every node of a new cluster: id=host:port,id=host:port,...", Required = true };
        var apiPeers = new Option<string?>("--api-peers") { Description = "Every node's REST API address, id=host:port,... (shown by /v1/cluster and status)." };
        var grpcPeers = new Option<string?>("--grpc-peers") { Description = "Every node's gRPC client address, id=host:port,... (published in the cluster map: the SDK routes straight to shard leaders)." };
        var shards = new Option<int>("--shards") { Description = "Shards of a new cluster.", DefaultValueFactory = _ => 8 };
        var replication = new Option<int>("--replication") { Description = "Replicas per shard (at most the node count).", DefaultValueFactory = _ => 3 };
        var secret = new Option<string?>("--secret") { Description = "Cluster secret that peers must present." };
        var parent = new Option<int?>("--exit-with-parent") { Description = "Stop when this process id exits (used by cluster up and demo).", Hidden = true };
        var rejoin = new Option<bool>("--rejoin")
        {
            Description = "This node's data folder was wiped (to recover from a corrupt or unreadable one): its groups do not vote until they have caught up from the other replicas.",
        };
        var command = new Command("node", "Run one RaftLedger node.")
        {
            id, data, listen, api, grpc, peers, apiPeers, grpcPeers, shards, replication, secret, rejoin, parent,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!TryBuild(parse, out var options, out var error))
            {
                await Console.Error.WriteLineAsync($"raftledger node: {error}");
                return 2;
            }

            // Before the node opens its first socket: the runtime reads the setting only then.
            Node.Host.InlineSocketCompletions.ApplyToThisProcess();
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
                System.Runtime.InteropServices.PosixSignal.SIGTERM, context => { context.Cancel = true; RequestStop(stop); });
            _ = WatchParentAsync(parse.GetValue(parent), stop);
            return await NodeLauncher.RunAsync(options!, stop.Token);
        });
        return command;

        bool TryBuild(ParseResult parse, out NodeLaunchOptions? options, out string error)
        {
            options = null;
            if (!TryEndpoint(parse.GetValue(listen)!, "--listen", out var listenEndpoint, out error) ||
                !TryEndpoint(parse.GetValue(api)!, "--api", out var apiEndpoint, out error) ||
                !TryPeers(parse.GetValue(peers)!, "--peers", out var peerMap, out error))
            {
                return false;
            }

            Dictionary<ulong, IPEndPoint>? apiPeerMap = [];
            if (parse.GetValue(apiPeers) is { } apiPeersText && !TryPeers(apiPeersText, "--api-peers", out apiPeerMap, out error))
            {
                return false;
            }

            Dictionary<ulong, IPEndPoint>? grpcPeerMap = [];
            if (parse.GetValue(grpcPeers) is { } grpcPeersText && !TryPeers(grpcPeersText, "--grpc-peers", out grpcPeerMap, out error))
            {
                return false;
            }

            IPEndPoint? grpcEndpoint = null;
            if (parse.GetValue(grpc) is { } grpcText && !TryEndpoint(grpcText, "--grpc", out grpcEndpoint, out error))
            {
                return false;
            }

            options = new NodeLaunchOptions
            {
                NodeId = parse.GetValue(id),
                DataDirectory = parse.GetValue(data)!,
                Listen = listenEndpoint!,
                Api = apiEndpoint!,
                Grpc = grpcEndpoint,
                Peers = peerMap!,
                ApiPeers = apiPeerMap!,
                GrpcPeers = grpcPeerMap!,
                ShardCount = parse.GetValue(shards),
                Replication = parse.GetValue(replication),
                Secret = parse.GetValue(secret),
                Rejoin = parse.GetValue(rejoin),
            };
            return Validate(options, out error);
        }
    }

    /// <summary>Checks that the flags describe a possible node; the error says which flag to fix.</summary>
    public static bool Validate(NodeLaunchOptions options, out string error)
    {
        error = "";
        if (options.NodeId == 0)
        {
            error = "--id must be 1 or more (0 means 'no node' in Raft).";
        }
        else if (!options.Peers.ContainsKey(options.NodeId))
        {
            error = $"--peers does not list this node's id {options.NodeId}; add {options.NodeId}=<its --listen address>.";
        }
        else if (options.ShardCount < 1 || options.ShardCount > 4096)
        {
            error = $"--shards must be from 1 to 4096, got {options.ShardCount}.";
        }
        else if (options.Replication < 1 || options.Replication > options.Peers.Count)
        {
            error = $"--replication must be from 1 to the number of peers ({options.Peers.Count}), got {options.Replication}.";
        }

        return error.Length == 0;
    }

    public static bool TryEndpoint(string text, string flag, out IPEndPoint? endpoint, out string error)
    {
        error = "";
        if (IPEndPoint.TryParse(text, out endpoint) && endpoint.Port != 0)
        {
            return true;
        }

        var colon = text.LastIndexOf(':');
        if (colon > 0 && text[..colon] == "localhost" &&
            int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535)
        {
            endpoint = new IPEndPoint(IPAddress.Loopback, port);
            return true;
        }

        endpoint = null;
        error = $"{flag} must be an IP address and port like 127.0.0.1:7101, got '{text}'.";
        return false;
    }

    public static bool TryPeers(string text, string flag, out Dictionary<ulong, IPEndPoint>? peers, out string error)
    {
        peers = [];
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = item.IndexOf('=');
            if (equals <= 0 || !ulong.TryParse(item[..equals], NumberStyles.None, CultureInfo.InvariantCulture, out var peerId) || peerId == 0)
            {
                error = $"{flag} entries must look like 1=127.0.0.1:7101; '{item}' does not.";
                peers = null;
                return false;
            }

            if (!TryEndpoint(item[(equals + 1)..], $"{flag} entry {peerId}", out var endpoint, out error))
            {
                peers = null;
                return false;
            }

            if (!peers.TryAdd(peerId, endpoint!))
            {
                error = $"{flag} lists node {peerId} twice; give each node once.";
                peers = null;
                return false;
            }
        }

        error = peers.Count == 0 ? $"{flag} is empty; list every node as id=host:port." : "";
        return peers.Count > 0;
    }

    /// <summary>
    /// Asks the node to stop; a no-op once it has stopped. The runtime runs a SIGTERM handler on a thread of its own and
    /// does not wait for it when the registration is disposed, so a SIGTERM that arrives as the node finishes can run
    /// after <paramref name="stop"/> is disposed: Cancel then threw, unhandled on that thread, and the exiting node
    /// crashed (seen as a crash report of a node process in a CI run).
    /// </summary>
    public static void RequestStop(CancellationTokenSource stop)
    {
        ArgumentNullException.ThrowIfNull(stop);
        try
        {
            stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The node has already stopped and the process is exiting: nothing is left to cancel.
        }
    }

    /// <summary>Stops the node when the process that started it is gone, so no orphan outlives a crashed test run.</summary>
    private static async Task WatchParentAsync(int? parentId, CancellationTokenSource stop)
    {
        if (parentId is not { } pid)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        while (!stop.IsCancellationRequested && await timer.WaitForNextTickAsync(CancellationToken.None))
        {
            if (!IsAlive(pid))
            {
                await Console.Error.WriteLineAsync($"raftledger node: parent process {pid} exited; stopping.");
                RequestStop(stop);
            }
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
