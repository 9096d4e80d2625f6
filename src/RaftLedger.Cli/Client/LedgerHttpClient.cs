using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using RaftLedger.Ledger;
using RaftLedger.Node.Api;

namespace RaftLedger.Cli.Client;

/// <summary>An HTTP answer: the status, the body, and for errors the problem's detail.</summary>
public readonly record struct HttpAnswer<T>(HttpStatusCode StatusCode, T? Value, string Problem)
{
    public bool IsOk => StatusCode == HttpStatusCode.OK;
}

/// <summary>One create result as the API returns it.</summary>
public readonly record struct CreateResult(int Index, string Status, ulong Timestamp)
{
    public bool IsCreated => Status == "created";
}

/// <summary>
/// A small REST client for the CLI (status, demo) and the process tests. It writes requests with
/// the API's own JSON writer and reads accounts and transfers with the API's own strict reader,
/// so the client and the server cannot disagree on the format. (The SDK of issue 7 replaces it.)
/// </summary>
public sealed class LedgerHttpClient : IDisposable
{
    private readonly HttpClient http;

    public LedgerHttpClient(TimeSpan requestTimeout)
    {
        http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(1), ConnectTimeout = TimeSpan.FromSeconds(2) })
        {
            Timeout = requestTimeout,
        };
    }

    public Task<HttpAnswer<CreateResult[]>> CreateAccountsAsync(Uri node, ReadOnlySpan<Account> accounts, CancellationToken cancellationToken)
    {
        var body = Write(accounts, static (writer, items) => JsonResponseWriter.WriteAccounts(writer, "accounts"u8, items));
        return PostAsync(node, "/v1/accounts", body, ReadResults, cancellationToken);
    }

    public Task<HttpAnswer<CreateResult[]>> CreateTransfersAsync(Uri node, ReadOnlySpan<Transfer> transfers, CancellationToken cancellationToken)
    {
        var body = Write(transfers, static (writer, items) => JsonResponseWriter.WriteTransfers(writer, items));
        return PostAsync(node, "/v1/transfers", body, ReadResults, cancellationToken);
    }

    public Task<HttpAnswer<Account[]>> LookupAccountsAsync(Uri node, ReadOnlySpan<UInt128> ids, CancellationToken cancellationToken) =>
        PostAsync(node, "/v1/accounts/lookup", WriteIds(ids), ReadAccounts, cancellationToken);

    public Task<HttpAnswer<Transfer[]>> LookupTransfersAsync(Uri node, ReadOnlySpan<UInt128> ids, CancellationToken cancellationToken) =>
        PostAsync(node, "/v1/transfers/lookup", WriteIds(ids), ReadTransfers, cancellationToken);

    /// <summary>get_account_transfers: the account's transfers (debits and credits) with timestamp ≥ <paramref name="timestampMin"/>, oldest first.</summary>
    public Task<HttpAnswer<Transfer[]>> GetAccountTransfersAsync(Uri node, UInt128 accountId, ulong timestampMin, uint limit, CancellationToken cancellationToken) =>
        GetAsync(node, string.Create(CultureInfo.InvariantCulture, $"/v1/accounts/{accountId}/transfers?debits=true&credits=true&limit={limit}&timestamp_min={timestampMin}"),
            ReadTransfers, cancellationToken);

    public Task<HttpAnswer<ClusterStatus>> GetClusterAsync(Uri node, CancellationToken cancellationToken) =>
        GetAsync(node, "/v1/cluster", StatusJson.ReadCluster, cancellationToken);

    /// <summary>/v1/node; fingerprints only when asked, since computing them pauses the node's scheduler.</summary>
    public Task<HttpAnswer<NodeStatus>> GetNodeAsync(Uri node, CancellationToken cancellationToken, bool fingerprints = false) =>
        GetAsync(node, fingerprints ? "/v1/node?fingerprints=true" : "/v1/node", StatusJson.ReadNode, cancellationToken);

    private delegate void SpanWriter<T>(Utf8JsonWriter writer, ReadOnlySpan<T> items);

    private static byte[] Write<T>(ReadOnlySpan<T> items, SpanWriter<T> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer, items);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] WriteIds(ReadOnlySpan<UInt128> ids)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("ids"u8);
            foreach (var id in ids)
            {
                writer.WriteStringValue(id.ToString(CultureInfo.InvariantCulture));
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private async Task<HttpAnswer<T>> PostAsync<T>(Uri node, string path, byte[] body, Func<byte[], T> read, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync(new Uri(node, path), content, cancellationToken);
        return await AnswerAsync(response, read, cancellationToken);
    }

    private async Task<HttpAnswer<T>> GetAsync<T>(Uri node, string path, Func<byte[], T> read, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(new Uri(node, path), cancellationToken);
        return await AnswerAsync(response, read, cancellationToken);
    }

    private static async Task<HttpAnswer<T>> AnswerAsync<T>(HttpResponseMessage response, Func<byte[], T> read, CancellationToken cancellationToken)
    {
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return new HttpAnswer<T>(response.StatusCode, default, ProblemDetail(bytes));
        }

        return new HttpAnswer<T>(response.StatusCode, read(bytes), "");
    }

    private static string ProblemDetail(byte[] bytes)
    {
        try
        {
            using var document = JsonDocument.Parse(bytes);
            return document.RootElement.TryGetProperty("detail", out var detail) ? detail.GetString() ?? "" : "";
        }
        catch (JsonException)
        {
            return System.Text.Encoding.UTF8.GetString(bytes);
        }
    }

    private static CreateResult[] ReadResults(byte[] bytes)
    {
        using var document = JsonDocument.Parse(bytes);
        var results = document.RootElement.GetProperty("results");
        var parsed = new CreateResult[results.GetArrayLength()];
        var i = 0;
        foreach (var result in results.EnumerateArray())
        {
            var timestamp = result.TryGetProperty("timestamp", out var value)
                ? ulong.Parse(value.GetString()!, CultureInfo.InvariantCulture)
                : 0;
            parsed[i++] = new CreateResult(result.GetProperty("index").GetInt32(), result.GetProperty("status").GetString()!, timestamp);
        }

        return parsed;
    }

    private static Account[] ReadAccounts(byte[] bytes)
    {
        var accounts = new List<Account>();
        if (!JsonRequestReader.TryReadAccounts(bytes, accounts, out var error))
        {
            throw new InvalidDataException($"The server sent accounts this client cannot read: {error.Detail}");
        }

        return accounts.ToArray();
    }

    private static Transfer[] ReadTransfers(byte[] bytes)
    {
        var transfers = new List<Transfer>();
        if (!JsonRequestReader.TryReadTransfers(bytes, transfers, out var error))
        {
            throw new InvalidDataException($"The server sent transfers this client cannot read: {error.Detail}");
        }

        return transfers.ToArray();
    }

    public void Dispose() => http.Dispose();
}
