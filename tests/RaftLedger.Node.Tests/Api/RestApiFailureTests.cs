using System.Net;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Api;

/// <summary>Cluster failures as HTTP: 503 + Retry-After (nothing applied), 504 (outcome unknown), 500 (a bug).</summary>
public sealed class RestApiFailureTests(ApiHarness api) : IClassFixture<ApiHarness>
{
    [Theory]
    [InlineData(ServiceStatus.NoLeader, "No leader", "a leader election is in progress")]
    [InlineData(ServiceStatus.NoQuorum, "No quorum", "bring more replicas of the shard back up")]
    [InlineData(ServiceStatus.Unavailable, "Unavailable", "Nothing was applied")]
    public async Task Shard_without_leader_or_quorum_answers_503_with_retry_after(ServiceStatus status, string title, string hint)
    {
        var id = ApiHarness.NewIds();
        api.Service.FailNext(status, TimeSpan.FromMilliseconds(2500));

        var reply = await api.PostAsync("/v1/accounts", $$"""{"accounts":[{"id":"{{id + 1}}","ledger":1,"code":1}]}""");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        Assert.Equal(title, reply.Json.GetProperty("title").GetString());
        Assert.Contains(hint, reply.Detail, StringComparison.Ordinal);
        Assert.Contains("Injected", reply.Detail, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromSeconds(3), reply.Message.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync($"/v1/accounts/{id + 1}")).Status);
    }

    [Fact]
    public async Task Retry_after_defaults_to_one_second_when_the_service_gives_none()
    {
        api.Service.FailNext(ServiceStatus.NoLeader);

        var reply = await api.PostAsync("/v1/transfers/lookup", """{"ids":["1"]}""");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, reply.Status);
        Assert.Equal(TimeSpan.FromSeconds(1), reply.Message.Headers.RetryAfter?.Delta);
    }

    [Theory]
    [InlineData("/v1/accounts/1")]
    [InlineData("/v1/transfers/1")]
    [InlineData("/v1/accounts/1/transfers")]
    [InlineData("/v1/accounts/1/balances")]
    public async Task Reads_without_a_leader_answer_503(string path)
    {
        api.Service.FailNext(ServiceStatus.NoLeader);

        var reply = await api.GetAsync(path);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, reply.Status);
        Assert.NotNull(reply.Message.Headers.RetryAfter);
    }

    [Fact]
    public async Task Outcome_unknown_answers_504_telling_the_client_to_retry_with_the_same_ids()
    {
        var id = ApiHarness.NewIds();
        api.Service.FailNext(ServiceStatus.OutcomeUnknown);

        var reply = await api.PostAsync("/v1/transfers", $$"""{"transfers":[{"id":"{{id + 1}}"}]}""");

        Assert.Equal(HttpStatusCode.GatewayTimeout, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        Assert.Contains("retry it unchanged, with the same ids", reply.Detail, StringComparison.Ordinal);
        Assert.Null(reply.Message.Headers.RetryAfter);
    }

    [Fact]
    public async Task Host_exception_answers_500_problem_and_the_server_keeps_serving()
    {
        api.Service.ThrowNext();

        var failed = await api.PostAsync("/v1/accounts/lookup", """{"ids":["1"]}""");
        var next = await api.PostAsync("/v1/accounts/lookup", """{"ids":["1"]}""");

        Assert.Equal(HttpStatusCode.InternalServerError, failed.Status);
        Assert.Equal("application/problem+json", failed.ContentType);
        Assert.Contains("InvalidOperationException", failed.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, next.Status);
    }

    [Fact]
    public async Task Readyz_answers_503_while_some_shard_has_no_leader()
    {
        api.Service.IsReady = false;
        try
        {
            var notReady = await api.GetAsync("/readyz");
            var health = await api.GetAsync("/healthz");

            Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.Status);
            Assert.NotNull(notReady.Message.Headers.RetryAfter);
            Assert.Equal(HttpStatusCode.OK, health.Status);
        }
        finally
        {
            api.Service.IsReady = true;
        }

        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/readyz")).Status);
    }
}
