using System.Net;
using System.Text;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Api;

/// <summary>Refused requests: 400/413/415 as problem+json, a message that says what to fix, nothing applied.</summary>
public sealed class RestApiValidationTests(ApiHarness api) : IClassFixture<ApiHarness>
{
    public static TheoryData<string, string> BadAccountBodies => new()
    {
        { """{"accounts":[{"id":"1","ledger":1""", "not valid JSON" },
        { """[]""", "must be a JSON object" },
        { """{"accounts":{"id":"1"}}""", "must be a JSON array" },
        { """{"acounts":[]}""", "Unknown field 'acounts'" },
        { """{}""", "Missing field 'accounts'" },
        { """{"accounts":[],"accounts":[]}""", "appears twice" },
        { """{"accounts":[{"id":"@ID","ledger":1,"code":1,"colour":"red"}]}""", "unknown field 'colour'" },
        { """{"accounts":[{"id":"@ID","id":"@ID"}]}""", "$.accounts[0].id appears twice" },
        { """{"accounts":[{"ledger":1,"code":1}]}""", "missing the required field 'id'" },
        { """{"accounts":[{"id":5}]}""", "$.accounts[0].id must be a decimal string" },
        { """{"accounts":[{"id":"340282366920938463463374607431768211456"}]}""", "(u128)" },
        { """{"accounts":[{"id":"-1"}]}""", "(u128)" },
        { """{"accounts":[{"id":"+1"}]}""", "(u128)" },
        { """{"accounts":[{"id":" 1"}]}""", "(u128)" },
        { """{"accounts":[{"id":"1e3"}]}""", "(u128)" },
        { """{"accounts":[{"id":""}]}""", "(u128)" },
        { """{"accounts":[{"id":"@ID","user_data_64":"18446744073709551616"}]}""", "(u64)" },
        { """{"accounts":[{"id":"@ID","user_data_64":5}]}""", "user_data_64 must be a decimal string" },
        { """{"accounts":[{"id":"@ID","ledger":"1"}]}""", "$.accounts[0].ledger must be a whole JSON number" },
        { """{"accounts":[{"id":"@ID","ledger":1.5}]}""", "(u32)" },
        { """{"accounts":[{"id":"@ID","ledger":-1}]}""", "(u32)" },
        { """{"accounts":[{"id":"@ID","ledger":4294967296}]}""", "(u32)" },
        { """{"accounts":[{"id":"@ID","code":65536}]}""", "(u16)" },
        { """{"accounts":[{"id":"@ID","flags":["debits_must_not_exceed_credit"]}]}""", "is not a flag" },
        { """{"accounts":[{"id":"@ID","flags":"linked"}]}""", "must be an array of flag names" },
        { """{"accounts":[{"id":"@ID","flags":[1]}]}""", "is not a flag" },
        { """{"accounts":[{"id":"@ID","ledger":null}]}""", "is null" },
        { """{"accounts":[5]}""", "must be an account object" },
        { """{"accounts":[]} {}""", "not valid JSON" },
        { """{"accounts":[],}""", "not valid JSON" },
        { """{"accounts":[/* hi */]}""", "not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(BadAccountBodies))]
    public async Task Invalid_account_batch_is_refused_with_400_and_nothing_is_applied(string template, string expected)
    {
        var id = ApiHarness.NewIds();
        var calls = api.Service.Calls;
        // A valid event first, so a partial apply would be visible.
        var body = template.Replace("@ID", (id + 1).ToString(), StringComparison.Ordinal)
            .Replace("""{"accounts":[{""", $$"""{"accounts":[{"id":"{{id + 2}}","ledger":1,"code":1},{""", StringComparison.Ordinal);

        // The bad event is then the second one.
        expected = expected.Replace("$.accounts[0]", "$.accounts[1]", StringComparison.Ordinal);

        var reply = await api.PostAsync("/v1/accounts", body);

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        Assert.Equal(400, reply.Json.GetProperty("status").GetInt32());
        Assert.Contains(expected, reply.Detail, StringComparison.Ordinal);
        Assert.Equal(calls, api.Service.Calls);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync($"/v1/accounts/{id + 2}")).Status);
    }

    public static TheoryData<string, string> BadTransferBodies => new()
    {
        { """{"transfers":[{"id":"1","amount":100}]}""", "$.transfers[0].amount must be a decimal string" },
        { """{"transfers":[{"id":"1","timeout":"60"}]}""", "$.transfers[0].timeout must be a whole JSON number" },
        { """{"transfers":[{"id":"1","flags":["pending","posted"]}]}""", "$.transfers[0].flags[1] is not a flag" },
        { """{"transfers":[{"id":"1","debit_account":"1"}]}""", "unknown field 'debit_account'" },
        { """{"transfers":[{"id":"1"},{"id":"2","pending_id":"x"}]}""", "$.transfers[1].pending_id" },
    };

    [Theory]
    [MemberData(nameof(BadTransferBodies))]
    public async Task Invalid_transfer_batch_is_refused_with_400_naming_the_field(string body, string expected)
    {
        var calls = api.Service.Calls;

        var reply = await api.PostAsync("/v1/transfers", body);

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Contains(expected, reply.Detail, StringComparison.Ordinal);
        Assert.Equal(calls, api.Service.Calls);
    }

    [Fact]
    public async Task Flag_error_lists_the_allowed_flags()
    {
        var reply = await api.PostAsync("/v1/transfers", """{"transfers":[{"id":"1","flags":["two_phase"]}]}""");

        Assert.Contains("Allowed flags: linked, pending, post_pending_transfer, void_pending_transfer", reply.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lookup_with_bad_ids_is_refused()
    {
        var numbers = await api.PostAsync("/v1/accounts/lookup", """{"ids":[1,2]}""");
        var wrongRoot = await api.PostAsync("/v1/transfers/lookup", """{"transfers":["1"]}""");

        Assert.Equal(HttpStatusCode.BadRequest, numbers.Status);
        Assert.Contains("$.ids[0] must be a decimal string", numbers.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, wrongRoot.Status);
        Assert.Contains("Unknown field 'transfers'", wrongRoot.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batch_of_more_than_8189_events_is_refused_with_413_and_nothing_is_applied()
    {
        var id = ApiHarness.NewIds();
        var events = Enumerable.Range(0, ApiLimits.EventsPerBatchMax + 1).Select(i => $"{{\"id\":\"{(ulong)i + (id * 10_000) + 1}\",\"ledger\":1,\"code\":1}}");
        var calls = api.Service.Calls;

        var reply = await api.PostAsync("/v1/accounts", $"{{\"accounts\":[{string.Join(',', events)}]}}");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        Assert.Contains("at most 8189 accounts", reply.Detail, StringComparison.Ordinal);
        Assert.Equal(calls, api.Service.Calls);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync($"/v1/accounts/{(id * 10_000) + 1}")).Status);
    }

    [Fact]
    public async Task Batch_of_exactly_8189_events_is_accepted()
    {
        var id = ApiHarness.NewIds();
        var ids = Enumerable.Range(0, ApiLimits.EventsPerBatchMax).Select(i => $"\"{(ulong)i + (id * 10_000) + 1}\"");

        var reply = await api.PostAsync("/v1/accounts/lookup", $"{{\"ids\":[{string.Join(',', ids)}]}}");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
    }

    [Fact]
    public async Task Body_over_the_size_limit_is_refused_with_413()
    {
        var body = Encoding.UTF8.GetBytes($"{{\"transfers\":[]{new string(' ', ApiLimits.RequestBodyBytesMax)}}}");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(api.BaseUrl, "/v1/transfers")) { Content = new ByteArrayContent(body) };
        // With 100-continue the server can refuse on Content-Length before the client sends the body.
        request.Headers.ExpectContinue = true;

        using var response = await api.Http.SendAsync(request, TestContext.Current.CancellationToken);
        var detail = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains($"larger than {ApiLimits.RequestBodyBytesMax} bytes", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chunked_body_over_the_size_limit_is_refused_with_413()
    {
        var padding = Encoding.UTF8.GetBytes($"{{\"transfers\":[]{new string(' ', ApiLimits.RequestBodyBytesMax)}}}");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(api.BaseUrl, "/v1/transfers"))
        {
            // A stream of unknown length is sent chunked, without Content-Length.
            Content = new StreamContent(new UnseekableStream(padding)),
        };

        using var response = await api.Http.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Null(request.Content.Headers.ContentLength);
    }

    [Fact]
    public async Task Non_json_content_type_is_refused_with_415()
    {
        var reply = await api.PostAsync("/v1/accounts", """{"accounts":[]}""", "text/plain");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, reply.Status);
        Assert.Contains("send Content-Type: application/json", reply.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/v1/accounts/abc", "account id in the path must be a decimal number")]
    [InlineData("/v1/transfers/-5", "transfer id in the path must be a decimal number")]
    [InlineData("/v1/accounts/340282366920938463463374607431768211456", "account id in the path")]
    [InlineData("/v1/accounts/1/transfers?limit=0", "limit must be a whole number from 1 to 8189")]
    [InlineData("/v1/accounts/1/transfers?limit=8190", "limit must be a whole number from 1 to 8189")]
    [InlineData("/v1/accounts/1/transfers?limt=5", "Unknown query parameter 'limt'")]
    [InlineData("/v1/accounts/1/transfers?limit=1&limit=2", "appears 2 times")]
    [InlineData("/v1/accounts/1/balances?debits=yes", "debits must be true or false")]
    [InlineData("/v1/accounts/1/transfers?debits=false&credits=false", "set at least one to true")]
    [InlineData("/v1/accounts/1/transfers?timestamp_min=10&timestamp_max=5", "swap them")]
    [InlineData("/v1/accounts/1/balances?timestamp_max=-1", "timestamp_max must be a decimal number")]
    public async Task Bad_path_or_query_is_refused_with_400(string path, string expected)
    {
        var reply = await api.GetAsync(path);

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        Assert.Contains(expected, reply.Detail, StringComparison.Ordinal);
    }

    /// <summary>A read-only stream that hides its length, so HttpClient sends it chunked.</summary>
    private sealed class UnseekableStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
