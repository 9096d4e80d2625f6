using System.Net.Sockets;
using Grpc.Core;
using RaftLedger.Client;
using RaftLedger.Client.Internal;
using RaftLedger.Ledger;

namespace RaftLedger.Client.Tests;

/// <summary>The retry policy (pure) and the client's retries against scripted fake nodes.</summary>
public sealed class RetryTests
{
    private static readonly Transfer Payment = new() { Id = 77, DebitAccountId = 1, CreditAccountId = 2, Amount = 5, Ledger = 1, Code = 1 };

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public void Node_refusals_and_refused_connections_mean_nothing_was_applied()
    {
        Assert.Equal(FailureKind.NotApplied, RetryPolicy.Classify(FakeNode.Unavailable(fromNode: true)));
        Assert.Equal(FailureKind.NotApplied, RetryPolicy.Classify(FakeNode.Unavailable(fromNode: false)));
    }

    [Fact]
    public void Timeouts_and_lost_connections_mean_the_outcome_is_unknown()
    {
        Assert.Equal(FailureKind.MaybeApplied, RetryPolicy.Classify(new RpcException(new Status(StatusCode.DeadlineExceeded, "outcome unknown"))));
        Assert.Equal(FailureKind.MaybeApplied, RetryPolicy.Classify(new RpcException(new Status(StatusCode.Unavailable, "reset", new IOException("connection reset")))));
        Assert.Equal(FailureKind.MaybeApplied, RetryPolicy.Classify(new RpcException(new Status(StatusCode.Internal, "stream", new HttpRequestException("closed")))));
        Assert.Equal(FailureKind.MaybeApplied, RetryPolicy.Classify(new RpcException(new Status(StatusCode.Unavailable, "refused then reset", new IOException("x", new SocketException((int)SocketError.ConnectionReset))))));
    }

    [Fact]
    public void Malformed_requests_and_server_bugs_are_not_retried()
    {
        Assert.Equal(FailureKind.Fatal, RetryPolicy.Classify(new RpcException(new Status(StatusCode.InvalidArgument, "bad"))));
        Assert.Equal(FailureKind.Fatal, RetryPolicy.Classify(new RpcException(new Status(StatusCode.ResourceExhausted, "too many"))));
        Assert.Equal(FailureKind.Fatal, RetryPolicy.Classify(new RpcException(new Status(StatusCode.Internal, "bug"))));
    }

    [Theory]
    [InlineData(0, 10, 1000)]
    [InlineData(3, 10, 1000)]
    [InlineData(40, 10, 1000)]
    [InlineData(5, 200, 500)]
    public void Backoff_doubles_from_the_initial_wait_up_to_the_cap_with_half_of_it_jittered(int attempt, int initialMs, int maxMs)
    {
        var initial = TimeSpan.FromMilliseconds(initialMs);
        var max = TimeSpan.FromMilliseconds(maxMs);
        var cap = Math.Min(maxMs, initialMs * Math.Pow(2, Math.Min(attempt, 30)));
        var low = RetryPolicy.Backoff(attempt, initial, max, 0.0);
        var high = RetryPolicy.Backoff(attempt, initial, max, 0.999999);
        Assert.Equal(cap / 2, low.TotalMilliseconds, precision: 3);
        Assert.Equal(cap, high.TotalMilliseconds, precision: 1);
        Assert.True(RetryPolicy.Backoff(attempt + 1, initial, max, 0.5) >= RetryPolicy.Backoff(attempt, initial, max, 0.5));
    }

    [Fact]
    public async Task A_call_is_retried_with_the_same_events_until_the_cluster_answers()
    {
        var cluster = new FakeCluster(1, _ => 1);
        var failures = 3;
        foreach (var node in cluster.Nodes)
        {
            // Whichever node the client tries: three unknown outcomes, then the transfer is found.
            node.OnTransfers = events => Interlocked.Decrement(ref failures) >= 0
                ? Task.FromException<EventAnswer[]>(new RpcException(new Status(StatusCode.DeadlineExceeded, "outcome unknown")))
                : Task.FromResult(new[] { new EventAnswer("exists", 0) });
        }

        await using var client = cluster.Client();

        var outcome = await client.CreateTransferAsync(Payment, cancellationToken: Cancel);

        // The first attempt's fate was unknown; the retry found the transfer already there.
        Assert.True(outcome.IsCreatedOrExists);
        Assert.Equal(CreateTransferResult.Exists, outcome.Status);
        Assert.Equal(4, client.Statistics.CreateRequests);
        Assert.Equal(3, client.Statistics.CreateRetries);
        Assert.All(cluster.Nodes.SelectMany(node => node.TransferRequests), request => Assert.Equal(Payment, Assert.Single(request)));
    }

    [Fact]
    public async Task A_retry_resends_the_events_as_given_even_if_the_caller_reused_its_buffer()
    {
        var cluster = new FakeCluster(1, _ => 1);
        var gate = new TaskCompletionSource();
        var attempts = 0;
        foreach (var node in cluster.Nodes)
        {
            node.OnTransfers = async events =>
            {
                if (Interlocked.Increment(ref attempts) == 1)
                {
                    await gate.Task;
                    throw new RpcException(new Status(StatusCode.DeadlineExceeded, "outcome unknown"));
                }

                return FakeNode.Created(events.Length);
            };
        }

        await using var client = cluster.Client();
        await client.ConnectAsync(Cancel);
        var buffer = new[] { Payment };
        var call = client.CreateTransfersAsync(buffer, cancellationToken: Cancel);
        buffer[0] = Payment with { Id = 999, Amount = 1_000_000 };
        gate.SetResult();
        var reply = await call;

        Assert.True(reply[0].IsCreated);
        var sent = cluster.Nodes.SelectMany(node => node.TransferRequests).ToList();
        Assert.Equal(2, sent.Count);
        Assert.All(sent, request => Assert.Equal(Payment, Assert.Single(request)));
    }

    [Fact]
    public async Task At_the_deadline_an_event_whose_attempts_timed_out_is_unknown()
    {
        var cluster = new FakeCluster(1, _ => 1);
        foreach (var node in cluster.Nodes)
        {
            node.OnTransfers = _ => Task.FromException<EventAnswer[]>(new RpcException(new Status(StatusCode.DeadlineExceeded, "outcome unknown")));
        }

        await using var client = cluster.Client();
        await client.ConnectAsync(Cancel);

        var reply = await client.CreateTransfersAsync(new[] { Payment }, timeout: TimeSpan.FromSeconds(1), cancellationToken: Cancel);

        Assert.False(reply.IsDefinite);
        Assert.Equal(EventOutcome.Unknown, reply[0].Outcome);
        Assert.Null(reply[0].Status);
        Assert.Contains("DeadlineExceeded", reply[0].Problem, StringComparison.Ordinal);
        Assert.Equal(1, client.Statistics.EventsWithoutAnswer);
    }

    [Fact]
    public async Task At_the_deadline_an_event_only_ever_refused_was_not_applied()
    {
        var cluster = new FakeCluster(1, _ => 1);
        foreach (var node in cluster.Nodes)
        {
            node.OnTransfers = _ => Task.FromException<EventAnswer[]>(FakeNode.Unavailable(fromNode: true));
        }

        await using var client = cluster.Client();
        await client.ConnectAsync(Cancel);
        var outcome = await client.CreateTransferAsync(Payment, timeout: TimeSpan.FromSeconds(1), cancellationToken: Cancel);

        Assert.Equal(EventOutcome.NotApplied, outcome.Outcome);
        Assert.False(outcome.IsCreatedOrExists);
        Assert.True(client.Statistics.CreateRequests >= 2);
    }

    [Fact]
    public async Task A_malformed_request_fails_at_once_without_retries()
    {
        var cluster = new FakeCluster(1, _ => 1);
        cluster.Node(1).OnTransfers = _ => Task.FromException<EventAnswer[]>(new RpcException(new Status(StatusCode.InvalidArgument, "$.transfers[0].code: too large")));
        await using var client = cluster.Client();

        var error = await Assert.ThrowsAsync<LedgerRequestException>(() => client.CreateTransferAsync(Payment, cancellationToken: Cancel));

        Assert.Contains("too large", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, client.Statistics.CreateRequests);
    }

    [Fact]
    public async Task A_failed_leader_is_avoided_the_map_is_reread_and_another_node_answers()
    {
        var cluster = new FakeCluster(1, _ => 2);
        cluster.Node(2).OnTransfers = _ => Task.FromException<EventAnswer[]>(FakeNode.Unavailable(fromNode: false));
        await using var client = cluster.Client(options => options with { Addresses = [.. cluster.Nodes.Select(n => n.Address)] });
        await client.ConnectAsync(Cancel);
        var readsBefore = client.Statistics.ClusterMapRefreshes;
        cluster.Time.Advance(TimeSpan.FromSeconds(1)); // past the gap between map reads

        var outcome = await client.CreateTransferAsync(Payment, cancellationToken: Cancel);

        Assert.True(outcome.IsCreated);
        Assert.Equal("http://node2/", cluster.Log[0].Node.ToString());
        Assert.NotEqual("http://node2/", cluster.Log[^1].Node.ToString());
        Assert.True(client.Statistics.ClusterMapRefreshes > readsBefore);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_leader_that_answered_outcome_unknown_is_retried_but_one_that_timed_out_is_avoided(bool nodeAnswered)
    {
        var cluster = new FakeCluster(1, _ => 2);
        var failures = 1;
        var headers = nodeAnswered ? new Metadata { { RetryPolicy.OutcomeUnknownTrailer, "1" } } : [];
        foreach (var node in cluster.Nodes)
        {
            node.OnTransfers = events => Interlocked.Decrement(ref failures) >= 0
                ? Task.FromException<EventAnswer[]>(new RpcException(new Status(StatusCode.DeadlineExceeded, "outcome unknown"), headers))
                : Task.FromResult(FakeNode.Created(events.Length));
        }

        await using var client = cluster.Client(options => options with { Addresses = [.. cluster.Nodes.Select(n => n.Address)] });
        await client.ConnectAsync(Cancel);

        var outcome = await client.CreateTransferAsync(Payment, cancellationToken: Cancel);

        // A live node's own 504 says nothing about the node: the retry goes to the same leader. A deadline the
        // client's timer raised may be a dead node: the retry goes elsewhere.
        Assert.True(outcome.IsCreated);
        Assert.Equal(2, cluster.Log.Count);
        Assert.Equal("http://node2/", cluster.Log[0].Node.ToString());
        Assert.Equal(nodeAnswered, cluster.Log[1].Node.ToString() == "http://node2/");
    }

    [Fact]
    public async Task A_client_given_one_address_reaches_the_other_members_when_that_node_fails()
    {
        var cluster = new FakeCluster(1, _ => 0); // no leader known: any node will do
        cluster.Node(1).OnTransfers = _ => Task.FromException<EventAnswer[]>(FakeNode.Unavailable(fromNode: false));
        await using var client = cluster.Client(); // only node1's address is configured
        await client.ConnectAsync(Cancel);

        var outcome = await client.CreateTransferAsync(Payment, timeout: TimeSpan.FromSeconds(10), cancellationToken: Cancel);

        Assert.True(outcome.IsCreated, $"{outcome.Outcome} {outcome.Problem}");
        Assert.NotEqual("http://node1/", cluster.Log[^1].Node.ToString());
    }

    [Fact]
    public async Task A_new_leader_in_a_reread_map_gets_the_shards_requests()
    {
        var cluster = new FakeCluster(1, _ => 1);
        await using var client = cluster.Client(options => options with { Addresses = [.. cluster.Nodes.Select(n => n.Address)] });
        Assert.True((await client.CreateTransferAsync(Payment, cancellationToken: Cancel)).IsCreated);

        cluster.Map = cluster.Map with { Shards = [new ClusterShard(0, [1, 2, 3], Leader: 3, Term: 2, 0, 0)] };
        var map = await client.RefreshClusterMapAsync(Cancel);
        Assert.True((await client.CreateTransferAsync(Payment with { Id = 78 }, cancellationToken: Cancel)).IsCreated);

        Assert.Equal(3UL, map.LeaderOf(0));
        Assert.Equal(["http://node1/", "http://node3/"], cluster.Log.Select(entry => entry.Node.ToString()));
        Assert.Equal(2, client.Statistics.RequestsToLeader);
    }

    [Fact]
    public void Merged_map_takes_each_shards_leader_from_the_highest_term()
    {
        var nodes = new List<ClusterNode>();
        var stale = new ClusterMap(nodes, [new ClusterShard(0, [1, 2, 3], 1, 5, 0, 0), new ClusterShard(1, [1, 2, 3], 0, 7, 0, 0)]);
        var fresh = new ClusterMap(nodes, [new ClusterShard(0, [1, 2, 3], 2, 6, 0, 0), new ClusterShard(1, [1, 2, 3], 3, 7, 0, 0)]);

        var merged = MapMerge.Merge([stale, fresh]);

        Assert.Equal(2UL, merged.LeaderOf(0));
        Assert.Equal(3UL, merged.LeaderOf(1));
    }

    [Fact]
    public void Limits_relate_a_full_batch_fits_in_one_message()
    {
        Assert.True((long)ClientLimits.BatchEventsMax * ClientLimits.EventWireBytesMax < ClientLimits.MessageBytesMax);
        Assert.True(ClientLimits.ClusterMapRefreshGapMin < ClientLimits.NodeAvoidDuration);
        Assert.Equal(LedgerLimits.LookupIdsMax, ClientLimits.LookupIdsMax);
    }

    [Fact]
    public void Every_status_name_of_the_ledger_parses_to_its_enum_value()
    {
        foreach (var value in Enum.GetValues<CreateTransferResult>())
        {
            var name = StatusNames<CreateTransferResult>.SnakeCase(value.ToString());
            Assert.True(StatusNames<CreateTransferResult>.TryParse(name, out var parsed, out _));
            Assert.Equal(value, parsed);
        }

        Assert.True(StatusNames<CreateAccountResult>.TryParse("exists_with_different_user_data_128", out var account, out _));
        Assert.Equal(CreateAccountResult.ExistsWithDifferentUserData128, account);
        Assert.True(StatusNames<CreateTransferResult>.TryParse("pending_transfer_has_different_credit_account_id", out var pending, out _));
        Assert.Equal(CreateTransferResult.PendingTransferHasDifferentCreditAccountId, pending);
        // A status a newer server may add is kept by name rather than refused.
        Assert.False(StatusNames<CreateTransferResult>.TryParse("some_future_status", out _, out var raw));
        Assert.Equal("some_future_status", raw);
    }

    [Fact]
    public void Options_parse_ids_and_addresses_and_refuse_nonsense()
    {
        var options = LedgerClientOptions.Parse("1=127.0.0.1:9101, 2=http://127.0.0.1:9102,127.0.0.1:9103");
        Assert.Equal(3, options.Addresses.Count);
        Assert.Equal(new Uri("http://127.0.0.1:9102"), options.NodeAddresses[2]);
        Assert.False(options.NodeAddresses.ContainsKey(3));
        Assert.Throws<FormatException>(() => LedgerClientOptions.Parse("x=127.0.0.1:1"));
        Assert.Throws<ArgumentException>(() => new LedgerClient(options with { Addresses = [] }));
        Assert.Throws<ArgumentException>(() => new LedgerClient(options with { RetryBackoffMax = TimeSpan.FromTicks(1) }));
    }
}
