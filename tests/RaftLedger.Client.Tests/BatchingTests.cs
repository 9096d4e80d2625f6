using RaftLedger.Client;
using RaftLedger.Client.Internal;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Client.Tests;

/// <summary>Automatic batching with fake nodes: requests held open on a gate, no timing.</summary>
public sealed class BatchingTests
{
    private const int ShardCount = 4;

    private static Transfer TransferOnShard(int shard, ulong seed, TransferFlags flags = TransferFlags.None)
    {
        var random = new Random((int)seed);
        UInt128 id;
        do
        {
            id = UlidBits.Next128(random);
        }
        while (ShardRouter.ShardOf(id, ShardCount) != shard);
        return new Transfer { Id = id, DebitAccountId = 1, CreditAccountId = 2, Amount = 1, Ledger = 1, Code = 1, Flags = flags };
    }

    private static Transfer[] Many(int shard, int count, ulong seed) =>
        Enumerable.Range(0, count).Select(i => TransferOnShard(shard, seed + (ulong)i)).ToArray();

    [Fact]
    public async Task Calls_for_any_shards_of_a_busy_node_leave_together_in_its_next_request()
    {
        var cluster = new FakeCluster(ShardCount, _ => 1);
        var gate = new TaskCompletionSource();
        var first = true;
        cluster.Node(1).OnTransfers = async events =>
        {
            if (first)
            {
                first = false;
                await gate.Task;
            }

            return FakeNode.Created(events.Length);
        };
        await using var client = cluster.Client();
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var calls = new List<Task<TransferOutcome>>();
        for (var i = 0; i < 50; i++)
        {
            calls.Add(client.CreateTransferAsync(TransferOnShard(i % ShardCount, (ulong)i), cancellationToken: TestContext.Current.CancellationToken));
        }

        // The first call went out at once (idle node: no added latency); the other 49, of all four
        // shards that node 1 leads, wait and share one request.
        Assert.Equal([1], cluster.Log.Select(entry => entry.Events));
        gate.SetResult();
        var outcomes = await Task.WhenAll(calls);

        Assert.All(outcomes, outcome => Assert.True(outcome.IsCreated));
        Assert.Equal([1, 49], cluster.Log.Select(entry => entry.Events));
        Assert.Equal(2, client.Statistics.CreateRequests);
        Assert.Equal(50, client.Statistics.CreateRequestEvents);
        Assert.Equal(50, client.Statistics.CreateCalls);
        Assert.Equal(Enumerable.Range(0, ShardCount), cluster.Node(1).TransferRequests[1].Select(t => ShardRouter.ShardOf(t.Id, ShardCount)).Distinct().Order());
    }

    [Fact]
    public async Task A_request_never_carries_more_than_8189_events()
    {
        var cluster = new FakeCluster(ShardCount, _ => 1);
        var gate = new TaskCompletionSource();
        cluster.Node(1).OnTransfers = async events =>
        {
            await gate.Task;
            return FakeNode.Created(events.Length);
        };
        await using var client = cluster.Client();
        await client.ConnectAsync(TestContext.Current.CancellationToken);

        var calls = Enumerable.Range(0, 4).Select(i => client.CreateTransfersAsync(Many(i, 3000, (ulong)i * 10_000), cancellationToken: TestContext.Current.CancellationToken)).ToList();
        gate.SetResult();
        var replies = await Task.WhenAll(calls);

        Assert.All(replies, reply => Assert.True(reply.IsDefinite && reply.Outcomes.All(o => o.IsCreated)));
        Assert.Equal([3000, 6000, 3000], cluster.Log.Select(entry => entry.Events));
        Assert.True(ClientLimits.BatchEventsMax == LedgerLimits.BatchEventsMax);
    }

    [Fact]
    public async Task A_call_that_ends_inside_a_linked_chain_ends_its_request()
    {
        var cluster = new FakeCluster(ShardCount, _ => 1);
        var gate = new TaskCompletionSource();
        cluster.Node(1).OnTransfers = async events =>
        {
            await gate.Task;
            return FakeNode.Created(events.Length);
        };
        await using var client = cluster.Client();
        await client.ConnectAsync(TestContext.Current.CancellationToken);
        var cancel = TestContext.Current.CancellationToken;

        // Node 1 leads every shard: the three calls, on three shards, share its queue.
        var inFlight = client.CreateTransferAsync(TransferOnShard(1, 1), cancellationToken: cancel);
        var open = client.CreateTransfersAsync(new[] { TransferOnShard(2, 2, TransferFlags.Linked), TransferOnShard(3, 3, TransferFlags.Linked) }, cancellationToken: cancel);
        var after = client.CreateTransferAsync(TransferOnShard(3, 4), cancellationToken: cancel);
        gate.SetResult();
        await Task.WhenAll(inFlight, open, after);

        // The open chain stays whole (both events on shard 2's part) and its request must not carry
        // the next call's event, although that one is for the same node (it would join the chain).
        Assert.Equal([1, 2, 1], cluster.Log.Select(entry => entry.Events));
    }

    [Fact]
    public void Events_split_by_shard_in_order_and_linked_chains_stay_on_their_first_events_shard()
    {
        var events = new[]
        {
            TransferOnShard(0, 1),
            TransferOnShard(1, 2, TransferFlags.Linked),
            TransferOnShard(3, 3), // chain member: follows event 1 to shard 1
            TransferOnShard(0, 4),
            TransferOnShard(3, 5),
        };

        var parts = ShardSplit.Split<Transfer>(events, ShardCount, TransferKind.Instance);

        Assert.Equal([0, 1, 3], parts.Select(p => p.Shard));
        Assert.Equal([0, 3], parts[0].Indexes);
        Assert.Equal([1, 2], parts[1].Indexes);
        Assert.Equal([4], parts[2].Indexes);
    }

    [Fact]
    public async Task Each_shards_events_go_to_that_shards_leader_and_results_return_in_call_order()
    {
        // Shard s is led by node s % 3 + 1.
        var cluster = new FakeCluster(ShardCount, shard => (ulong)(shard % 3) + 1);
        foreach (var node in cluster.Nodes)
        {
            var status = $"from_{node.Address.Host}";
            node.OnTransfers = events => Task.FromResult(events.Select(_ => new EventAnswer(status, 0)).ToArray());
        }

        await using var client = cluster.Client();
        var events = Enumerable.Range(0, 12).Select(i => TransferOnShard(i % ShardCount, (ulong)i)).ToArray();
        var reply = await client.CreateTransfersAsync(events, cancellationToken: TestContext.Current.CancellationToken);

        for (var i = 0; i < events.Length; i++)
        {
            Assert.Equal($"from_node{((i % ShardCount) % 3) + 1}", reply[i].StatusName);
            Assert.Null(reply[i].Status); // a status name this client does not know stays visible by name
        }

        // One request per node: node 1 leads shards 0 and 3 and gets both shards' events in one request.
        Assert.Equal(3, client.Statistics.CreateRequests);
        Assert.Equal(3, client.Statistics.RequestsToLeader);
        Assert.Equal([0, 3], cluster.Node(1).TransferRequests.Single().Select(t => ShardRouter.ShardOf(t.Id, ShardCount)).Distinct().Order());
    }

    [Fact]
    public async Task Nodes_send_independently_so_a_busy_node_does_not_delay_another()
    {
        var cluster = new FakeCluster(ShardCount, shard => shard == 0 ? 1UL : 2UL);
        var gate = new TaskCompletionSource();
        cluster.Node(1).OnTransfers = async events =>
        {
            await gate.Task;
            return FakeNode.Created(events.Length);
        };
        await using var client = cluster.Client();
        var cancel = TestContext.Current.CancellationToken;

        var stuck = client.CreateTransferAsync(TransferOnShard(0, 1), cancellationToken: cancel);
        var other = await client.CreateTransferAsync(TransferOnShard(2, 2), cancellationToken: cancel);

        Assert.True(other.IsCreated);
        Assert.False(stuck.IsCompleted);
        gate.SetResult();
        Assert.True((await stuck).IsCreated);
    }

    [Fact]
    public async Task A_node_gets_at_most_its_in_flight_limit_of_requests_and_the_rest_wait()
    {
        var cluster = new FakeCluster(ShardCount, _ => 1);
        var gate = new TaskCompletionSource();
        cluster.Node(1).OnTransfers = async events =>
        {
            await gate.Task;
            return FakeNode.Created(events.Length);
        };
        await using var client = cluster.Client(options => options with { RequestsInFlightPerNodeMax = 2 });
        await client.ConnectAsync(TestContext.Current.CancellationToken);
        var cancel = TestContext.Current.CancellationToken;

        var calls = Enumerable.Range(0, 5).Select(i => client.CreateTransferAsync(TransferOnShard(i % ShardCount, (ulong)i), cancellationToken: cancel)).ToList();

        // Two requests in flight, the other three calls wait for a free slot.
        Assert.Equal([1, 1], cluster.Log.Select(entry => entry.Events));
        gate.SetResult();
        Assert.All(await Task.WhenAll(calls), outcome => Assert.True(outcome.IsCreated));
        Assert.Equal(5, cluster.Log.Sum(entry => entry.Events));
        Assert.Equal(3, cluster.Log.Count);
    }

    [Fact]
    public async Task A_call_ending_in_an_open_chain_puts_that_part_last_so_its_other_parts_share_the_request()
    {
        var cluster = new FakeCluster(ShardCount, _ => 1);
        await using var client = cluster.Client();
        var cancel = TestContext.Current.CancellationToken;
        var first = TransferOnShard(2, 1);
        var open = TransferOnShard(1, 2, TransferFlags.Linked);

        await client.CreateTransfersAsync(new[] { first, open }, cancellationToken: cancel);

        // Shard 1's part sorts first by shard but ends an open chain: it must be the request's last
        // event, or the node would see shard 2's transfer join the chain.
        Assert.Equal([first.Id, open.Id], cluster.Node(1).TransferRequests.Single().Select(t => t.Id));
    }

    [Fact]
    public async Task A_retry_routes_each_part_to_its_shards_current_leader()
    {
        var cluster = new FakeCluster(ShardCount, _ => 1);
        var failed = 0;
        cluster.Node(1).OnTransfers = events =>
        {
            if (Interlocked.Exchange(ref failed, 1) == 0)
            {
                // Shard 1 moved to node 2 while node 1 had the request: node 1 refuses the whole request.
                cluster.Map = cluster.Map with { Shards = [.. cluster.Map.Shards.Select(s => s.Id == 1 ? s with { Leader = 2, Term = 2 } : s)] };
                return Task.FromException<EventAnswer[]>(FakeNode.Unavailable(fromNode: true));
            }

            return Task.FromResult(FakeNode.Created(events.Length));
        };
        await using var client = cluster.Client(options => options with { Addresses = [.. cluster.Nodes.Select(n => n.Address)] });
        await client.ConnectAsync(TestContext.Current.CancellationToken);
        cluster.Time.Advance(TimeSpan.FromSeconds(1)); // past the gap between map reads
        var events = new[] { TransferOnShard(0, 1), TransferOnShard(1, 2) };

        var reply = await client.CreateTransfersAsync(events, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(reply.IsDefinite && reply.Outcomes.All(o => o.IsCreated));
        Assert.Equal([events[0].Id, events[1].Id], cluster.Node(1).TransferRequests[0].Select(t => t.Id));
        Assert.Equal(events[0].Id, Assert.Single(cluster.Node(1).TransferRequests[1]).Id);
        Assert.Equal(events[1].Id, Assert.Single(Assert.Single(cluster.Node(2).TransferRequests)).Id);
        Assert.Equal(2, client.Statistics.CreateRetries);
    }

    [Fact]
    public async Task Parts_waiting_for_a_node_that_lost_the_shard_go_to_the_new_leader()
    {
        var cluster = new FakeCluster(ShardCount, _ => 1);
        var gate = new TaskCompletionSource();
        cluster.Node(1).OnTransfers = async events =>
        {
            await gate.Task;
            return FakeNode.Created(events.Length);
        };
        await using var client = cluster.Client(options => options with { Addresses = [.. cluster.Nodes.Select(n => n.Address)] });
        var cancel = TestContext.Current.CancellationToken;
        await client.ConnectAsync(cancel);
        var inFlight = client.CreateTransferAsync(TransferOnShard(0, 1), cancellationToken: cancel);
        var waitingSame = client.CreateTransferAsync(TransferOnShard(0, 2), cancellationToken: cancel);
        var waitingMoved = client.CreateTransferAsync(TransferOnShard(3, 3), cancellationToken: cancel);

        cluster.Map = cluster.Map with { Shards = [.. cluster.Map.Shards.Select(s => s.Id == 3 ? s with { Leader = 3, Term = 2 } : s)] };
        await client.RefreshClusterMapAsync(cancel);
        gate.SetResult();
        await Task.WhenAll(inFlight, waitingSame, waitingMoved);

        Assert.Equal([1, 1], cluster.Node(1).TransferRequests.Select(r => r.Length));
        Assert.Equal(3, ShardRouter.ShardOf(Assert.Single(Assert.Single(cluster.Node(3).TransferRequests)).Id, ShardCount));
        Assert.Equal(3, client.Statistics.RequestsToLeader);
    }

    [Fact]
    public async Task Events_of_a_leaderless_shard_do_not_hold_up_a_nodes_own_shards()
    {
        // Shard 0 has no leader and node 1 is the only node known, so it is also shard 0's fallback.
        var cluster = new FakeCluster(ShardCount, shard => shard == 0 ? 0UL : 1UL);
        cluster.Map = cluster.Map with { Nodes = [cluster.Map.Nodes[0]] };
        var electing = new TaskCompletionSource();
        cluster.Node(1).OnTransfers = async events =>
        {
            if (events.Any(t => ShardRouter.ShardOf(t.Id, ShardCount) == 0))
            {
                await electing.Task; // a node holds a leaderless shard's events until it has a leader
            }

            return FakeNode.Created(events.Length);
        };
        await using var client = cluster.Client();
        var cancel = TestContext.Current.CancellationToken;
        await client.ConnectAsync(cancel);

        var held = client.CreateTransferAsync(TransferOnShard(0, 1), cancellationToken: cancel);
        var led = await client.CreateTransferAsync(TransferOnShard(1, 2), cancellationToken: cancel);

        Assert.True(led.IsCreated);
        Assert.False(held.IsCompleted);
        electing.SetResult();
        Assert.True((await held).IsCreated);
        Assert.Equal(1, client.Statistics.RequestsToLeader);
    }
}
