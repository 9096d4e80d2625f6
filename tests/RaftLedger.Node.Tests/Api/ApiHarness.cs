using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Api;

/// <summary>A response: status, headers and the parsed JSON body (if any).</summary>
internal sealed record Reply(HttpStatusCode Status, HttpResponseMessage Message, string Body)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;

    public string? ContentType => Message.Content.Headers.ContentType?.MediaType;

    public string Detail => Json.GetProperty("detail").GetString()!;
}

/// <summary>
/// The real API server (Kestrel on an ephemeral loopback port, real HTTP) over
/// <see cref="InMemoryLedgerService"/>. One per test class; tests use distinct ids.
/// </summary>
public sealed class ApiHarness : IAsyncLifetime
{
    private static long nextId = 1000;
    private ApiServer? server;

    internal InMemoryLedgerService Service { get; } = new();

    internal HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    internal Uri BaseUrl => server!.RestUrl;

    internal Uri GrpcUrl => server!.GrpcUrl!;

    /// <summary>A fresh id block: ids id..id+99 are unused by any other test, all on shard 0 of the test routing.</summary>
    public static ulong NewIds()
    {
        var block = (ulong)Interlocked.Add(ref nextId, 1000);
        return block;
    }

    public async ValueTask InitializeAsync()
    {
        var options = new ApiServerOptions
        {
            RestEndpoint = new IPEndPoint(IPAddress.Loopback, 0),
            GrpcEndpoint = new IPEndPoint(IPAddress.Loopback, 0),
        };
        server = await ApiServer.StartAsync(options, Service, CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (server is not null)
        {
            await server.DisposeAsync();
        }
    }

    internal Task<Reply> PostAsync(string path, string json, string? contentType = "application/json") =>
        SendAsync(HttpMethod.Post, path, json, contentType);

    internal Task<Reply> GetAsync(string path) => SendAsync(HttpMethod.Get, path, null, null);

    internal async Task<Reply> SendAsync(HttpMethod method, string path, string? json, string? contentType)
    {
        using var request = new HttpRequestMessage(method, new Uri(BaseUrl, path));
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8);
            request.Content.Headers.ContentType = contentType is null ? null : MediaTypeHeaderValue.Parse(contentType);
        }

        var response = await Http.SendAsync(request, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return new Reply(response.StatusCode, response, body);
    }

    /// <summary>Creates plain accounts (ledger 1, code 1) with the given ids and asserts they were created.</summary>
    internal async Task CreateAccountsAsync(params ulong[] ids)
    {
        var accounts = string.Join(',', ids.Select(id => $"{{\"id\":\"{id}\",\"ledger\":1,\"code\":1}}"));
        var reply = await PostAsync("/v1/accounts", $"{{\"accounts\":[{accounts}]}}");
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.All(reply.Json.GetProperty("results").EnumerateArray(), r => Assert.Equal("created", r.GetProperty("status").GetString()));
    }
}
