using Grpc.Core;
using Grpc.Net.Client;
using RaftLedger.Ledger;
using Wire = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Client.Internal;

/// <summary>One result of a create request, as the node named it.</summary>
internal readonly record struct EventAnswer(string StatusName, ulong Timestamp);

/// <summary>
/// The client's seam to one node: typed calls that either answer or throw <see cref="RpcException"/>
/// (the gRPC status says what happened). The real one is <see cref="GrpcNodeConnection"/>; tests
/// use fakes to drive batching and retries deterministically.
/// </summary>
internal interface INodeConnection : IDisposable
{
    Uri Address { get; }

    Task<EventAnswer[]> CreateAccountsAsync(Account[] events, int count, TimeSpan timeout, CancellationToken cancellationToken);

    Task<EventAnswer[]> CreateTransfersAsync(Transfer[] events, int count, TimeSpan timeout, CancellationToken cancellationToken);

    Task<Account[]> LookupAccountsAsync(UInt128[] ids, TimeSpan timeout, CancellationToken cancellationToken);

    Task<Transfer[]> LookupTransfersAsync(UInt128[] ids, TimeSpan timeout, CancellationToken cancellationToken);

    Task<Transfer[]> GetAccountTransfersAsync(AccountFilter filter, TimeSpan timeout, CancellationToken cancellationToken);

    Task<AccountBalance[]> GetAccountBalancesAsync(AccountFilter filter, TimeSpan timeout, CancellationToken cancellationToken);

    Task<ClusterMap> GetClusterAsync(TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>A node over gRPC (HTTP/2), with the generated client of the node's own ledger.proto.</summary>
internal sealed class GrpcNodeConnection : INodeConnection
{
    private readonly GrpcChannel channel;
    private readonly Wire.Ledger.LedgerClient stub;

    public GrpcNodeConnection(Uri address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Address = address;
        var handler = new SocketsHttpHandler
        {
            // Many concurrent calls to one node must not queue behind one connection's stream limit.
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(2),
            // Pings find a dead node on a connection that is otherwise idle.
            KeepAlivePingDelay = TimeSpan.FromSeconds(5),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        };
        channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = ClientLimits.MessageBytesMax,
            MaxSendMessageSize = ClientLimits.MessageBytesMax,
        });
        stub = new Wire.Ledger.LedgerClient(channel);
    }

    public Uri Address { get; }

    public async Task<EventAnswer[]> CreateAccountsAsync(Account[] events, int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var request = new Wire.CreateAccountsRequest();
        for (var i = 0; i < count; i++)
        {
            request.Accounts.Add(Wire.WireRecords.ToWire(events[i]));
        }

        var reply = await stub.CreateAccountsAsync(request, deadline: Deadline(timeout), cancellationToken: cancellationToken);
        return WireConvert.Answers(reply);
    }

    public async Task<EventAnswer[]> CreateTransfersAsync(Transfer[] events, int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var request = new Wire.CreateTransfersRequest();
        for (var i = 0; i < count; i++)
        {
            request.Transfers.Add(Wire.WireRecords.ToWire(events[i]));
        }

        var reply = await stub.CreateTransfersAsync(request, deadline: Deadline(timeout), cancellationToken: cancellationToken);
        return WireConvert.Answers(reply);
    }

    public async Task<Account[]> LookupAccountsAsync(UInt128[] ids, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var reply = await stub.LookupAccountsAsync(WireConvert.Lookup(ids), deadline: Deadline(timeout), cancellationToken: cancellationToken);
        var accounts = new Account[reply.Accounts_.Count];
        for (var i = 0; i < accounts.Length; i++)
        {
            accounts[i] = Wire.WireRecords.FromWire(reply.Accounts_[i]);
        }

        return accounts;
    }

    public async Task<Transfer[]> LookupTransfersAsync(UInt128[] ids, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var reply = await stub.LookupTransfersAsync(WireConvert.Lookup(ids), deadline: Deadline(timeout), cancellationToken: cancellationToken);
        return WireConvert.FromWire(reply);
    }

    public async Task<Transfer[]> GetAccountTransfersAsync(AccountFilter filter, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var reply = await stub.GetAccountTransfersAsync(WireConvert.ToWire(filter), deadline: Deadline(timeout), cancellationToken: cancellationToken);
        return WireConvert.FromWire(reply);
    }

    public async Task<AccountBalance[]> GetAccountBalancesAsync(AccountFilter filter, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var reply = await stub.GetAccountBalancesAsync(WireConvert.ToWire(filter), deadline: Deadline(timeout), cancellationToken: cancellationToken);
        var balances = new AccountBalance[reply.Balances_.Count];
        for (var i = 0; i < balances.Length; i++)
        {
            balances[i] = Wire.WireRecords.FromWire(reply.Balances_[i]);
        }

        return balances;
    }

    public async Task<ClusterMap> GetClusterAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var reply = await stub.GetClusterAsync(new Wire.ClusterRequest(), deadline: Deadline(timeout), cancellationToken: cancellationToken);
        return WireConvert.FromWire(reply);
    }

    public void Dispose() => channel.Dispose();

    // gRPC deadlines are wall-clock instants by contract.
    private static DateTime Deadline(TimeSpan timeout) => DateTime.UtcNow + timeout;
}
