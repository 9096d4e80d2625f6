using System.Net;
using RaftLedger.Node.Host;
using RaftLedger.Node.Tests.Transport;

namespace RaftLedger.Node.Tests.Host;

/// <summary>
/// Three nodes in this process on real loopback gRPC, each with its own data folder under one temp root (removed on
/// dispose). <see cref="Options"/> gives the settings every such test shares; a test adds its own with <c>with</c>.
/// </summary>
internal sealed class LoopbackCluster(string name, Func<HostOptions, HostOptions> customise) : IAsyncDisposable
{
    private readonly string root = Path.Combine(Path.GetTempPath(), $"raftledger-{name}-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<ulong, string> peers = Enumerable.Range(1, 3).ToDictionary(i => (ulong)i, _ => $"127.0.0.1:{LoopbackPorts.Free()}");

    public Dictionary<ulong, NodeHost> Nodes { get; } = [];

    public string DataDirectory(ulong id) => Path.Combine(root, $"n{id}");

    public HostOptions Options(ulong id) => customise(new HostOptions
    {
        NodeId = id,
        DataDirectory = DataDirectory(id),
        Listen = IPEndPoint.Parse(peers[id]),
        Peers = peers,
        Replication = 3,
        Secret = "test-secret",
        // Short ticks keep the tests quick; nothing waits on time, only on conditions.
        TickInterval = TimeSpan.FromMilliseconds(50),
        RequestTimeout = TimeSpan.FromSeconds(10),
    });

    public async Task StartAsync(ulong id) => Nodes[id] = await NodeHost.StartAsync(Options(id), cancel: TestContext.Current.CancellationToken);

    public async Task StartAllAsync()
    {
        foreach (var id in peers.Keys)
        {
            await StartAsync(id);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes.Values)
        {
            await node.DisposeAsync();
        }

        Directory.Delete(root, recursive: true);
    }
}
