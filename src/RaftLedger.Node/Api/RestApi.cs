using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Api;

/// <summary>
/// The REST/JSON client API of issue 5 §3 over an <see cref="ILedgerService"/>. Each handler
/// validates the whole request before calling the service, so a refused request applies nothing.
/// </summary>
public sealed class RestApi
{
    private readonly ILedgerService service;

    public RestApi(ILedgerService service)
    {
        ArgumentNullException.ThrowIfNull(service);
        this.service = service;
    }

    /// <summary>Maps every route of the client API (not /metrics, which <see cref="ApiServer"/> adds).</summary>
    public void Map(IEndpointRouteBuilder routes)
    {
        routes.MapPost("/v1/accounts", CreateAccountsAsync);
        routes.MapPost("/v1/transfers", CreateTransfersAsync);
        routes.MapPost("/v1/accounts/lookup", LookupAccountsAsync);
        routes.MapPost("/v1/transfers/lookup", LookupTransfersAsync);
        routes.MapGet("/v1/accounts/{id}", GetAccountAsync);
        routes.MapGet("/v1/transfers/{id}", GetTransferAsync);
        routes.MapGet("/v1/accounts/{id}/transfers", GetAccountTransfersAsync);
        routes.MapGet("/v1/accounts/{id}/balances", GetAccountBalancesAsync);
        routes.MapGet("/v1/cluster", GetClusterAsync);
        routes.MapGet("/v1/node", GetNodeAsync);
        routes.MapGet("/dashboard", Dashboard.WriteAsync);
        routes.MapGet("/healthz", HealthAsync);
        routes.MapGet("/readyz", ReadyAsync);
    }

    private async Task CreateAccountsAsync(HttpContext context)
    {
        var (body, error) = await HttpIo.ReadJsonBodyAsync(context.Request, context.RequestAborted);
        if (error.StatusCode != 0)
        {
            await HttpIo.WriteProblemAsync(context.Response, error);
            return;
        }

        var accounts = new List<Account>();
        using (body)
        {
            if (!JsonRequestReader.TryReadAccounts(body.Span, accounts, out error))
            {
                await HttpIo.WriteProblemAsync(context.Response, error);
                return;
            }
        }

        var result = await service.CreateAccountsAsync(
            accounts.ToArray(), context.RequestAborted);
        if (await WriteFailureAsync(context.Response, result.Status, result.Detail, result.RetryAfter))
        {
            return;
        }

        ApiMetrics.CountResults(result.Value!);
        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, result.Value!,
            static (writer, results) => JsonResponseWriter.WriteAccountResults(writer, results));
    }

    private async Task CreateTransfersAsync(HttpContext context)
    {
        var (body, error) = await HttpIo.ReadJsonBodyAsync(context.Request, context.RequestAborted);
        if (error.StatusCode != 0)
        {
            await HttpIo.WriteProblemAsync(context.Response, error);
            return;
        }

        var transfers = new List<Transfer>();
        using (body)
        {
            if (!JsonRequestReader.TryReadTransfers(body.Span, transfers, out error))
            {
                await HttpIo.WriteProblemAsync(context.Response, error);
                return;
            }
        }

        var result = await service.CreateTransfersAsync(
            transfers.ToArray(), context.RequestAborted);
        if (await WriteFailureAsync(context.Response, result.Status, result.Detail, result.RetryAfter))
        {
            return;
        }

        ApiMetrics.CountResults(result.Value!);
        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, result.Value!,
            static (writer, results) => JsonResponseWriter.WriteTransferResults(writer, results));
    }

    private async Task LookupAccountsAsync(HttpContext context)
    {
        var ids = await ReadIdsAsync(context);
        if (ids is null)
        {
            return;
        }

        var result = await service.LookupAccountsAsync(ids, context.RequestAborted);
        if (await WriteFailureAsync(context.Response, result.Status, result.Detail, result.RetryAfter))
        {
            return;
        }

        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, result.Value!,
            static (writer, accounts) => JsonResponseWriter.WriteAccounts(writer, "accounts"u8, accounts));
    }

    private async Task LookupTransfersAsync(HttpContext context)
    {
        var ids = await ReadIdsAsync(context);
        if (ids is null)
        {
            return;
        }

        var result = await service.LookupTransfersAsync(ids, context.RequestAborted);
        if (await WriteFailureAsync(context.Response, result.Status, result.Detail, result.RetryAfter))
        {
            return;
        }

        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, result.Value!,
            static (writer, transfers) => JsonResponseWriter.WriteTransfers(writer, transfers));
    }

    /// <summary>Reads <c>{"ids":[...]}</c>; on failure writes the problem and returns null.</summary>
    private static async Task<UInt128[]?> ReadIdsAsync(HttpContext context)
    {
        var (body, error) = await HttpIo.ReadJsonBodyAsync(context.Request, context.RequestAborted);
        if (error.StatusCode != 0)
        {
            await HttpIo.WriteProblemAsync(context.Response, error);
            return null;
        }

        var ids = new List<UInt128>();
        using (body)
        {
            if (JsonRequestReader.TryReadIds(body.Span, ids, out error))
            {
                return ids.ToArray();
            }
        }

        await HttpIo.WriteProblemAsync(context.Response, error);
        return null;
    }

    private async Task GetAccountAsync(HttpContext context)
    {
        if (!TryRouteId(context, "account", out var id, out var error))
        {
            await HttpIo.WriteProblemAsync(context.Response, error);
            return;
        }

        var result = await service.LookupAccountsAsync(new[] { id }, context.RequestAborted);
        if (await WriteFailureAsync(context.Response, result.Status, result.Detail, result.RetryAfter))
        {
            return;
        }

        if (result.Value!.Length == 0)
        {
            await HttpIo.WriteProblemAsync(context.Response, ApiError.NotFound(
                $"Account {id} does not exist. Create it with POST /v1/accounts."));
            return;
        }

        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, result.Value[0],
            static (writer, account) => JsonResponseWriter.WriteAccount(writer, account));
    }

    private async Task GetTransferAsync(HttpContext context)
    {
        if (!TryRouteId(context, "transfer", out var id, out var error))
        {
            await HttpIo.WriteProblemAsync(context.Response, error);
            return;
        }

        var result = await service.LookupTransfersAsync(new[] { id }, context.RequestAborted);
        if (await WriteFailureAsync(context.Response, result.Status, result.Detail, result.RetryAfter))
        {
            return;
        }

        if (result.Value!.Length == 0)
        {
            await HttpIo.WriteProblemAsync(context.Response, ApiError.NotFound(
                $"Transfer {id} does not exist. Create it with POST /v1/transfers."));
            return;
        }

        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, result.Value[0],
            static (writer, transfer) => JsonResponseWriter.WriteTransfer(writer, transfer));
    }

    private async Task GetAccountTransfersAsync(HttpContext context)
    {
        if (!TryRouteId(context, "account", out var id, out var error) ||
            !AccountFilterQuery.TryParse(context.Request.Query, id, out var filter, out error))
        {
            await HttpIo.WriteProblemAsync(context.Response, error);
            return;
        }

        var result = await service.GetAccountTransfersAsync(filter, context.RequestAborted);
        if (await WriteFailureAsync(context.Response, result.Status, result.Detail, result.RetryAfter))
        {
            return;
        }

        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, result.Value!,
            static (writer, transfers) => JsonResponseWriter.WriteTransfers(writer, transfers));
    }

    private async Task GetAccountBalancesAsync(HttpContext context)
    {
        if (!TryRouteId(context, "account", out var id, out var error) ||
            !AccountFilterQuery.TryParse(context.Request.Query, id, out var filter, out error))
        {
            await HttpIo.WriteProblemAsync(context.Response, error);
            return;
        }

        var result = await service.GetAccountBalancesAsync(filter, context.RequestAborted);
        if (await WriteFailureAsync(context.Response, result.Status, result.Detail, result.RetryAfter))
        {
            return;
        }

        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, result.Value!,
            static (writer, balances) => JsonResponseWriter.WriteBalances(writer, balances));
    }

    private async Task GetClusterAsync(HttpContext context)
    {
        var cluster = await service.GetClusterStatusAsync(context.RequestAborted);
        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, cluster, JsonResponseWriter.WriteCluster);
    }

    private async Task GetNodeAsync(HttpContext context)
    {
        // Fingerprints are opt-in (?fingerprints=true): computing one pauses the node's scheduler (see ILedgerService).
        var withFingerprints = string.Equals(context.Request.Query["fingerprints"], "true", StringComparison.OrdinalIgnoreCase);
        var node = await service.GetNodeStatusAsync(withFingerprints, context.RequestAborted);
        await HttpIo.WriteJsonAsync(context.Response, 200, HttpIo.JsonContentType, node,
            withFingerprints ? JsonResponseWriter.WriteNodeWithFingerprints : JsonResponseWriter.WriteNode);
    }

    private static Task HealthAsync(HttpContext context)
    {
        context.Response.ContentType = "text/plain";
        return context.Response.WriteAsync("ok\n");
    }

    private Task ReadyAsync(HttpContext context)
    {
        if (service.IsReady)
        {
            context.Response.ContentType = "text/plain";
            return context.Response.WriteAsync("ready\n");
        }

        return HttpIo.WriteProblemAsync(context.Response, new ApiError(503, "Not ready",
            "Some shard hosted by this node has no leader yet (starting up or electing); retry shortly."),
            ApiLimits.RetryAfterSecondsDefault);
    }

    /// <summary>Writes the 503/504 for a failed service call; false when the call succeeded.</summary>
    private static async Task<bool> WriteFailureAsync(HttpResponse response, ServiceStatus status, string detail, TimeSpan retryAfter)
    {
        if (status == ServiceStatus.Ok)
        {
            return false;
        }

        // The service's detail says what happened; make it a sentence before adding what to do.
        detail = detail.TrimEnd().EndsWith('.') ? detail.TrimEnd() : detail.TrimEnd() + ".";
        var retryAfterSeconds = retryAfter <= TimeSpan.Zero
            ? ApiLimits.RetryAfterSecondsDefault
            : (int)Math.Ceiling(retryAfter.TotalSeconds);
        var error = status switch
        {
            ServiceStatus.OutcomeUnknown => new ApiError(504, "Outcome unknown",
                $"{detail} The request may or may not have been applied: retry it unchanged, with the same ids. " +
                "Ids make retries safe: an event that was applied answers 'exists'."),
            ServiceStatus.NoLeader => new ApiError(503, "No leader",
                $"{detail} Nothing was applied; retry after {retryAfterSeconds} s (a leader election is in progress)."),
            ServiceStatus.NoQuorum => new ApiError(503, "No quorum",
                $"{detail} Nothing was applied; retry after {retryAfterSeconds} s, or bring more replicas of the shard back up."),
            _ => new ApiError(503, "Unavailable", $"{detail} Nothing was applied; retry after {retryAfterSeconds} s."),
        };
        await HttpIo.WriteProblemAsync(response, error, error.StatusCode == 503 ? retryAfterSeconds : 0);
        return true;
    }

    private static bool TryRouteId(HttpContext context, string kind, out UInt128 id, out ApiError error)
    {
        var text = context.Request.RouteValues["id"] as string ?? "";
        if (UInt128.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out id))
        {
            error = default;
            return true;
        }

        error = ApiError.BadRequest(
            $"The {kind} id in the path must be a decimal number from 0 to {UInt128.MaxValue}, got '{JsonRequestReader.Truncate(text)}'.");
        return false;
    }
}
