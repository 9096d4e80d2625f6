using System.Net;
using System.Text.Json;

namespace RaftLedger.Node.Tests.Api;

/// <summary>The REST contract of issue 5 §3 on the happy paths, over real HTTP.</summary>
public sealed class RestApiTests(ApiHarness api) : IClassFixture<ApiHarness>
{
    private static string[] Statuses(Reply reply) =>
        reply.Json.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("status").GetString()!).ToArray();

    [Fact]
    public async Task Create_accounts_returns_one_result_per_event_in_input_order()
    {
        var id = ApiHarness.NewIds();
        var reply = await api.PostAsync("/v1/accounts", $$"""
            {"accounts":[
              {"id":"{{id + 1}}","ledger":1,"code":10,"flags":["debits_must_not_exceed_credits"],"user_data_128":"7","user_data_64":"8","user_data_32":9},
              {"id":"0","ledger":1,"code":10},
              {"id":"{{id + 2}}","ledger":0,"code":10},
              {"id":"{{id + 1}}","ledger":1,"code":10,"flags":["debits_must_not_exceed_credits"],"user_data_128":"7","user_data_64":"8","user_data_32":9}
            ]}
            """);

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal("application/json", reply.ContentType);
        Assert.Equal(["created", "id_must_not_be_zero", "ledger_must_not_be_zero", "exists"], Statuses(reply));
        var results = reply.Json.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal([0, 1, 2, 3], results.Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(JsonValueKind.String, results[0].GetProperty("timestamp").ValueKind);
        Assert.True(ulong.Parse(results[0].GetProperty("timestamp").GetString()!) > 0);
        Assert.False(results[1].TryGetProperty("timestamp", out _), "a failed event has no timestamp");
    }

    [Fact]
    public async Task Get_account_returns_every_field_with_u128_and_u64_as_decimal_strings()
    {
        var id = ApiHarness.NewIds();
        await api.PostAsync("/v1/accounts", $$"""
            {"accounts":[{"id":"{{id + 1}}","ledger":4294967295,"code":65535,"flags":["history","credits_must_not_exceed_debits"],
              "user_data_128":"340282366920938463463374607431768211455","user_data_64":"18446744073709551615","user_data_32":4294967295}]}
            """);

        var reply = await api.GetAsync($"/v1/accounts/{id + 1}");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var account = reply.Json;
        Assert.Equal((id + 1).ToString(), account.GetProperty("id").GetString());
        Assert.Equal("340282366920938463463374607431768211455", account.GetProperty("user_data_128").GetString());
        Assert.Equal("18446744073709551615", account.GetProperty("user_data_64").GetString());
        Assert.Equal(4294967295u, account.GetProperty("user_data_32").GetUInt32());
        Assert.Equal(4294967295u, account.GetProperty("ledger").GetUInt32());
        Assert.Equal(65535, account.GetProperty("code").GetInt32());
        Assert.Equal(["credits_must_not_exceed_debits", "history"], account.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        foreach (var balance in new[] { "debits_pending", "debits_posted", "credits_pending", "credits_posted" })
        {
            Assert.Equal("0", account.GetProperty(balance).GetString());
        }

        Assert.NotEqual("0", account.GetProperty("timestamp").GetString());
    }

    [Fact]
    public async Task Transfer_moves_balances_and_reports_ledger_statuses_in_snake_case()
    {
        var id = ApiHarness.NewIds();
        await api.PostAsync("/v1/accounts", $$"""
            {"accounts":[{"id":"{{id + 1}}","ledger":1,"code":1,"flags":["debits_must_not_exceed_credits"]},{"id":"{{id + 2}}","ledger":1,"code":1}]}
            """);

        var reply = await api.PostAsync("/v1/transfers", $$"""
            {"transfers":[
              {"id":"{{id + 10}}","debit_account_id":"{{id + 2}}","credit_account_id":"{{id + 1}}","amount":"100","ledger":1,"code":1},
              {"id":"{{id + 11}}","debit_account_id":"{{id + 1}}","credit_account_id":"{{id + 2}}","amount":"101","ledger":1,"code":1},
              {"id":"{{id + 12}}","debit_account_id":"{{id + 1}}","credit_account_id":"{{id + 2}}","amount":"30","ledger":1,"code":1,"flags":["linked"]},
              {"id":"{{id + 13}}","debit_account_id":"{{id + 1}}","credit_account_id":"{{id + 99}}","amount":"1","ledger":1,"code":1}
            ]}
            """);

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal(["created", "exceeds_credits", "linked_event_failed", "credit_account_not_found"], Statuses(reply));
        var account = (await api.GetAsync($"/v1/accounts/{id + 1}")).Json;
        Assert.Equal("100", account.GetProperty("credits_posted").GetString());
        Assert.Equal("0", account.GetProperty("debits_posted").GetString());
    }

    [Fact]
    public async Task Get_transfer_returns_the_transfer_with_all_fields()
    {
        var id = ApiHarness.NewIds();
        await api.CreateAccountsAsync(id + 1, id + 2);
        await api.PostAsync("/v1/transfers", $$"""
            {"transfers":[{"id":"{{id + 10}}","debit_account_id":"{{id + 1}}","credit_account_id":"{{id + 2}}","amount":"5","ledger":1,"code":3,
              "flags":["pending"],"timeout":60,"user_data_128":"1","user_data_64":"2","user_data_32":3}]}
            """);

        var reply = await api.GetAsync($"/v1/transfers/{id + 10}");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var transfer = reply.Json;
        Assert.Equal((id + 1).ToString(), transfer.GetProperty("debit_account_id").GetString());
        Assert.Equal((id + 2).ToString(), transfer.GetProperty("credit_account_id").GetString());
        Assert.Equal("5", transfer.GetProperty("amount").GetString());
        Assert.Equal("0", transfer.GetProperty("pending_id").GetString());
        Assert.Equal(60u, transfer.GetProperty("timeout").GetUInt32());
        Assert.Equal(3, transfer.GetProperty("code").GetInt32());
        Assert.Equal(["pending"], transfer.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        Assert.Equal("1", transfer.GetProperty("user_data_128").GetString());
        Assert.Equal("2", transfer.GetProperty("user_data_64").GetString());
        Assert.Equal(3u, transfer.GetProperty("user_data_32").GetUInt32());
    }

    [Fact]
    public async Task Get_of_a_missing_account_or_transfer_is_a_404_problem()
    {
        var id = ApiHarness.NewIds();

        var account = await api.GetAsync($"/v1/accounts/{id + 1}");
        var transfer = await api.GetAsync($"/v1/transfers/{id + 1}");

        Assert.Equal(HttpStatusCode.NotFound, account.Status);
        Assert.Equal("application/problem+json", account.ContentType);
        Assert.Contains($"Account {id + 1} does not exist", account.Detail);
        Assert.Equal(404, account.Json.GetProperty("status").GetInt32());
        Assert.Equal(HttpStatusCode.NotFound, transfer.Status);
        Assert.Contains($"Transfer {id + 1} does not exist", transfer.Detail);
    }

    [Fact]
    public async Task Lookup_returns_the_found_accounts_and_transfers_in_request_order()
    {
        var id = ApiHarness.NewIds();
        await api.CreateAccountsAsync(id + 1, id + 2, id + 3);
        await api.PostAsync("/v1/transfers", $$"""
            {"transfers":[{"id":"{{id + 10}}","debit_account_id":"{{id + 1}}","credit_account_id":"{{id + 2}}","amount":"5","ledger":1,"code":3},
                          {"id":"{{id + 11}}","debit_account_id":"{{id + 2}}","credit_account_id":"{{id + 3}}","amount":"5","ledger":1,"code":3}]}
            """);

        var accounts = await api.PostAsync("/v1/accounts/lookup", $$"""{"ids":["{{id + 3}}","{{id + 50}}","{{id + 1}}"]}""");
        var transfers = await api.PostAsync("/v1/transfers/lookup", $$"""{"ids":["{{id + 11}}","{{id + 10}}","{{id + 12}}"]}""");

        Assert.Equal(HttpStatusCode.OK, accounts.Status);
        Assert.Equal([$"{id + 3}", $"{id + 1}"], accounts.Json.GetProperty("accounts").EnumerateArray().Select(a => a.GetProperty("id").GetString()));
        Assert.Equal(HttpStatusCode.OK, transfers.Status);
        Assert.Equal([$"{id + 11}", $"{id + 10}"], transfers.Json.GetProperty("transfers").EnumerateArray().Select(t => t.GetProperty("id").GetString()));
    }

    [Fact]
    public async Task Account_transfers_query_applies_limit_direction_and_order()
    {
        var id = ApiHarness.NewIds();
        await api.CreateAccountsAsync(id + 1, id + 2);
        await api.PostAsync("/v1/transfers", $$"""
            {"transfers":[
              {"id":"{{id + 10}}","debit_account_id":"{{id + 1}}","credit_account_id":"{{id + 2}}","amount":"1","ledger":1,"code":1},
              {"id":"{{id + 11}}","debit_account_id":"{{id + 2}}","credit_account_id":"{{id + 1}}","amount":"2","ledger":1,"code":1},
              {"id":"{{id + 12}}","debit_account_id":"{{id + 1}}","credit_account_id":"{{id + 2}}","amount":"3","ledger":1,"code":1}]}
            """);

        var all = await api.GetAsync($"/v1/accounts/{id + 1}/transfers");
        var debitsNewestFirst = await api.GetAsync($"/v1/accounts/{id + 1}/transfers?debits=true&reversed=true");
        var oneCredit = await api.GetAsync($"/v1/accounts/{id + 1}/transfers?credits=true&limit=1");

        static string[] Ids(Reply reply) => reply.Json.GetProperty("transfers").EnumerateArray().Select(t => t.GetProperty("id").GetString()!).ToArray();
        Assert.Equal([$"{id + 10}", $"{id + 11}", $"{id + 12}"], Ids(all));
        Assert.Equal([$"{id + 12}", $"{id + 10}"], Ids(debitsNewestFirst));
        Assert.Equal([$"{id + 11}"], Ids(oneCredit));
    }

    [Fact]
    public async Task Account_transfers_query_honours_the_timestamp_window()
    {
        var id = ApiHarness.NewIds();
        await api.CreateAccountsAsync(id + 1, id + 2);
        var created = await api.PostAsync("/v1/transfers", $$"""
            {"transfers":[
              {"id":"{{id + 10}}","debit_account_id":"{{id + 1}}","credit_account_id":"{{id + 2}}","amount":"1","ledger":1,"code":1},
              {"id":"{{id + 11}}","debit_account_id":"{{id + 1}}","credit_account_id":"{{id + 2}}","amount":"2","ledger":1,"code":1}]}
            """);
        var second = created.Json.GetProperty("results")[1].GetProperty("timestamp").GetString();

        var reply = await api.GetAsync($"/v1/accounts/{id + 1}/transfers?timestamp_min={second}&timestamp_max={second}");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal([$"{id + 11}"], reply.Json.GetProperty("transfers").EnumerateArray().Select(t => t.GetProperty("id").GetString()));
    }

    [Fact]
    public async Task Account_balances_query_returns_the_history_of_a_history_account()
    {
        var id = ApiHarness.NewIds();
        await api.PostAsync("/v1/accounts", $$"""
            {"accounts":[{"id":"{{id + 1}}","ledger":1,"code":1,"flags":["history"]},{"id":"{{id + 2}}","ledger":1,"code":1}]}
            """);
        await api.PostAsync("/v1/transfers", $$"""
            {"transfers":[
              {"id":"{{id + 10}}","debit_account_id":"{{id + 2}}","credit_account_id":"{{id + 1}}","amount":"7","ledger":1,"code":1},
              {"id":"{{id + 11}}","debit_account_id":"{{id + 2}}","credit_account_id":"{{id + 1}}","amount":"5","ledger":1,"code":1}]}
            """);

        var reply = await api.GetAsync($"/v1/accounts/{id + 1}/balances");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var balances = reply.Json.GetProperty("balances").EnumerateArray().ToArray();
        Assert.Equal(["7", "12"], balances.Select(b => b.GetProperty("credits_posted").GetString()));
        Assert.All(balances, b => Assert.Equal("0", b.GetProperty("debits_posted").GetString()));
        Assert.All(balances, b => Assert.NotEqual("0", b.GetProperty("timestamp").GetString()));
    }

    [Fact]
    public async Task Empty_batch_is_answered_with_no_results()
    {
        var reply = await api.PostAsync("/v1/transfers", """{"transfers":[]}""");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal(0, reply.Json.GetProperty("results").GetArrayLength());
    }

    [Fact]
    public async Task Escaped_decimal_strings_and_a_missing_content_type_are_accepted()
    {
        var id = ApiHarness.NewIds();
        var escaped = string.Concat((id + 1).ToString().Select(c => $"\\u00{(int)c:x2}"));

        var reply = await api.PostAsync("/v1/accounts", $$"""{"accounts":[{"id":"{{escaped}}","ledger":1,"code":1}]}""", contentType: null);

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal(["created"], Statuses(reply));
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync($"/v1/accounts/{id + 1}")).Status);
    }

    [Fact]
    public async Task Cluster_endpoint_lists_nodes_and_shards_with_indexes_as_strings()
    {
        var reply = await api.GetAsync("/v1/cluster");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var node = reply.Json.GetProperty("nodes")[0];
        Assert.Equal(1u, node.GetProperty("id").GetUInt64());
        Assert.Equal("127.0.0.1:8101", node.GetProperty("api").GetString());
        Assert.Equal("127.0.0.1:7101", node.GetProperty("peer").GetString());
        Assert.Equal("127.0.0.1:9101", node.GetProperty("grpc").GetString());
        Assert.True(node.GetProperty("up").GetBoolean());
        var shard = reply.Json.GetProperty("shards")[0];
        Assert.Equal([1ul, 2, 3], shard.GetProperty("replicas").EnumerateArray().Select(r => r.GetUInt64()));
        Assert.Equal(1u, shard.GetProperty("leader").GetUInt64());
        Assert.Equal("4", shard.GetProperty("term").GetString());
        Assert.Equal("120", shard.GetProperty("commit_index").GetString());
        Assert.Equal("118", shard.GetProperty("applied_index").GetString());
        Assert.Equal("117", shard.GetProperty("progress")[1].GetProperty("match_index").GetString());
    }

    [Fact]
    public async Task Node_endpoint_reports_each_local_replica_fingerprint()
    {
        var reply = await api.GetAsync("/v1/node?fingerprints=true");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var replica = reply.Json.GetProperty("replicas")[0];
        Assert.Equal(api.Service.Fingerprint().ToString("x32"), replica.GetProperty("fingerprint").GetString());
        Assert.Equal("118", replica.GetProperty("applied_index").GetString());
    }

    [Fact]
    public async Task Node_endpoint_leaves_out_fingerprints_unless_asked_because_they_pause_the_scheduler()
    {
        var reply = await api.GetAsync("/v1/node");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var replica = reply.Json.GetProperty("replicas")[0];
        Assert.False(replica.TryGetProperty("fingerprint", out _));
        Assert.Equal("118", replica.GetProperty("applied_index").GetString());
    }

    [Fact]
    public async Task Dashboard_is_one_self_contained_page_that_reads_the_cluster_endpoint()
    {
        var page = await api.GetAsync("/dashboard");

        Assert.Equal(HttpStatusCode.OK, page.Status);
        Assert.StartsWith("<!doctype html>", page.Body, StringComparison.Ordinal);
        Assert.Contains("fetch(\"/v1/cluster\"", page.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("src=", page.Body, StringComparison.Ordinal); // no external scripts or images
        Assert.DoesNotContain("<link", page.Body, StringComparison.Ordinal); // nor style sheets or fonts
    }

    [Fact]
    public async Task Dashboard_points_shards_this_node_does_not_lead_to_their_leaders_dashboard()
    {
        // Only a leader reports replica progress, and the page reads only its own node: for the other shards it must say
        // where the lag is (the leader's page, or `raftledger status`) rather than show a bare dash.
        var page = await api.GetAsync("/dashboard");

        Assert.Contains("Only a shard's leader knows how far its replicas are behind", page.Body, StringComparison.Ordinal);
        Assert.Contains("<code>raftledger status</code>", page.Body, StringComparison.Ordinal);
        Assert.Contains("reps || elsewhere(s, apis)", page.Body, StringComparison.Ordinal);
        Assert.Contains("on leader ${esc(s.leader)}'s dashboard", page.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_and_metrics_endpoints_answer()
    {
        var id = ApiHarness.NewIds();
        await api.CreateAccountsAsync(id + 1);

        var health = await api.GetAsync("/healthz");
        var ready = await api.GetAsync("/readyz");
        var metrics = await api.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.OK, health.Status);
        Assert.Equal(HttpStatusCode.OK, ready.Status);
        Assert.Equal(HttpStatusCode.OK, metrics.Status);
        Assert.Contains("raftledger_api_events_total{operation=\"create_accounts\",outcome=\"created\"}", metrics.Body);
        Assert.Contains("http_requests_received_total", metrics.Body);
    }
}
