using Grpc.Core;
using RaftLedger.Ledger;
using Proto = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Node.Api;

/// <summary>
/// The gRPC <c>Ledger</c> service (Protos/ledger.proto): the REST operations in binary, batched.
/// Refusals and cluster failures become gRPC statuses with the same messages as the REST API.
/// </summary>
public sealed class LedgerGrpcService : Proto.Ledger.LedgerBase
{
    /// <summary>Trailer of the node's own 504 (outcome unknown); the SDK reads it to tell a live node from a dead one.</summary>
    public const string OutcomeUnknownTrailer = "outcome-unknown";

    private readonly ILedgerService service;

    public LedgerGrpcService(ILedgerService service)
    {
        ArgumentNullException.ThrowIfNull(service);
        this.service = service;
    }

    public override async Task<Proto.CreateResults> CreateAccounts(Proto.CreateAccountsRequest request, ServerCallContext context)
    {
        CheckBatch(request.Accounts.Count, "accounts");
        var accounts = new Account[request.Accounts.Count];
        for (var i = 0; i < accounts.Length; i++)
        {
            accounts[i] = GrpcConvert.ToAccount(request.Accounts[i]);
        }

        var result = Unwrap(await service.CreateAccountsAsync(accounts, context.CancellationToken), context);
        ApiMetrics.CountResults(result);
        var reply = new Proto.CreateResults();
        foreach (var item in result)
        {
            reply.Results.Add(new Proto.CreateResult
            {
                Status = SnakeCaseNames<CreateAccountResult>.Of(item.Status),
                Timestamp = item.Timestamp,
            });
        }

        return reply;
    }

    public override async Task<Proto.CreateResults> CreateTransfers(Proto.CreateTransfersRequest request, ServerCallContext context)
    {
        CheckBatch(request.Transfers.Count, "transfers");
        var transfers = new Transfer[request.Transfers.Count];
        for (var i = 0; i < transfers.Length; i++)
        {
            transfers[i] = GrpcConvert.ToTransfer(request.Transfers[i]);
        }

        var result = Unwrap(await service.CreateTransfersAsync(transfers, context.CancellationToken), context);
        ApiMetrics.CountResults(result);
        var reply = new Proto.CreateResults();
        foreach (var item in result)
        {
            reply.Results.Add(new Proto.CreateResult
            {
                Status = SnakeCaseNames<CreateTransferResult>.Of(item.Status),
                Timestamp = item.Timestamp,
            });
        }

        return reply;
    }

    public override async Task<Proto.Accounts> LookupAccounts(Proto.LookupRequest request, ServerCallContext context)
    {
        var accounts = Unwrap(await service.LookupAccountsAsync(Ids(request), context.CancellationToken), context);
        var reply = new Proto.Accounts();
        foreach (ref readonly var account in accounts.AsSpan())
        {
            reply.Accounts_.Add(GrpcConvert.FromAccount(account));
        }

        return reply;
    }

    public override async Task<Proto.Transfers> LookupTransfers(Proto.LookupRequest request, ServerCallContext context)
    {
        var transfers = Unwrap(await service.LookupTransfersAsync(Ids(request), context.CancellationToken), context);
        return ToReply(transfers);
    }

    public override async Task<Proto.Transfers> GetAccountTransfers(Proto.AccountFilter request, ServerCallContext context)
    {
        var transfers = Unwrap(await service.GetAccountTransfersAsync(Filter(request), context.CancellationToken), context);
        return ToReply(transfers);
    }

    public override async Task<Proto.Balances> GetAccountBalances(Proto.AccountFilter request, ServerCallContext context)
    {
        var balances = Unwrap(await service.GetAccountBalancesAsync(Filter(request), context.CancellationToken), context);
        var reply = new Proto.Balances();
        foreach (ref readonly var balance in balances.AsSpan())
        {
            reply.Balances_.Add(GrpcConvert.FromBalance(balance));
        }

        return reply;
    }

    public override async Task<Proto.Cluster> GetCluster(Proto.ClusterRequest request, ServerCallContext context)
    {
        var cluster = await service.GetClusterStatusAsync(context.CancellationToken);
        return GrpcConvert.FromCluster(cluster);
    }

    private static Proto.Transfers ToReply(Transfer[] transfers)
    {
        var reply = new Proto.Transfers();
        foreach (ref readonly var transfer in transfers.AsSpan())
        {
            reply.Transfers_.Add(GrpcConvert.FromTransfer(transfer));
        }

        return reply;
    }

    private static UInt128[] Ids(Proto.LookupRequest request)
    {
        CheckBatch(request.Ids.Count, "ids");
        var ids = new UInt128[request.Ids.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = new UInt128(request.Ids[i].Hi, request.Ids[i].Lo);
        }

        return ids;
    }

    private static AccountFilter Filter(Proto.AccountFilter request)
    {
        const uint knownFlags = (uint)(AccountFilterFlags.Debits | AccountFilterFlags.Credits | AccountFilterFlags.Reversed);
        if (request.Limit < 1 || request.Limit > ApiLimits.QueryRowsMax)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"limit must be from 1 to {ApiLimits.QueryRowsMax}, got {request.Limit}."));
        }

        if ((request.Flags & ~knownFlags) != 0 || (request.Flags & 3) == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"flags must combine 1 (debits), 2 (credits) and 4 (reversed) with at least one of debits or credits, got {request.Flags}."));
        }

        return new AccountFilter
        {
            AccountId = new UInt128(request.AccountIdHi, request.AccountIdLo),
            TimestampMin = request.TimestampMin,
            TimestampMax = request.TimestampMax,
            Limit = request.Limit,
            Flags = (AccountFilterFlags)request.Flags,
        };
    }

    private static void CheckBatch(int count, string what)
    {
        if (count > ApiLimits.EventsPerBatchMax)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, ApiError.BatchTooLarge(what).Detail));
        }
    }

    /// <summary>The value, or the gRPC status that says why there is none.</summary>
    private static T Unwrap<T>(ServiceResult<T> result, ServerCallContext context)
    {
        if (result.IsOk)
        {
            return result.Value!;
        }

        if (result.Status == ServiceStatus.OutcomeUnknown)
        {
            // Marks the 504 as this node's answer, unlike a deadline the client's own timer raised: the node is up,
            // so a client keeps sending its other shards' requests here instead of avoiding it.
            context.ResponseTrailers.Add(OutcomeUnknownTrailer, "1");
            throw new RpcException(new Status(StatusCode.DeadlineExceeded,
                $"{result.Detail} The outcome is unknown: retry unchanged with the same ids (an applied event answers 'exists')."));
        }

        var retryAfterSeconds = result.RetryAfter <= TimeSpan.Zero
            ? ApiLimits.RetryAfterSecondsDefault
            : (int)Math.Ceiling(result.RetryAfter.TotalSeconds);
        context.ResponseTrailers.Add("retry-after", retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        throw new RpcException(new Status(StatusCode.Unavailable,
            $"{result.Detail} Nothing was applied; retry after {retryAfterSeconds} s."));
    }
}
