using RaftLedger.Client;
using RaftLedger.Ledger;

namespace RaftLedger.Client.Tests.Cluster;

/// <summary>
/// The client against a real 3-node, 4-shard cluster: batching visible in the request counter,
/// a leader SIGKILLed under a stream of calls (no call fails, nothing applied twice), and a map
/// whose leader died being replaced. Every wait is bounded; the tests share one cluster.
/// </summary>
public sealed class ClientClusterTests(ClusterFixture fixture) : IClassFixture<ClusterFixture>
{
    private const int TestTimeoutMilliseconds = 150_000;
    private static readonly TimeSpan ElectionWaitMax = TimeSpan.FromSeconds(30);

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Concurrent_calls_are_coalesced_into_far_fewer_requests()
    {
        await using var client = new LedgerClient(fixture.Options);
        var pairs = ClusterFixture.NewAccountPairs(seed: 1);
        await CreateAccountsAsync(client, pairs);
        var before = client.Statistics;

        const int calls = 1000;
        var transfers = Enumerable.Range(0, calls).Select(i => ClusterFixture.Payment(pairs[i % pairs.Length])).ToArray();
        var outcomes = await Task.WhenAll(transfers.Select(t => client.CreateTransferAsync(t, cancellationToken: Cancel)));

        var after = client.Statistics;
        fixture.Log($"{calls} concurrent calls: {after.CreateRequests - before.CreateRequests} requests");
        Assert.All(outcomes, outcome => Assert.True(outcome.IsCreated, $"{outcome.StatusName} {outcome.Outcome} {outcome.Problem}. {fixture.LogHint}"));
        Assert.Equal(calls, after.CreateCalls - before.CreateCalls);
        var requests = after.CreateRequests - before.CreateRequests;
        var shardCount = client.ClusterMap!.ShardCount;
        var leaderNodes = Enumerable.Range(0, shardCount).Select(client.ClusterMap.LeaderOf).Distinct().Count();
        fixture.Log($"{shardCount} shards led by {leaderNodes} nodes; {after.CreateRequestEvents - before.CreateRequestEvents} events sent");
        // Per node, the first call leaves at once and the rest ride the next request: about two
        // requests per leading node. Batching per shard would need at least two per shard, more.
        Assert.True(requests < 2 * shardCount, $"{calls} concurrent calls took {requests} requests; batching per node ({leaderNodes} leading nodes) should need about {2 * leaderNodes}, fewer than the {2 * shardCount} of batching per shard.");
        await AssertAppliedOnceAsync(client, pairs, transfers);
    }

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Calls_keep_succeeding_while_a_leader_is_killed_and_nothing_is_applied_twice()
    {
        await fixture.EnsureAllRunningAsync();
        await using var client = new LedgerClient(fixture.Options);
        var pairs = ClusterFixture.NewAccountPairs(seed: 2);
        await CreateAccountsAsync(client, pairs);
        var leader = await LeaderAsync(client, shard: 0, notOn: 0);

        var stream = new PaymentStream(client, pairs, workers: 16);
        var running = stream.RunAsync();
        await stream.Completed(100).WaitAsync(ElectionWaitMax, Cancel);
        fixture.Log($"100 calls done; killing node {leader}, leader of shard 0");
        await fixture.Cluster.KillAsync(leader);
        // Keep the stream going until 300 more calls have completed after the kill.
        stream.StopAfter(300);
        await running.WaitAsync(TimeSpan.FromSeconds(120), Cancel);
        fixture.Log($"stream done: {stream.Outcomes.Count} calls, statistics {client.Statistics}");

        var failed = stream.Outcomes.Where(o => !o.Outcome.IsCreatedOrExists).ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} calls did not succeed, e.g. {failed.FirstOrDefault().Outcome}. {fixture.LogHint}");
        Assert.True(stream.Outcomes.Count >= 400);
        await AssertAppliedOnceAsync(client, pairs, [.. stream.Outcomes.Select(o => o.Transfer)]);
    }

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task A_dead_leader_in_the_map_is_replaced_and_requests_then_go_to_the_new_leader()
    {
        await fixture.EnsureAllRunningAsync();
        await using var client = new LedgerClient(fixture.Options);
        var pairs = ClusterFixture.NewAccountPairs(seed: 3);
        await CreateAccountsAsync(client, pairs);
        var leader = await LeaderAsync(client, shard: 1, notOn: 0);
        fixture.Log($"killing node {leader}, leader of shard 1");
        await fixture.Cluster.KillAsync(leader);
        var before = client.Statistics;

        // The map still names the dead node: the first attempt fails, the client re-reads the map,
        // avoids the node and the retry is answered.
        var outcome = await client.CreateTransferAsync(ClusterFixture.Payment(pairs[1]), cancellationToken: Cancel);
        Assert.True(outcome.IsCreated, $"{outcome.StatusName} {outcome.Outcome} {outcome.Problem}. {fixture.LogHint}");
        var afterFailure = client.Statistics;
        Assert.True(afterFailure.CreateRetries > before.CreateRetries);
        Assert.True(afterFailure.ClusterMapRefreshes > before.ClusterMapRefreshes);

        // Without being asked, the client learns the new leader and sends to it directly.
        var newLeader = await LeaderAsync(client, shard: 1, notOn: leader);
        fixture.Log($"client's map names node {newLeader} as the new leader of shard 1");
        var direct = await client.CreateTransferAsync(ClusterFixture.Payment(pairs[1]), cancellationToken: Cancel);
        var last = client.Statistics;
        Assert.True(direct.IsCreated);
        Assert.Equal(1, last.CreateRequests - afterFailure.CreateRequests);
        Assert.Equal(1, last.RequestsToLeader - afterFailure.RequestsToLeader);
        Assert.NotEqual(leader, newLeader);
    }

    private async Task CreateAccountsAsync(LedgerClient client, (UInt128 Debit, UInt128 Credit)[] pairs)
    {
        var reply = await client.CreateAccountsAsync(ClusterFixture.AccountsOf(pairs), cancellationToken: Cancel);
        Assert.True(reply.Outcomes.All(o => o.IsCreatedOrExists), $"accounts: {string.Join(", ", reply.Outcomes.Select(o => o.StatusName + o.Problem))}. {fixture.LogHint}");
    }

    /// <summary>
    /// The leader of <paramref name="shard"/> in the client's own map (refreshed in the background),
    /// once it names one other than <paramref name="notOn"/>; waits at most <see cref="ElectionWaitMax"/>.
    /// </summary>
    private async Task<ulong> LeaderAsync(LedgerClient client, int shard, ulong notOn)
    {
        await client.ConnectAsync(Cancel);
        var deadline = DateTime.UtcNow + ElectionWaitMax;
        while (true)
        {
            var leader = client.ClusterMap!.LeaderOf(shard);
            if (leader != 0 && leader != notOn && fixture.Cluster.IsRunning(leader))
            {
                return leader;
            }

            Assert.True(DateTime.UtcNow < deadline, $"shard {shard} has no leader other than {notOn} after {ElectionWaitMax.TotalSeconds} s. {fixture.LogHint}");
            await Task.Delay(TimeSpan.FromMilliseconds(100), Cancel);
        }
    }

    /// <summary>Every created id is found exactly once, and each account moved exactly its transfers' amounts.</summary>
    private async Task AssertAppliedOnceAsync(LedgerClient client, (UInt128 Debit, UInt128 Credit)[] pairs, Transfer[] created)
    {
        var found = new List<Transfer>();
        foreach (var chunk in created.Select(t => t.Id).Chunk(8189))
        {
            found.AddRange(await client.LookupTransfersAsync(chunk, cancellationToken: Cancel));
        }

        Assert.Equal(created.Length, found.Count);
        Assert.Equal(created.Select(t => t.Id).Order(), found.Select(t => t.Id).Order());
        var accounts = await client.LookupAccountsAsync(pairs.SelectMany(p => new[] { p.Debit, p.Credit }).ToArray(), cancellationToken: Cancel);
        foreach (var account in accounts)
        {
            var debits = created.Where(t => t.DebitAccountId == account.Id).Aggregate(UInt128.Zero, (sum, t) => sum + t.Amount);
            var credits = created.Where(t => t.CreditAccountId == account.Id).Aggregate(UInt128.Zero, (sum, t) => sum + t.Amount);
            Assert.Equal(debits, account.DebitsPosted);
            Assert.Equal(credits, account.CreditsPosted);
        }
    }

    /// <summary>Workers that each make one payment at a time until told to stop (bounded by a call cap).</summary>
    private sealed class PaymentStream(LedgerClient client, (UInt128 Debit, UInt128 Credit)[] pairs, int workers)
    {
        private const long CallsMax = 20_000;
        private readonly List<(long Count, TaskCompletionSource Reached)> milestones = [];
        private readonly Lock gate = new();
        private long completed;
        private long stopAt = CallsMax;

        public List<(Transfer Transfer, TransferOutcome Outcome)> Outcomes { get; } = [];

        /// <summary>Completes once <paramref name="count"/> calls have returned.</summary>
        public Task Completed(long count)
        {
            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (gate)
            {
                if (completed >= count)
                {
                    reached.SetResult();
                }
                else
                {
                    milestones.Add((count, reached));
                }
            }

            return reached.Task;
        }

        public void StopAfter(long more)
        {
            lock (gate)
            {
                stopAt = Math.Min(CallsMax, completed + more);
            }
        }

        public Task RunAsync() => Task.WhenAll(Enumerable.Range(0, workers).Select(WorkAsync));

        private async Task WorkAsync(int worker)
        {
            var pair = pairs[worker % pairs.Length];
            while (true)
            {
                lock (gate)
                {
                    if (completed >= stopAt)
                    {
                        return;
                    }
                }

                var transfer = ClusterFixture.Payment(pair);
                var outcome = await client.CreateTransferAsync(transfer, cancellationToken: TestContext.Current.CancellationToken);
                lock (gate)
                {
                    Outcomes.Add((transfer, outcome));
                    completed++;
                    foreach (var milestone in milestones.Where(m => completed >= m.Count).ToList())
                    {
                        milestone.Reached.SetResult();
                        milestones.Remove(milestone);
                    }
                }
            }
        }
    }
}
