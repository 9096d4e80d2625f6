using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using RaftLedger.Cli.Bench;

namespace RaftLedger.Node.Tests.Bench;

/// <summary>The bench given a REST (HTTP/1.1-only) address where it needs gRPC says so at once.</summary>
public sealed class BenchAddressTests
{
    private const int TestTimeoutMilliseconds = 60_000;

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task A_rest_address_is_refused_at_once_with_a_hint_instead_of_waiting_for_the_timeout()
    {
        var cancel = TestContext.Current.CancellationToken;
        await using var rest = await StartHttp1OnlyServerAsync(cancel);
        var url = new Uri(rest.Urls.Single());

        // A timeout far longer than the test's: only recognising the refusal can end the call in time.
        var exception = await Assert.ThrowsAsync<BenchException>(
            () => GrpcBenchLedger.ConnectAsync([new BenchNode(1, url)], TimeSpan.FromHours(1), cancel));

        Assert.Contains("is a REST address", exception.Message, StringComparison.Ordinal);
        Assert.Contains(url.ToString().TrimEnd('/'), exception.Message, StringComparison.Ordinal);
    }

    /// <summary>A Kestrel endpoint on an ephemeral loopback port that speaks only HTTP/1.1, as a node's REST port does.</summary>
    private static async Task<WebApplication> StartHttp1OnlyServerAsync(CancellationToken cancel)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http1));
        var app = builder.Build();
        app.MapGet("/", () => "rest");
        await app.StartAsync(cancel);
        Assert.Single(app.Urls); // the bound port, once started
        return app;
    }
}
