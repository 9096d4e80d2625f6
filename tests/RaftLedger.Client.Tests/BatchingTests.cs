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
    public async Task Calls_made_while_a_request_is_in_flight_leave_together_in_the_next_request()
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
            calls.Add(client.CreateTransferAsync(TransferOnShard(2, (ulong)i), cancellationToken: TestContext.Current.CancellationToken));
        }

        // The first call went out at once (idle shard: no added latency); the other 49 wait.
        Assert.Equal([1], cluster.Log.Select(entry => entry.Events));
        gate.SetResult();
        var outcomes = await Task.WhenAll(calls);

        Assert.All(outcomes, outcome => Assert.True(outcome.IsCreated));
        Assert.Equal([1, 49], cluster.Log.Select(entry => entry.Events));
        Assert.Equal(2, client.Statistics.CreateRequests);
        Assert.Equal(50, client.Statistics.CreateCalls);
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

        var calls = Enumerable.Range(0, 4).Select(i => client.CreateTransfersAsync(Many(0, 3000, (ulong)i * 10_000), cancellationToken: TestContext.Current.CancellationToken)).ToList();
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

        var inFlight = client.CreateTransferAsync(TransferOnShard(1, 1), cancellationToken: cancel);
        var open = client.CreateTransfersAsync(new[] { TransferOnShard(1, 2, TransferFlags.Linked), TransferOnShard(1, 3, TransferFlags.Linked) }, cancellationToken: cancel);
        var after = client.CreateTransferAsync(TransferOnShard(1, 4), cancellationToken: cancel);
        gate.SetResult();
        await Task.WhenAll(inFlight, open, after);

        // The open chain's request must not carry the next call's event (it would join the chain).
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

        Assert.Equal(ShardCount, client.Statistics.CreateRequests);
        Assert.Equal(ShardCount, client.Statistics.RequestsToLeader);
    }

    [Fact]
    public async Task Shards_send_independently_so_a_busy_shard_does_not_delay_another()
    {
        var cluster = new FakeCluster(ShardCount, _ => 1);
        var gate = new TaskCompletionSource();
        cluster.Node(1).OnTransfers = async events =>
        {
            if (ShardRouter.ShardOf(events[0].Id, ShardCount) == 0)
            {
                await gate.Task;
            }

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
}
