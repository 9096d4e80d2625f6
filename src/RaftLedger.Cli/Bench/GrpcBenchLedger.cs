using System.Net.Http;
using Grpc.Core;
using Grpc.Net.Client;
using RaftLedger.Common;
using RaftLedger.Ledger;
using Proto = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Cli.Bench;

/// <summary>A node the bench talks to: its id (0 = unknown: no leader routing to it) and gRPC URL.</summary>
public sealed record BenchNode(ulong Id, Uri GrpcUrl);

/// <summary>How one request attempt ended: answered (with per-event statuses), or failed with a kind.</summary>
public readonly record struct CallOutcome(Proto.CreateResults? Results, string FailureKind, bool Retryable, string Detail)
{
    public bool IsAnswered => Results is not null;

    public static CallOutcome Answered(Proto.CreateResults results) => new(results, "", false, "");
}

/// <summary>
/// One caller's reusable request: the protobuf messages are allocated once and refilled per batch,
/// so building a request of 8189 events allocates nothing per event. A retry resends it unchanged.
/// </summary>
public sealed class TransferBatch
{
    private readonly Proto.Transfer[] messages;

    public TransferBatch(int capacity)
    {
        Invariant.Check(capacity >= 1 && capacity <= BenchLimits.BatchEventsMax);
        Events = new Transfer[capacity];
        messages = new Proto.Transfer[capacity];
        for (var i = 0; i < capacity; i++)
        {
            messages[i] = new Proto.Transfer();
        }
    }

    public Transfer[] Events { get; }

    public int Count { get; private set; }

    internal Proto.CreateTransfersRequest Request { get; } = new();

    /// <summary>Makes the first <paramref name="count"/> events the request's content.</summary>
    public void Seal(int count)
    {
        Invariant.Check(count >= 1 && count <= Events.Length);
        Count = count;
        Request.Transfers.Clear();
        for (var i = 0; i < count; i++)
        {
            Assign(messages[i], Events[i]);
            Request.Transfers.Add(messages[i]);
        }
    }

    private static void Assign(Proto.Transfer message, in Transfer transfer)
    {
        message.IdLo = (ulong)transfer.Id;
        message.IdHi = (ulong)(transfer.Id >> 64);
        message.DebitAccountIdLo = (ulong)transfer.DebitAccountId;
        message.DebitAccountIdHi = (ulong)(transfer.DebitAccountId >> 64);
        message.CreditAccountIdLo = (ulong)transfer.CreditAccountId;
        message.CreditAccountIdHi = (ulong)(transfer.CreditAccountId >> 64);
        message.AmountLo = (ulong)transfer.Amount;
        message.AmountHi = (ulong)(transfer.Amount >> 64);
        message.PendingIdLo = (ulong)transfer.PendingId;
        message.PendingIdHi = (ulong)(transfer.PendingId >> 64);
        message.UserData128Lo = (ulong)transfer.UserData128;
        message.UserData128Hi = (ulong)(transfer.UserData128 >> 64);
        message.UserData64 = transfer.UserData64;
        message.UserData32 = transfer.UserData32;
        message.Timeout = transfer.TimeoutSeconds;
        message.Ledger = transfer.Ledger;
        message.Code = transfer.Code;
        message.Flags = (uint)transfer.Flags;
        message.Timestamp = 0;
    }
}

/// <summary>
/// The bench's own connection to the cluster over the node's gRPC API (Protos/ledger.proto): one
/// HTTP/2 channel per node, each request sent straight to its shard's leader when the leader is
/// known (the cluster map is refreshed in the background and after failures), otherwise to any
/// node, which forwards. One call = one attempt; the caller retries.
/// </summary>
public sealed class GrpcBenchLedger : IAsyncDisposable
{
    private static readonly TimeSpan RefreshInterval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(5);
    private readonly BenchNode[] nodes;
    private readonly GrpcChannel[] channels;
    private readonly Proto.Ledger.LedgerClient[] clients;

    // Index into nodes of each shard's leader, or -1 when unknown; written by the refresher, read by callers.
    private readonly int[] leaderIndex;
    private readonly CancellationTokenSource stopRefresh = new();
    private Task refresher = Task.CompletedTask;
    private int staleRequested;

    private GrpcBenchLedger(IReadOnlyList<BenchNode> nodes, int shardCount)
    {
        Invariant.Check(nodes.Count >= 1);
        this.nodes = [.. nodes];
        channels = new GrpcChannel[this.nodes.Length];
        clients = new Proto.Ledger.LedgerClient[this.nodes.Length];
        for (var i = 0; i < this.nodes.Length; i++)
        {
            channels[i] = GrpcChannel.ForAddress(this.nodes[i].GrpcUrl, new GrpcChannelOptions
            {
                HttpHandler = new SocketsHttpHandler
                {
                    EnableMultipleHttp2Connections = true,
                    ConnectTimeout = TimeSpan.FromSeconds(2),
                    KeepAlivePingDelay = TimeSpan.FromSeconds(5),
                    KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                },
                MaxReceiveMessageSize = 64 * 1024 * 1024,
                MaxSendMessageSize = 64 * 1024 * 1024,
            });
            clients[i] = new Proto.Ledger.LedgerClient(channels[i]);
        }

        ShardCount = shardCount;
        leaderIndex = new int[shardCount];
        Array.Fill(leaderIndex, -1);
    }

    public int ShardCount { get; }

    public IReadOnlyList<BenchNode> Nodes => nodes;

    /// <summary>Connects and reads the cluster map (shard count, leaders), waiting up to <paramref name="timeout"/> for an answer.</summary>
    public static async Task<GrpcBenchLedger> ConnectAsync(IReadOnlyList<BenchNode> nodes, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var probe = new GrpcBenchLedger(nodes, 1);
        Proto.Cluster cluster;
        try
        {
            cluster = await probe.ClusterAsync(timeout, cancellationToken);
        }
        finally
        {
            await probe.DisposeAsync();
        }

        if (cluster.Shards.Count == 0)
        {
            throw new BenchException("the cluster reported no shards; is it bootstrapped? Check `raftledger status`.");
        }

        var ledger = new GrpcBenchLedger(nodes, cluster.Shards.Count);
        ledger.Apply(cluster);
        ledger.refresher = ledger.RefreshLoopAsync(ledger.stopRefresh.Token);
        return ledger;
    }

    /// <summary>The cluster map from the first node that answers, retrying until <paramref name="timeout"/>.</summary>
    public async Task<Proto.Cluster> ClusterAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var problem = "";
        for (var attempt = 0; ; attempt++)
        {
            var client = clients[attempt % clients.Length];
            try
            {
                return await client.GetClusterAsync(new Proto.ClusterRequest(), deadline: DateTime.UtcNow + TimeSpan.FromSeconds(2), cancellationToken: cancellationToken);
            }
            catch (RpcException exception) when (!cancellationToken.IsCancellationRequested)
            {
                var url = nodes[attempt % nodes.Length].GrpcUrl;
                if (IsHttp1Only(exception))
                {
                    // Waiting cannot help: that port serves REST (HTTP/1.1), not gRPC.
                    throw new BenchException($"{url} is a REST address (it refused HTTP/2). --api takes the nodes' gRPC addresses: the `grpc` column of `raftledger status`.");
                }

                problem = $"{url}: {exception.Status.StatusCode} {exception.Status.Detail}";
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new BenchException($"no node answered the cluster map within {timeout.TotalSeconds:0} s (last: {problem}). Check the --api URLs (gRPC addresses).");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
        }
    }

    /// <summary>Whether the call failed because the server speaks only HTTP/1.1 (HTTP/2 error HTTP_1_1_REQUIRED).</summary>
    internal static bool IsHttp1Only(RpcException exception)
    {
        const long Http11RequiredCode = 0xd;
        for (Exception? inner = exception.Status.DebugException; inner is not null; inner = inner.InnerException)
        {
            if (inner is HttpProtocolException { ErrorCode: Http11RequiredCode })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>One attempt to create the batch's transfers, sent to <paramref name="shard"/>'s leader if known.</summary>
    public async Task<CallOutcome> SendAsync(int shard, TransferBatch batch, int attempt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var target = Target(shard, attempt);
        try
        {
            var reply = await clients[target].CreateTransfersAsync(batch.Request, deadline: DateTime.UtcNow + AttemptTimeout, cancellationToken: cancellationToken);
            Invariant.Check(reply.Results.Count == batch.Count, "one result per event");
            return CallOutcome.Answered(reply);
        }
        catch (RpcException exception) when (!cancellationToken.IsCancellationRequested)
        {
            MarkStale(shard);
            return Failed(exception);
        }
    }

    /// <summary>One attempt to create accounts (any node; the node splits the batch by shard).</summary>
    public async Task<CallOutcome> CreateAccountsAsync(ReadOnlyMemory<Account> accounts, int attempt, CancellationToken cancellationToken)
    {
        var request = new Proto.CreateAccountsRequest();
        foreach (ref readonly var account in accounts.Span)
        {
            request.Accounts.Add(Node.Api.GrpcConvert.FromAccount(account));
        }

        try
        {
            var reply = await clients[attempt % clients.Length].CreateAccountsAsync(request, deadline: DateTime.UtcNow + AttemptTimeout, cancellationToken: cancellationToken);
            return CallOutcome.Answered(reply);
        }
        catch (RpcException exception) when (!cancellationToken.IsCancellationRequested)
        {
            return Failed(exception);
        }
    }

    /// <summary>Transfers that exist among <paramref name="ids"/> (any node).</summary>
    public async Task<List<Transfer>> LookupTransfersAsync(IReadOnlyList<UInt128> ids, CancellationToken cancellationToken)
    {
        var request = new Proto.LookupRequest();
        foreach (var id in ids)
        {
            request.Ids.Add(new Proto.Id { Lo = (ulong)id, Hi = (ulong)(id >> 64) });
        }

        var reply = await clients[0].LookupTransfersAsync(request, deadline: DateTime.UtcNow + AttemptTimeout, cancellationToken: cancellationToken);
        return [.. reply.Transfers_.Select(Node.Api.GrpcConvert.ToTransfer)];
    }

    /// <summary>Which node leads each shard now (node id, 0 = unknown), as last refreshed.</summary>
    public ulong LeaderOf(int shard)
    {
        var index = Volatile.Read(ref leaderIndex[shard]);
        return index < 0 ? 0 : nodes[index].Id;
    }

    /// <summary>Asks the refresher to reread the cluster map soon (after a kill or a failure).</summary>
    public void MarkStale(int shard)
    {
        Volatile.Write(ref leaderIndex[shard], -1);
        Interlocked.Exchange(ref staleRequested, 1);
    }

    private int Target(int shard, int attempt)
    {
        var leader = Volatile.Read(ref leaderIndex[shard]);
        // The first attempt goes to the leader; retries walk the nodes, since the leader may be the one that died.
        return leader >= 0 && attempt == 0 ? leader : (int)((uint)(shard + attempt) % (uint)nodes.Length);
    }

    private static CallOutcome Failed(RpcException exception)
    {
        var code = exception.StatusCode;
        var kind = code == StatusCode.Unavailable && exception.Status.DebugException is HttpRequestException or System.Net.Sockets.SocketException
            ? "connection_failed"
            : Node.Api.SnakeCaseNames<StatusCode>.Of(code);
        // Unavailable: nothing applied. DeadlineExceeded/Internal/Unknown/Aborted/Cancelled: outcome unknown
        // (a node died mid-call). Both are retried with the same ids; idempotency makes that safe.
        var retryable = code is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal
            or StatusCode.Unknown or StatusCode.Aborted or StatusCode.Cancelled;
        return new CallOutcome(null, kind, retryable, exception.Status.Detail);
    }

    private void Apply(Proto.Cluster cluster)
    {
        foreach (var shard in cluster.Shards)
        {
            if (shard.Id >= (uint)ShardCount)
            {
                continue;
            }

            var index = Array.FindIndex(nodes, node => node.Id != 0 && node.Id == shard.Leader);
            Volatile.Write(ref leaderIndex[shard.Id], index);
        }
    }

    private async Task RefreshLoopAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        var last = DateTime.UtcNow;
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                if (Interlocked.Exchange(ref staleRequested, 0) == 0 && DateTime.UtcNow - last < RefreshInterval)
                {
                    continue;
                }

                last = DateTime.UtcNow;
                await RefreshAsync(stop);
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
    }

    /// <summary>Rereads the cluster map from every reachable node now.</summary>
    public async Task RefreshAsync(CancellationToken stop)
    {
        // Ask every node and keep, per shard, the leader reported in the highest term: a node that lost
        // touch with the cluster may still name an old leader.
        var best = new (ulong Leader, ulong Term)[ShardCount];
        foreach (var client in clients)
        {
            try
            {
                var cluster = await client.GetClusterAsync(new Proto.ClusterRequest(), deadline: DateTime.UtcNow + TimeSpan.FromSeconds(1), cancellationToken: stop);
                foreach (var shard in cluster.Shards)
                {
                    if (shard.Id < (uint)ShardCount && shard.Leader != 0 && shard.Term >= best[shard.Id].Term)
                    {
                        best[shard.Id] = (shard.Leader, shard.Term);
                    }
                }
            }
            catch (RpcException)
            {
                // A node that is down says nothing; the others do.
            }
        }

        for (var shard = 0; shard < ShardCount; shard++)
        {
            var index = Array.FindIndex(nodes, node => node.Id != 0 && node.Id == best[shard].Leader);
            Volatile.Write(ref leaderIndex[shard], index);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stopRefresh.CancelAsync();
        await refresher;
        stopRefresh.Dispose();
        foreach (var channel in channels)
        {
            channel.Dispose();
        }
    }
}

/// <summary>The bench cannot go on (the message says why and what to do).</summary>
public sealed class BenchException(string message) : Exception(message);
