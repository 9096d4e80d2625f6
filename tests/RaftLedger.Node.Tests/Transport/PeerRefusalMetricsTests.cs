using System.Net;
using System.Text;
using RaftLedger.Node.Host;
using RaftLedger.Node.Tests.Cluster;

namespace RaftLedger.Node.Tests.Transport;

/// <summary>Refused peer connections on /metrics: the refusing node and the refused dialer each count theirs.</summary>
public sealed class PeerRefusalMetricsTests : IAsyncLifetime
{
    // Node ids no other test uses: /metrics series are labelled by node id and tests share the process's registry.
    private const ulong Dialer = 41;
    private const ulong Acceptor = 42;

    private readonly string root = Path.Combine(Path.GetTempPath(), "raftledger-refusals-" + Guid.NewGuid().ToString("N"));
    private readonly List<NodeHost> nodes = [];

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        foreach (var node in nodes)
        {
            await node.DisposeAsync();
        }

        Directory.Delete(root, recursive: true);
    }

    [Fact]
    public async Task A_node_with_another_secret_is_counted_as_refused_on_both_nodes()
    {
        var cancel = TestContext.Current.CancellationToken;
        var peers = new Dictionary<ulong, string> { [Dialer] = $"127.0.0.1:{LoopbackPorts.Free()}", [Acceptor] = $"127.0.0.1:{LoopbackPorts.Free()}" };
        HostOptions Options(ulong id, string secret) => new()
        {
            NodeId = id,
            DataDirectory = Path.Combine(root, $"n{id}"),
            Listen = IPEndPoint.Parse(peers[id]),
            Peers = peers,
            ShardCount = 1,
            Replication = 2,
            Secret = secret,
            Durable = false,
        };

        nodes.Add(await NodeHost.StartAsync(Options(Acceptor, "cluster-secret"), cancel: cancel));
        nodes.Add(await NodeHost.StartAsync(Options(Dialer, "another-secret"), cancel: cancel));
        var (acceptor, dialer) = (nodes[0].Transport, nodes[1].Transport);
        await Eventually.Until(() => acceptor.RejectedStreams >= 1 && dialer.RefusedDials >= 1, "the dialer's hello refused");

        var metrics = await ScrapeAsync(cancel);
        Assert.True(ClusterProcessTests.MetricSum(metrics, "raftledger_peer_streams_refused_total", $"node=\"{Acceptor}\"") >= 1, metrics);
        Assert.True(ClusterProcessTests.MetricSum(metrics, "raftledger_peer_dials_refused_total", $"node=\"{Dialer}\"") >= 1, metrics);
        Assert.Equal(0, ClusterProcessTests.MetricSum(metrics, "raftledger_peer_streams_refused_total", $"node=\"{Dialer}\""));
    }

    private static async Task<string> ScrapeAsync(CancellationToken cancel)
    {
        using var stream = new MemoryStream();
        await Prometheus.Metrics.DefaultRegistry.CollectAndExportAsTextAsync(stream, cancel);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
