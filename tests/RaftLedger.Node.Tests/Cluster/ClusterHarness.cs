using RaftLedger.Cli.Client;
using RaftLedger.Cli.Demo;
using RaftLedger.Cli.Processes;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Tests.Cluster;

/// <summary>
/// Real <c>raftledger node</c> processes on loopback (free ports) in a temporary folder, for one
/// test. It kills exactly the processes it started and deletes the folder when disposed, also after a failure (the
/// harness cannot tell); set RAFTLEDGER_KEEP_TEST_DATA=1 to keep it for the node logs, whose path failing assertions print.
/// </summary>
internal sealed class ClusterHarness : IAsyncDisposable
{
    public const int ShardCount = 4;
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    public static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(60);
    private readonly string dataRoot = Path.Combine(Path.GetTempPath(), $"raftledger-test-{Guid.NewGuid():N}");

    private ClusterHarness(int shardCount)
    {
        Shards = shardCount;
        Cluster = LocalCluster.Create(new LocalClusterOptions { DataRoot = dataRoot, NodeCount = 3, ShardCount = shardCount });
        Probe = new ClusterProbe(Client);
    }

    /// <summary>The cluster's shard count: <see cref="ShardCount"/> unless the test asked for another.</summary>
    public int Shards { get; }

    public LocalCluster Cluster { get; }

    public LedgerHttpClient Client { get; } = new(TimeSpan.FromSeconds(15));

    public ClusterProbe Probe { get; }

    public IReadOnlyList<(ulong Id, Uri Url)> Nodes => Cluster.Nodes.Select(n => (n.Id, n.ApiUrl)).ToList();

    public Uri Api(ulong id) => Cluster.Node(id).ApiUrl;

    public static Task<ClusterHarness> StartAsync() => StartAsync(ShardCount);

    public static async Task<ClusterHarness> StartAsync(int shardCount)
    {
        var harness = new ClusterHarness(shardCount);
        harness.Cluster.StartAll();
        await harness.Cluster.WaitAllReadyAsync(ReadyTimeout, TestContext.Current.CancellationToken);
        return harness;
    }

    /// <summary>Accounts by shard: one bank and a few customers on each.</summary>
    public static DemoAccounts Accounts(int seed) => Accounts(seed, ShardCount);

    /// <summary>Accounts by shard of a cluster of <paramref name="shardCount"/> shards.</summary>
    public static DemoAccounts Accounts(int seed, int shardCount) => DemoAccounts.Create(shardCount, 3, new Random(seed));

    /// <summary>Retries a create call on the given nodes (same ids, so idempotent) until answered with 200.</summary>
    public async Task<CreateResult[]> CreateTransfersAsync(Transfer[] transfers, IReadOnlyList<ulong> nodes) =>
        (await CreateTransfersCallAsync(transfers, nodes)).Results;

    /// <summary>
    /// As <see cref="CreateTransfersAsync"/>, and says whether an attempt before the answered one may have applied
    /// (then a retry correctly answers exists or id_already_failed: see <see cref="RetriedAnswers"/>), with the attempts.
    /// </summary>
    public async Task<CreateCall> CreateTransfersCallAsync(Transfer[] transfers, IReadOnlyList<ulong> nodes)
    {
        var deadline = DateTime.UtcNow + WriteTimeout;
        var attempts = new List<CreateAttempt>();
        while (DateTime.UtcNow < deadline)
        {
            var node = nodes[attempts.Count % nodes.Count];
            try
            {
                var answer = await Client.CreateTransfersAsync(Api(node), transfers, TestContext.Current.CancellationToken);
                attempts.Add(CreateAttempt.Of(node, answer.StatusCode, answer.Problem));
                if (answer.IsOk)
                {
                    return new CreateCall(answer.Value!, attempts);
                }
            }
            catch (HttpRequestException exception)
            {
                attempts.Add(CreateAttempt.Of(node, exception));
            }
            catch (TaskCanceledException exception) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
            {
                attempts.Add(new CreateAttempt(node, $"client timeout: {exception.Message}", PossiblyApplied: true));
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), TestContext.Current.CancellationToken);
        }

        throw new TimeoutException($"no answer to create_transfers within {WriteTimeout.TotalSeconds:0} s; attempts: {CreateAttempt.Describe(attempts)}. {LogHint}");
    }

    /// <summary>
    /// Sends <paramref name="transfers"/> as <see cref="CreateTransfersAsync"/> does and asserts the answer is
    /// <paramref name="expected"/>, or what a retry correctly answers when an earlier attempt may have applied
    /// (<see cref="RetriedAnswers"/>); an excused answer is noted in the test's output. Returns the answer.
    /// </summary>
    public async Task<CreateResult[]> AssertCreatesAsync(Transfer[] transfers, IReadOnlyList<ulong> nodes, IReadOnlyList<string> expected)
    {
        var call = await CreateTransfersCallAsync(transfers, nodes);
        var (verdict, story) = call.Judge(transfers, expected);
        Assert.True(verdict != AnswerVerdict.Wrong, $"{story}. {LogHint}");
        if (verdict == AnswerVerdict.Excused)
        {
            // Visible in the test's report although the test passes: many excused answers mean a cluster that
            // keeps timing out, which the tests should not hide.
            var note = $"excused as a retry's answer after an attempt that may have applied: {story}";
            TestContext.Current.TestOutputHelper?.WriteLine(note);
            TestContext.Current.SendDiagnosticMessage(note);
        }

        return call.Results;
    }

    /// <summary><see cref="AssertCreatesAsync"/> expecting every transfer created.</summary>
    public Task<CreateResult[]> AssertAllCreatedAsync(Transfer[] transfers, IReadOnlyList<ulong> nodes) =>
        AssertCreatesAsync(transfers, nodes, [.. transfers.Select(_ => RetriedAnswers.Created)]);

    public async Task CreateAccountsAsync(Account[] accounts)
    {
        var deadline = DateTime.UtcNow + WriteTimeout;
        while (true)
        {
            try
            {
                var answer = await Client.CreateAccountsAsync(Api(1), accounts, TestContext.Current.CancellationToken);
                if (answer.IsOk)
                {
                    Assert.All(answer.Value!, r => Assert.Contains(r.Status, new[] { "created", "exists" }));
                    return;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, $"accounts not created within {WriteTimeout.TotalSeconds:0} s. Logs: {dataRoot}");
            await Task.Delay(TimeSpan.FromMilliseconds(100), TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Moves 1,000,000 from the shard's bank to each of its customers.</summary>
    public static Transfer[] Funding(DemoAccounts accounts, int shard, ulong firstId)
    {
        var ids = IdsOnShard(shard, firstId, accounts.Customers[shard].Length, shardCount: accounts.Banks.Length);
        return accounts.Customers[shard].Select((customer, i) => new Transfer
        {
            Id = ids[i],
            DebitAccountId = accounts.Banks[shard],
            CreditAccountId = customer,
            Amount = 1_000_000,
            Ledger = DemoAccounts.Ledger,
            Code = DemoAccounts.Code,
        }).ToArray();
    }

    /// <summary>
    /// The first <paramref name="count"/> ids at or above <paramref name="firstId"/> whose home is
    /// <paramref name="shard"/>. A transfer is stored on its id's shard, so these keep a shard's transfers on
    /// the single-shard path: these tests are about durability and failover, the CrossShard tests cover the rest.
    /// </summary>
    public static UInt128[] IdsOnShard(int shard, ulong firstId, int count) => IdsOnShard(shard, firstId, count, ShardCount);

    /// <summary>As above, in a cluster of <paramref name="shardCount"/> shards.</summary>
    public static UInt128[] IdsOnShard(int shard, ulong firstId, int count, int shardCount)
    {
        var ids = new UInt128[count];
        var next = (UInt128)firstId;
        for (var i = 0; i < count; next++)
        {
            if (ShardRouter.ShardOf(next, shardCount) == shard)
            {
                ids[i++] = next;
            }
        }

        return ids;
    }

    /// <summary>Small payments between the (funded) customers of <paramref name="shard"/>.</summary>
    public static Transfer[] Payments(DemoAccounts accounts, int shard, int count, ulong firstId)
    {
        var customers = accounts.Customers[shard];
        var ids = IdsOnShard(shard, firstId, count);
        return Enumerable.Range(0, count).Select(i => new Transfer
        {
            Id = ids[i],
            DebitAccountId = customers[i % customers.Length],
            CreditAccountId = customers[(i + 1) % customers.Length],
            Amount = 1,
            Ledger = DemoAccounts.Ledger,
            Code = DemoAccounts.Code,
        }).ToArray();
    }

    /// <summary>
    /// Calls until the cluster answers something other than 503/504 (which the contract says to
    /// retry), within <see cref="WriteTimeout"/>; asserts the answer is 200.
    /// </summary>
    public async Task<T> AnsweredAsync<T>(Func<Task<HttpAnswer<T>>> call)
    {
        var deadline = DateTime.UtcNow + WriteTimeout;
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var answer = await call();
                if (answer.StatusCode is not (System.Net.HttpStatusCode.ServiceUnavailable or System.Net.HttpStatusCode.GatewayTimeout))
                {
                    Assert.True(answer.IsOk, $"answered {(int)answer.StatusCode}: {answer.Problem}. {LogHint}");
                    return answer.Value!;
                }

                last = $"{(int)answer.StatusCode}: {answer.Problem}";
            }
            catch (HttpRequestException exception)
            {
                last = exception.Message;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), TestContext.Current.CancellationToken);
        }

        throw new TimeoutException($"no answer within {WriteTimeout.TotalSeconds:0} s; last: {last}. {LogHint}");
    }

    /// <summary>
    /// Waits (at most <see cref="ReadyTimeout"/>) until every node sees every shard led by its preferred replica (the
    /// first of its replicas). Right after start the leader balancer moves leaderships, and a move interrupts requests
    /// in flight; a test that asserts exact first answers starts from a settled cluster (as Eventually.LeadersSettled
    /// does for in-process nodes).
    /// </summary>
    public async Task LeadersSettledAsync()
    {
        var deadline = DateTime.UtcNow + ReadyTimeout;
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            var unsettled = new List<string>();
            foreach (var (id, url) in Nodes)
            {
                var answer = await AnsweredAsync(() => Client.GetClusterAsync(url, TestContext.Current.CancellationToken));
                unsettled.AddRange(answer.Shards.Where(s => s.Leader != s.Replicas[0]).Select(s => $"node {id} sees shard {s.Id} led by {s.Leader} (preferred {s.Replicas[0]})"));
            }

            if (unsettled.Count == 0)
            {
                return;
            }

            last = string.Join("; ", unsettled);
            await Task.Delay(TimeSpan.FromMilliseconds(200), TestContext.Current.CancellationToken);
        }

        throw new TimeoutException($"leaders not on their preferred replicas within {ReadyTimeout.TotalSeconds:0} s: {last}. {LogHint}");
    }

    public string LogHint => $"Node logs: {dataRoot} (deleted after the test unless RAFTLEDGER_KEEP_TEST_DATA=1)";

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        Client.Dispose();
        if (Environment.GetEnvironmentVariable("RAFTLEDGER_KEEP_TEST_DATA") == "1")
        {
            return;
        }

        try
        {
            Directory.Delete(dataRoot, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open by a dying process: the OS temp cleaner takes it later.
        }
    }
}
