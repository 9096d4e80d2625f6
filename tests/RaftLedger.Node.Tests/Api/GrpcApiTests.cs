using Grpc.Core;
using Grpc.Net.Client;
using RaftLedger.Node.Api;
using Wire = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Node.Tests.Api;

/// <summary>The gRPC Ledger service (h2c on its own port) over the same service double.</summary>
public sealed class GrpcApiTests(ApiHarness api) : IClassFixture<ApiHarness>
{
    private Wire.Ledger.LedgerClient Client()
    {
        var channel = GrpcChannel.ForAddress(api.GrpcUrl);
        return new Wire.Ledger.LedgerClient(channel);
    }

    private static Wire.Account Account(UInt128 id) =>
        new() { IdLo = GrpcConvert.Lo(id), IdHi = GrpcConvert.Hi(id), Ledger = 1, Code = 1 };

    [Fact]
    public async Task Grpc_creates_and_looks_up_accounts_and_transfers_with_u128_as_two_fixed64()
    {
        var client = Client();
        var ct = TestContext.Current.CancellationToken;
        // Ids above 2^64 prove the high half travels; the test routing keys on the low decimal digits.
        var baseId = ((UInt128)ApiHarness.NewIds() << 64) | ApiHarness.NewIds();
        var debit = baseId + 1;
        var credit = baseId + 2;
        var created = await client.CreateAccountsAsync(new Wire.CreateAccountsRequest { Accounts = { Account(debit), Account(credit), Account(0) } }, cancellationToken: ct);
        var transfer = new Wire.Transfer
        {
            IdLo = GrpcConvert.Lo(baseId + 10),
            IdHi = GrpcConvert.Hi(baseId + 10),
            DebitAccountIdLo = GrpcConvert.Lo(debit),
            DebitAccountIdHi = GrpcConvert.Hi(debit),
            CreditAccountIdLo = GrpcConvert.Lo(credit),
            CreditAccountIdHi = GrpcConvert.Hi(credit),
            AmountLo = 42,
            Ledger = 1,
            Code = 1,
        };
        var transfers = await client.CreateTransfersAsync(new Wire.CreateTransfersRequest { Transfers = { transfer } }, cancellationToken: ct);
        var lookup = await client.LookupAccountsAsync(new Wire.LookupRequest
        {
            Ids = { new Wire.Id { Lo = GrpcConvert.Lo(credit), Hi = GrpcConvert.Hi(credit) }, new Wire.Id { Lo = 5 } },
        }, cancellationToken: ct);
        var history = await client.GetAccountTransfersAsync(new Wire.AccountFilter
        {
            AccountIdLo = GrpcConvert.Lo(debit),
            AccountIdHi = GrpcConvert.Hi(debit),
            Limit = 10,
            Flags = 3,
        }, cancellationToken: ct);

        Assert.Equal(["created", "created", "id_must_not_be_zero"], created.Results.Select(r => r.Status));
        Assert.True(created.Results[0].Timestamp > 0);
        Assert.Equal(0ul, created.Results[2].Timestamp);
        Assert.Equal(["created"], transfers.Results.Select(r => r.Status));
        var account = Assert.Single(lookup.Accounts_);
        Assert.Equal(credit, new UInt128(account.IdHi, account.IdLo));
        Assert.Equal(42ul, account.CreditsPostedLo);
        Assert.Equal(baseId + 10, new UInt128(Assert.Single(history.Transfers_).IdHi, history.Transfers_[0].IdLo));
    }

    [Fact]
    public async Task Grpc_no_leader_is_unavailable_with_a_retry_after_trailer()
    {
        var client = Client();
        api.Service.FailNext(ServiceStatus.NoLeader, TimeSpan.FromSeconds(2));

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.LookupTransfersAsync(new Wire.LookupRequest { Ids = { new Wire.Id { Lo = 1 } } }, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("Nothing was applied", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("2", error.Trailers.GetValue("retry-after"));
    }

    [Fact]
    public async Task Grpc_outcome_unknown_is_deadline_exceeded_with_the_nodes_trailer()
    {
        var client = Client();
        api.Service.FailNext(ServiceStatus.OutcomeUnknown);

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.CreateTransfersAsync(new Wire.CreateTransfersRequest { Transfers = { new Wire.Transfer { IdLo = 1 } } }, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains("same ids", error.Status.Detail, StringComparison.Ordinal);
        // The trailer tells the SDK that a live node answered (it keeps routing there) rather than its own timer firing.
        Assert.Equal("1", error.Trailers.GetValue(LedgerGrpcService.OutcomeUnknownTrailer));
    }

    [Fact]
    public async Task Grpc_refuses_more_than_8189_events_and_bad_filters()
    {
        var client = Client();
        var calls = api.Service.Calls;
        var request = new Wire.CreateAccountsRequest();
        for (var i = 0; i <= ApiLimits.EventsPerBatchMax; i++)
        {
            request.Accounts.Add(Account((UInt128)i + 1));
        }

        var tooMany = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.CreateAccountsAsync(request, cancellationToken: TestContext.Current.CancellationToken));
        var badFilter = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.GetAccountBalancesAsync(new Wire.AccountFilter { AccountIdLo = 1, Limit = 0, Flags = 1 }, cancellationToken: TestContext.Current.CancellationToken));
        var badCode = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.CreateAccountsAsync(new Wire.CreateAccountsRequest { Accounts = { new Wire.Account { IdLo = 1, Code = 70000 } } }, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(StatusCode.ResourceExhausted, tooMany.StatusCode);
        Assert.Contains("at most 8189", tooMany.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, badFilter.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, badCode.StatusCode);
        Assert.Equal(calls, api.Service.Calls);
    }

    [Fact]
    public async Task Grpc_get_cluster_lists_nodes_and_shards()
    {
        var cluster = await Client().GetClusterAsync(new Wire.ClusterRequest(), cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(1ul, Assert.Single(cluster.Nodes).Id);
        Assert.Equal([1ul, 2, 3], Assert.Single(cluster.Shards).Replicas);
        Assert.Equal(120ul, cluster.Shards[0].CommitIndex);
    }
}
