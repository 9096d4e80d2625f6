using System.Net;

namespace RaftLedger.Cli.Verify.Proxy;

/// <summary>
/// One <see cref="FaultProxy"/> per ordered node pair (from → to): node <c>from</c> dials node <c>to</c> through
/// it. The harness partitions the cluster by naming the directed links that drop traffic; a link a → b is cut on
/// both proxies that carry a's bytes to b (a's own dial of b, forward; and b's dial of a, backward).
/// </summary>
public sealed class ProxyMesh : IAsyncDisposable
{
    private readonly Dictionary<(ulong From, ulong To), FaultProxy> proxies = [];
    private readonly HashSet<(ulong From, ulong To)> cut = [];
    private readonly object gate = new();

    public ProxyMesh(IReadOnlyDictionary<ulong, IPEndPoint> peerAddresses)
    {
        ArgumentNullException.ThrowIfNull(peerAddresses);
        foreach (var from in peerAddresses.Keys)
        {
            foreach (var (to, address) in peerAddresses)
            {
                if (from != to)
                {
                    proxies[(from, to)] = new FaultProxy(address);
                }
            }
        }

        NodeIds = peerAddresses.Keys.Order().ToArray();
    }

    public IReadOnlyList<ulong> NodeIds { get; }

    /// <summary>The address node <paramref name="from"/> dials to reach node <paramref name="to"/>.</summary>
    public IPEndPoint Route(ulong from, ulong to) => proxies[(from, to)].Listen;

    public FaultProxy Proxy(ulong from, ulong to) => proxies[(from, to)];

    /// <summary>The directed links that currently drop traffic.</summary>
    public IReadOnlyList<(ulong From, ulong To)> CutLinks
    {
        get
        {
            lock (gate)
            {
                return cut.Order().ToList();
            }
        }
    }

    public long DiscardedBytes => proxies.Values.Sum(proxy => proxy.DiscardedBytes);

    /// <summary>Replaces the set of cut links with <paramref name="links"/> (directed); every other link heals.</summary>
    public void SetCut(IEnumerable<(ulong From, ulong To)> links)
    {
        ArgumentNullException.ThrowIfNull(links);
        lock (gate)
        {
            cut.Clear();
            foreach (var link in links)
            {
                if (!proxies.ContainsKey(link))
                {
                    throw new ArgumentException($"no link {link.From} → {link.To}: both must be node ids of this mesh and differ", nameof(links));
                }

                cut.Add(link);
            }

            foreach (var ((from, to), proxy) in proxies)
            {
                // This proxy carries from → to forward and to → from backward.
                proxy.SetCut(forward: cut.Contains((from, to)), backward: cut.Contains((to, from)));
            }
        }
    }

    /// <summary>Heals every link.</summary>
    public void HealAll() => SetCut([]);

    public async ValueTask DisposeAsync()
    {
        foreach (var proxy in proxies.Values)
        {
            await proxy.DisposeAsync().ConfigureAwait(false);
        }
    }
}
