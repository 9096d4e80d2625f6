using Grpc.Core;
using RaftLedger.Client;
using RaftLedger.Client.Internal;
using RaftLedger.Ledger;

namespace RaftLedger.Client.Tests;

/// <summary>
/// A scripted node for unit tests: records every create request and answers through a handler the
/// test sets (which may hold a request open on a gate, or throw an <see cref="RpcException"/>).
/// </summary>
internal sealed class FakeNode(Uri address, FakeCluster cluster) : INodeConnection
{
    public Uri Address { get; } = address;

    public List<Transfer[]> TransferRequests { get; } = [];

    public List<Account[]> AccountRequests { get; } = [];

    /// <summary>Answers a create_transfers request; default: every event created.</summary>
    public Func<Transfer[], Task<EventAnswer[]>> OnTransfers { get; set; } = events => Task.FromResult(Created(events.Length));

    public Func<Task<ClusterMap>>? OnCluster { get; set; }

    public static EventAnswer[] Created(int count) => Enumerable.Repeat(new EventAnswer("created", 1), count).ToArray();

    public Task<EventAnswer[]> CreateTransfersAsync(Transfer[] events, int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var copy = events.AsSpan(0, count).ToArray();
        lock (cluster)
        {
            TransferRequests.Add(copy);
            cluster.Log.Add((Address, copy.Length));
        }

        return OnTransfers(copy);
    }

    public Task<EventAnswer[]> CreateAccountsAsync(Account[] events, int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        lock (cluster)
        {
            AccountRequests.Add(events.AsSpan(0, count).ToArray());
        }

        return Task.FromResult(Created(count));
    }

    public Task<Account[]> LookupAccountsAsync(UInt128[] ids, TimeSpan timeout, CancellationToken cancellationToken) =>
        Task.FromResult(ids.Select(id => new Account { Id = id, Ledger = 1, Code = 1 }).ToArray());

    public Task<Transfer[]> LookupTransfersAsync(UInt128[] ids, TimeSpan timeout, CancellationToken cancellationToken) =>
        Task.FromResult(Array.Empty<Transfer>());

    public Task<Transfer[]> GetAccountTransfersAsync(AccountFilter filter, TimeSpan timeout, CancellationToken cancellationToken) =>
        Task.FromResult(Array.Empty<Transfer>());

    public Task<AccountBalance[]> GetAccountBalancesAsync(AccountFilter filter, TimeSpan timeout, CancellationToken cancellationToken) =>
        Task.FromResult(Array.Empty<AccountBalance>());

    public Task<ClusterMap> GetClusterAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref cluster.ClusterReads);
        return OnCluster?.Invoke() ?? Task.FromResult(cluster.Map);
    }

    public void Dispose()
    {
    }

    public static RpcException Unavailable(bool fromNode) => fromNode
        ? new RpcException(new Status(StatusCode.Unavailable, "shard 1 has no leader"), new Metadata { { "retry-after", "1" } })
        : new RpcException(new Status(StatusCode.Unavailable, "Error connecting", new HttpRequestException("refused", new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused))));
}

/// <summary>Three fake nodes (ids 1..3 at http://node{id}) and the map they all answer.</summary>
internal sealed class FakeCluster
{
    public int ClusterReads;

    public FakeCluster(int shardCount, Func<int, ulong> leaderOf)
    {
        Nodes = Enumerable.Range(1, 3).Select(id => new FakeNode(new Uri($"http://node{id}"), this)).ToArray();
        Map = new ClusterMap(
            Nodes.Select((node, i) => new ClusterNode((ulong)(i + 1), $"api{i + 1}", $"peer{i + 1}", node.Address.ToString(), true)).ToList(),
            Enumerable.Range(0, shardCount).Select(shard => new ClusterShard((uint)shard, [1, 2, 3], leaderOf(shard), 1, 0, 0)).ToList());
    }

    public FakeNode[] Nodes { get; }

    public ClusterMap Map { get; set; }

    /// <summary>Every create_transfers request in the order sent: (node, events).</summary>
    public List<(Uri Node, int Events)> Log { get; } = [];

    public FakeNode Node(ulong id) => Nodes[id - 1];

    /// <summary>Real time plus jumps the test makes (timers still run in real time).</summary>
    public SteppedTime Time { get; } = new();

    public LedgerClient Client(Func<LedgerClientOptions, LedgerClientOptions>? tune = null)
    {
        var options = new LedgerClientOptions
        {
            Addresses = [Nodes[0].Address],
            RetryBackoffInitial = TimeSpan.FromMilliseconds(1),
            RetryBackoffMax = TimeSpan.FromMilliseconds(5),
            ClusterMapRefreshInterval = TimeSpan.FromHours(1),
        };
        return new LedgerClient(tune?.Invoke(options) ?? options, Time, address => Nodes.Single(n => n.Address == address));
    }
}

/// <summary>The system clock moved forward by <see cref="Advance"/>: lets a test pass a gap without waiting.</summary>
internal sealed class SteppedTime : TimeProvider
{
    private long offset;

    public void Advance(TimeSpan by) => Interlocked.Add(ref offset, (long)(by.TotalSeconds * TimestampFrequency));

    public override long GetTimestamp() => base.GetTimestamp() + Interlocked.Read(ref offset);
}
