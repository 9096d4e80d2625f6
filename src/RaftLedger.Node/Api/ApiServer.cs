using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace RaftLedger.Node.Api;

/// <summary>Where the client API listens. Port 0 picks a free port (tests).</summary>
public sealed record ApiServerOptions
{
    /// <summary>REST/JSON, /healthz, /readyz and /metrics: HTTP/1.1 (cleartext).</summary>
    public required IPEndPoint RestEndpoint { get; init; }

    /// <summary>
    /// gRPC <c>Ledger</c> service: HTTP/2 with prior knowledge (h2c). Kestrel cannot offer HTTP/1.1
    /// and cleartext HTTP/2 on one endpoint (that needs TLS ALPN), so gRPC has its own port; null = off.
    /// </summary>
    public IPEndPoint? GrpcEndpoint { get; init; }

    /// <summary>Log level for ASP.NET Core's own logs (the node logs its own events separately).</summary>
    public LogLevel MinimumLogLevel { get; init; } = LogLevel.Warning;
}

/// <summary>
/// The node's client-facing web server: Kestrel with the REST API on one endpoint and gRPC on
/// another. The node host starts it with its <see cref="ILedgerService"/>; tests start it with a fake.
/// </summary>
public sealed class ApiServer : IAsyncDisposable
{
    private readonly WebApplication app;

    private ApiServer(WebApplication app, Uri restUrl, Uri? grpcUrl)
    {
        this.app = app;
        RestUrl = restUrl;
        GrpcUrl = grpcUrl;
    }

    /// <summary>The bound REST address (with the real port when 0 was asked for).</summary>
    public Uri RestUrl { get; }

    public Uri? GrpcUrl { get; }

    public static async Task<ApiServer> StartAsync(ApiServerOptions options, ILedgerService service, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(service);
        var builder = NodeWebHost.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(console => console.SingleLine = true);
        builder.Logging.SetMinimumLevel(options.MinimumLogLevel);
        builder.Services.AddSingleton(service);
        builder.Services.AddGrpc(grpc =>
        {
            // A full batch of 8189 transfers is about 1.3 MB of protobuf; allow headroom, stay bounded.
            grpc.MaxReceiveMessageSize = ApiLimits.RequestBodyBytesMax;
            grpc.MaxSendMessageSize = ApiLimits.RequestBodyBytesMax;
        });
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // The API enforces its own limit with a clear message; this one only stops a runaway body.
            kestrel.Limits.MaxRequestBodySize = ApiLimits.RequestBodyBytesMax + 1;
            kestrel.Listen(options.RestEndpoint, listen => listen.Protocols = HttpProtocols.Http1);
            if (options.GrpcEndpoint is not null)
            {
                kestrel.Listen(options.GrpcEndpoint, listen => listen.Protocols = HttpProtocols.Http2);
            }
        });

        var app = builder.Build();
        app.Use(ProblemOnExceptionAsync);
        app.UseHttpMetrics();
        new RestApi(service).Map(app);
        app.MapMetrics("/metrics");
        app.MapGrpcService<LedgerGrpcService>();
        await app.StartAsync(cancellationToken);
        var (restUrl, grpcUrl) = BoundUrls(app, options);
        return new ApiServer(app, restUrl, grpcUrl);
    }

    /// <summary>Reads the real ports back from Kestrel (needed when port 0 was asked for).</summary>
    private static (Uri RestUrl, Uri? GrpcUrl) BoundUrls(WebApplication app, ApiServerOptions options)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        var bound = addresses.Select(address => new Uri(address)).ToList();
        Common.Invariant.Check(bound.Count == (options.GrpcEndpoint is null ? 1 : 2));
        var rest = bound[0];
        var grpc = options.GrpcEndpoint is null ? null : bound[1];
        return (rest, grpc);
    }

    /// <summary>An unexpected exception is a bug or a broken node: answer 500 as problem+json and log it.</summary>
    private static async Task ProblemOnExceptionAsync(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException exception) when (!context.Response.HasStarted)
        {
            var error = exception.StatusCode == 413
                ? ApiError.BodyTooLarge()
                : new ApiError(exception.StatusCode, "Bad request", $"{exception.Message} Fix the HTTP request and retry.");
            await HttpIo.WriteProblemAsync(context.Response, error);
        }
        catch (Exception exception) when (!context.Response.HasStarted)
        {
            context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger<ApiServer>()
                .LogError(exception, "Request {Method} {Path} failed", context.Request.Method, context.Request.Path);
            await HttpIo.WriteProblemAsync(context.Response, new ApiError(500, "Internal error",
                $"The node failed while handling this request ({exception.GetType().Name}); it was logged. " +
                "Retry with the same ids; if it persists, check the node's log."));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync(CancellationToken.None);
        await app.DisposeAsync();
    }
}
