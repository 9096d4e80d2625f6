using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using RaftLedger.Node.Host;
using RaftLedger.Node.Placement;

namespace RaftLedger.Cli.Processes;

/// <summary>One node of a local cluster: its id, addresses and data folder.</summary>
public sealed record LocalNodeSpec(ulong Id, IPEndPoint Peer, IPEndPoint Api, IPEndPoint Grpc, string DataDirectory)
{
    public Uri ApiUrl => new($"http://{Api}");

    public Uri GrpcUrl => new($"http://{Grpc}");
}

/// <summary>How to lay out a local cluster.</summary>
public sealed record LocalClusterOptions
{
    /// <summary>Each node's data lives in <c>{DataRoot}/n{id}</c>.</summary>
    public required string DataRoot { get; init; }

    public int NodeCount { get; init; } = 3;

    public int ShardCount { get; init; } = 8;

    public int Replication { get; init; } = 3;

    /// <summary>Node i: peer port base+i, API base+1000+i, gRPC base+2000+i. Null: free ports chosen by the OS.</summary>
    public int? BasePort { get; init; }

    /// <summary>Extra flags given to every node (e.g. shorter timeouts in tests).</summary>
    public IReadOnlyList<string> ExtraNodeArguments { get; init; } = [];
}

/// <summary>
/// Starts, kills and restarts <c>raftledger node</c> child processes on loopback. Used by
/// <c>cluster up</c>, <c>demo</c> and the process-level tests; it only ever signals the processes
/// it started, by pid, and every wait is bounded.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    public const int NodeCountMax = 9;
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(10);
    private readonly Dictionary<ulong, NodeProcess> running = [];
    private readonly Dictionary<ulong, Dictionary<string, string>> environments = [];
    private readonly string peersArgument;
    private readonly string apiPeersArgument;
    private readonly string grpcPeersArgument;
    private readonly string secret;

    private LocalCluster(LocalClusterOptions options, IReadOnlyList<LocalNodeSpec> nodes, string secret)
    {
        Options = options;
        Nodes = nodes;
        this.secret = secret;
        peersArgument = string.Join(',', nodes.Select(node => $"{node.Id}={node.Peer}"));
        apiPeersArgument = string.Join(',', nodes.Select(node => $"{node.Id}={node.Api}"));
        grpcPeersArgument = string.Join(',', nodes.Select(node => $"{node.Id}={node.Grpc}"));
    }

    public LocalClusterOptions Options { get; }

    public IReadOnlyList<LocalNodeSpec> Nodes { get; }

    public static LocalCluster Create(LocalClusterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.NodeCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.NodeCount, NodeCountMax);
        Directory.CreateDirectory(options.DataRoot);
        var ports = PortsOf(options);
        var nodes = new List<LocalNodeSpec>();
        for (var i = 0; i < options.NodeCount; i++)
        {
            nodes.Add(new LocalNodeSpec(
                (ulong)(i + 1),
                new IPEndPoint(IPAddress.Loopback, ports[3 * i]),
                new IPEndPoint(IPAddress.Loopback, ports[(3 * i) + 1]),
                new IPEndPoint(IPAddress.Loopback, ports[(3 * i) + 2]),
                Path.Combine(options.DataRoot, $"n{i + 1}")));
        }

        return new LocalCluster(options, nodes, LoadOrCreateSecret(options.DataRoot));
    }

    /// <summary>
    /// Peer, API and gRPC port of each node in turn. A folder that already holds the cluster keeps the ports it was founded
    /// with: every node dials its peers at the addresses stored in its data folder, so nodes restarted on other ports
    /// would never reach each other (and `cluster up` would wait out its ready timeout without saying why).
    /// </summary>
    private static int[] PortsOf(LocalClusterOptions options)
    {
        int[]? requested = options.BasePort is { } basePort
            ? [.. Enumerable.Range(1, options.NodeCount).SelectMany(i => new[] { basePort + i, basePort + 1000 + i, basePort + 2000 + i })]
            : null;
        if (StoredPorts(options) is not { } stored)
        {
            return requested ?? FreePorts.Take(options.NodeCount * 3);
        }

        if (requested is not null && !requested.SequenceEqual(stored))
        {
            throw new LocalClusterException(
                $"{options.DataRoot} holds a cluster whose nodes use other ports (peer, API, gRPC: {string.Join(", ", stored)}). " +
                "Start it with --base-port 0 to reuse them, or use a new --data folder.");
        }

        return stored;
    }

    /// <summary>The ports in the cluster map stored by the first node folder that has one; null for a new cluster.</summary>
    private static int[]? StoredPorts(LocalClusterOptions options)
    {
        for (var id = 1; id <= options.NodeCount; id++)
        {
            var folder = Path.Combine(options.DataRoot, $"n{id}");
            if (ReadStoredNodes(folder) is not { } nodes)
            {
                continue;
            }

            var ids = nodes.Select(node => node.Id).Order().ToArray();
            if (!ids.SequenceEqual(Enumerable.Range(1, options.NodeCount).Select(i => (ulong)i)))
            {
                throw new LocalClusterException($"{folder} belongs to a cluster of nodes {string.Join(",", ids)}; --nodes {options.NodeCount} does not match it. Use a new --data folder.");
            }

            return [.. nodes.OrderBy(node => node.Id).SelectMany(node => new[] { PortOf(node.PeerAddress), PortOf(node.ApiAddress), PortOf(node.GrpcAddress) })];
        }

        return null;
    }

    private static IReadOnlyList<ClusterNode>? ReadStoredNodes(string folder)
    {
        try
        {
            return StoredClusterMap.ReadNodes(folder);
        }
        catch (InvalidDataException exception)
        {
            throw new LocalClusterException(exception.Message);
        }
    }

    private static int PortOf(string address) =>
        IPEndPoint.TryParse(address, out var endpoint) && endpoint.Port > 0
            ? endpoint.Port
            : throw new LocalClusterException($"the stored cluster map has the address '{address}', which `cluster up` cannot reuse. Use a new --data folder.");

    /// <summary>The cluster secret is kept beside the data so a restarted cluster uses the same one.</summary>
    private static string LoadOrCreateSecret(string dataRoot)
    {
        var path = Path.Combine(dataRoot, "cluster-secret");
        if (File.Exists(path))
        {
            return File.ReadAllText(path).Trim();
        }

        var secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        File.WriteAllText(path, secret);
        return secret;
    }

    public LocalNodeSpec Node(ulong id) => Nodes.Single(node => node.Id == id);

    /// <summary>
    /// Where node <c>from</c> dials node <c>to</c> (e.g. a fault-injecting proxy); null: every node dials
    /// every other node directly at its <see cref="LocalNodeSpec.Peer"/> address. Set before the nodes first
    /// start: a node keeps the peer addresses of its first start in its data folder.
    /// </summary>
    public Func<ulong, ulong, IPEndPoint>? PeerRoute { get; set; }

    /// <summary>Sets an environment variable for node <paramref name="id"/>'s process from its next start on.</summary>
    public void SetNodeEnvironment(ulong id, string name, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!environments.TryGetValue(Node(id).Id, out var variables))
        {
            environments[id] = variables = [];
        }

        variables[name] = value;
    }

    /// <summary>The pid of node <paramref name="id"/>'s running process, or null.</summary>
    public int? ProcessId(ulong id) => IsRunning(id) ? running[id].ProcessId : null;

    /// <summary>SIGSTOP node <paramref name="id"/>; false if it is not running.</summary>
    public bool Pause(ulong id) => IsRunning(id) && running[id].Pause();

    /// <summary>SIGCONT node <paramref name="id"/>; false if it is not running.</summary>
    public bool Resume(ulong id) => IsRunning(id) && running[id].Resume();

    public bool IsRunning(ulong id) => running.TryGetValue(id, out var process) && !process.HasExited;

    /// <summary>The arguments that run node <paramref name="id"/> (also printed by <c>cluster up</c>).</summary>
    public IReadOnlyList<string> NodeArguments(ulong id)
    {
        var node = Node(id);
        var arguments = new List<string>
        {
            "node",
            "--id", id.ToString(CultureInfo.InvariantCulture),
            "--data", node.DataDirectory,
            "--listen", node.Peer.ToString(),
            "--api", node.Api.ToString(),
            "--grpc", node.Grpc.ToString(),
            "--peers", PeersArgument(id),
            "--api-peers", apiPeersArgument,
            "--grpc-peers", grpcPeersArgument,
            "--shards", Options.ShardCount.ToString(CultureInfo.InvariantCulture),
            "--replication", Options.Replication.ToString(CultureInfo.InvariantCulture),
            "--secret", secret,
            // The child stops itself if this process dies without stopping it (e.g. a crashed test run).
            "--exit-with-parent", Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
        };
        arguments.AddRange(Options.ExtraNodeArguments);
        return arguments;
    }

    private string PeersArgument(ulong id) => PeerRoute is not { } route
        ? peersArgument
        : string.Join(',', Nodes.Select(node => $"{node.Id}={(node.Id == id ? node.Peer : route(id, node.Id))}"));

    public void StartAll()
    {
        foreach (var node in Nodes)
        {
            Start(node.Id);
        }
    }

    /// <summary>Starts node <paramref name="id"/>, with <paramref name="extraArguments"/> after its usual ones (this start only).</summary>
    public void Start(ulong id, IReadOnlyList<string>? extraArguments = null)
    {
        if (IsRunning(id))
        {
            throw new InvalidOperationException($"node {id} is already running (pid {running[id].ProcessId}).");
        }

        var node = Node(id);
        Directory.CreateDirectory(node.DataDirectory);
        if (running.Remove(id, out var previous))
        {
            previous.Dispose();
        }

        var arguments = extraArguments is null ? NodeArguments(id) : [.. NodeArguments(id), .. extraArguments];
        running[id] = NodeProcess.Start(arguments, Path.Combine(Options.DataRoot, $"n{id}.log"), environments.GetValueOrDefault(id));
    }

    /// <summary>SIGKILL node <paramref name="id"/> and wait (bounded) until it is gone.</summary>
    public async Task KillAsync(ulong id)
    {
        if (running.TryGetValue(id, out var process))
        {
            process.Kill();
            await process.WaitForExitAsync(StopGrace);
        }
    }

    /// <summary>SIGTERM node <paramref name="id"/> (SIGKILL after a grace period).</summary>
    public async Task StopAsync(ulong id)
    {
        if (running.TryGetValue(id, out var process))
        {
            await process.StopAsync(StopGrace);
        }
    }

    public async Task StopAllAsync()
    {
        await Task.WhenAll(running.Keys.ToList().Select(StopAsync));
    }

    public async Task KillAllAsync()
    {
        // All at once, as a power loss would: signal every node before waiting for any.
        foreach (var process in running.Values)
        {
            process.Kill();
        }

        await Task.WhenAll(running.Keys.ToList().Select(KillAsync));
    }

    /// <summary>
    /// Waits until every given node answers 200 on /readyz, or fails with the tail of the log of a
    /// node that exited or of the first node that is not ready when <paramref name="timeout"/> passes.
    /// </summary>
    public async Task WaitReadyAsync(IEnumerable<ulong> ids, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        var pending = ids.ToHashSet();
        while (pending.Count > 0)
        {
            foreach (var id in pending.ToList())
            {
                if (!IsRunning(id))
                {
                    throw new LocalClusterException($"node {id} exited before it was ready.{LogTail(id)}");
                }

                if (await IsReadyAsync(http, Node(id).ApiUrl, cancellationToken))
                {
                    pending.Remove(id);
                }
            }

            if (pending.Count > 0 && DateTime.UtcNow > deadline)
            {
                var first = pending.Min();
                throw new LocalClusterException(
                    $"node(s) {string.Join(", ", pending.Order())} not ready after {timeout.TotalSeconds:0} s.{LogTail(first)}");
            }

            if (pending.Count > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            }
        }
    }

    public Task WaitAllReadyAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        WaitReadyAsync(running.Keys, timeout, cancellationToken);

    private static async Task<bool> IsReadyAsync(HttpClient http, Uri apiUrl, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync(new Uri(apiUrl, "/readyz"), cancellationToken);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>The last lines of a node's log, for error messages.</summary>
    public string LogTail(ulong id, int lines = 20)
    {
        var path = Path.Combine(Options.DataRoot, $"n{id}.log");
        if (!File.Exists(path))
        {
            return "";
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var all = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return $"\n--- last lines of {path} ---\n" + string.Join('\n', all.TakeLast(lines));
    }

    public async ValueTask DisposeAsync()
    {
        await KillAllAsync();
        foreach (var process in running.Values)
        {
            process.Dispose();
        }

        running.Clear();
    }
}

/// <summary>A local cluster could not be brought to the state asked for (with the node's log tail).</summary>
public sealed class LocalClusterException(string message) : Exception(message);
