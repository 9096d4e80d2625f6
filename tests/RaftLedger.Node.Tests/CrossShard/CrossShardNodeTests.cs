using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Node.Api;
using RaftLedger.Node.Host;
using RaftLedger.Node.Tests.Transport;

namespace RaftLedger.Node.Tests.CrossShard;

/// <summary>
/// Three nodes in this process over real loopback gRPC, 4 shards: cross-shard transfers go through the hosted
/// driver (prepare, decide, finish between shard leaders on different nodes) and the service's answers.
/// </summary>
public sealed class CrossShardNodeTests : IAsyncLifetime
{
    private const int Shards = 4;
    private readonly string root = Path.Combine(Path.GetTempPath(), "raftledger-xnode-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<ulong, NodeHost> nodes = [];
    private readonly LineLog log = new();

    /// <summary>Keeps the hosts' log lines (debug and up) to print when a test fails.</summary>
    private sealed class LineLog : ILogger
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            Lines.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {formatter(state, exception)} {exception}");
            while (Lines.Count > 4000 && Lines.TryDequeue(out _))
            {
            }
        }
    }

    public async ValueTask InitializeAsync()
    {
        var peers = Enumerable.Range(1, 3).ToDictionary(i => (ulong)i, _ => $"127.0.0.1:{LoopbackPorts.Free()}");
        foreach (var id in peers.Keys)
        {
            nodes[id] = await NodeHost.StartAsync(new HostOptions
            {
                NodeId = id,
                DataDirectory = Path.Combine(root, $"n{id}"),
                Listen = IPEndPoint.Parse(peers[id]),
                Peers = peers,
                ShardCount = Shards,
                Secret = "test-secret",
                TickInterval = TimeSpan.FromMilliseconds(50),
                RequestTimeout = TimeSpan.FromSeconds(20),
            }, log, TestContext.Current.CancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in nodes.Values)
        {
            await node.DisposeAsync();
        }

        Directory.Delete(root, recursive: true);
    }


    private static UInt128 OnShard(int shard, ulong start)
    {
        for (var id = start; ; id++)
        {
            if (ShardRouter.ShardOf(id, Shards) == shard)
            {
                return id;
            }
        }
    }

    /// <summary>
    /// A linked chain of <paramref name="length"/> events, each paying 1 from one shard's account to the next shard's (the
    /// last one debits <paramref name="lastDebit"/>), ids homed on every shard in turn from <paramref name="nextId"/> on.
    /// </summary>
    private static Transfer[] Chain(UInt128[] accounts, ref ulong nextId, int length, UInt128 lastDebit)
    {
        var chain = new Transfer[length];
        for (var i = 0; i < length; i++)
        {
            var id = OnShard(i % Shards, nextId);
            nextId = (ulong)id + 1;
            chain[i] = new Transfer
            {
                Id = id,
                DebitAccountId = i == length - 1 ? lastDebit : accounts[i % Shards],
                CreditAccountId = accounts[(i + 1) % Shards],
                Amount = 1,
                Ledger = 1,
                Code = 1,
                Flags = i < length - 1 ? TransferFlags.Linked : TransferFlags.None,
            };
        }

        return chain;
    }

    /// <summary>
    /// Sends a request, and after a 503/504 (a leader change: this machine is shared) retries it with the same ids up to 5
    /// times, each once leaders settled and the aborted attempt is released everywhere: at once, its own id claims still
    /// held on the id homes would abort the retry too, as a client backing off would not see.
    /// </summary>
    private async Task<ServiceResult<TransferEventResult[]>> SendRetryingAsync(NodeHost node, Transfer[] transfers, CancellationToken cancel)
    {
        var sent = await node.Service.CreateTransfersAsync(transfers, cancel);
        for (var attempt = 0; attempt < 5 && !sent.IsOk; attempt++)
        {
            await Eventually.LeadersSettled(nodes.Values, TimeSpan.FromSeconds(60));
            await CrossShardQuietAsync(cancel);
            sent = await node.Service.CreateTransfersAsync(transfers, cancel);
        }

        return sent;
    }

    /// <summary>Waits (at most a minute) until no replica of any node holds unfinished cross-shard work.</summary>
    private async Task CrossShardQuietAsync(CancellationToken cancel)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var unfinished = 0;
            foreach (var node in nodes.Values)
            {
                unfinished += (await node.Service.GetNodeStatusAsync(withFingerprints: false, cancel)).Replicas.Sum(r => r.CrossShardUnfinished);
            }

            if (unfinished == 0)
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), cancel);
        }
    }

    private string Counters() => string.Join("; ", nodes.Select(n =>
        $"node {n.Key}: shard messages delivered {n.Value.Scheduler.DeliveredShardMessages}, dropped {n.Value.Scheduler.DroppedShardMessages}" +
        (n.Value.Scheduler.Completion.IsFaulted ? $", scheduler failed: {n.Value.Scheduler.Completion.Exception!.InnerException}" : ""))) +
        "\n" + string.Join("\n", log.Lines.Where(l => !l.Contains("bootstrapped", StringComparison.Ordinal)).TakeLast(300));

    [Fact]
    public async Task Transfer_between_accounts_of_two_shards_homed_on_a_third_is_created_on_both_legs()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.LeadersSettled(nodes.Values, TimeSpan.FromSeconds(60));
        var debit = OnShard(0, 1_000);
        var credit = OnShard(1, 2_000);
        var created = await nodes[1].Service.CreateAccountsAsync(new[] { new Account { Id = debit, Ledger = 1, Code = 1 }, new Account { Id = credit, Ledger = 1, Code = 1 } }, cancel);
        Assert.True(created.IsOk, created.Detail);

        var transfers = new[]
        {
            new Transfer { Id = OnShard(2, 3_000), DebitAccountId = debit, CreditAccountId = credit, Amount = 10, Ledger = 1, Code = 1 },
            new Transfer { Id = OnShard(0, 4_000), DebitAccountId = debit, CreditAccountId = credit, Amount = 5, Ledger = 1, Code = 1 },
            new Transfer { Id = OnShard(2, 5_000), DebitAccountId = debit, CreditAccountId = credit, Amount = 1, Ledger = 2, Code = 1 },
        };
        var sent = await nodes[2].Service.CreateTransfersAsync(transfers, cancel);
        Assert.True(sent.IsOk, $"{sent.Status}: {sent.Detail}. {Counters()}");
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created, CreateTransferResult.TransferMustHaveTheSameLedgerAsAccounts],
            sent.Value!.Select(r => r.Status));
        Assert.All(sent.Value!.Take(2), r => Assert.NotEqual(0UL, r.Timestamp));

        // Legs are finished after the answer: wait until nothing is pending on either account.
        Account[] accounts = [];
        await Eventually.Until(() =>
        {
            var looked = nodes[3].Service.LookupAccountsAsync(new[] { debit, credit }, cancel).AsTask().GetAwaiter().GetResult();
            accounts = looked.IsOk ? looked.Value! : [];
            return accounts.Length == 2 && accounts.All(a => a.DebitsPending == 0 && a.CreditsPending == 0);
        }, "both legs finished", TimeSpan.FromSeconds(30));
        Assert.Equal((UInt128)15, accounts[0].DebitsPosted);
        Assert.Equal((UInt128)15, accounts[1].CreditsPosted);

        var found = await nodes[3].Service.LookupTransfersAsync(new[] { transfers[0].Id, transfers[1].Id, transfers[2].Id }, cancel);
        Assert.True(found.IsOk, found.Detail);
        Assert.Equal([transfers[0].Id, transfers[1].Id], found.Value!.Select(t => t.Id));
    }

    [Fact]
    public async Task Linked_chain_with_a_failing_event_on_the_home_shard_creates_nothing()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.LeadersSettled(nodes.Values, TimeSpan.FromSeconds(60));
        var ids = Enumerable.Range(0, Shards).Select(s => OnShard(s, 1_000 + ((ulong)s * 1_000))).ToArray();
        var created = await nodes[1].Service.CreateAccountsAsync(ids.Select((id, s) => new Account { Id = id, Ledger = 1, Code = 1, Flags = s == 2 ? AccountFlags.DebitsMustNotExceedCredits : AccountFlags.None }).ToArray(), cancel);
        Assert.True(created.IsOk, created.Detail);

        // Event 1 debits an account of the home shard (2) that has no credits: exceeds_credits, so event 0 fails too.
        var chain = new[]
        {
            new Transfer { Id = OnShard(2, 10_000), DebitAccountId = ids[0], CreditAccountId = ids[1], Amount = 3, Ledger = 1, Code = 1, Flags = TransferFlags.Linked },
            new Transfer { Id = OnShard(1, 11_000), DebitAccountId = ids[2], CreditAccountId = ids[3], Amount = 5, Ledger = 1, Code = 1 },
        };
        var sent = await nodes[2].Service.CreateTransfersAsync(chain, cancel);
        Assert.True(sent.IsOk, $"{sent.Status}: {sent.Detail}. {Counters()}");
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.ExceedsCredits], sent.Value!.Select(r => r.Status));
        var found = await nodes[3].Service.LookupTransfersAsync(chain.Select(t => t.Id).ToArray(), cancel);
        Assert.True(found.IsOk, found.Detail);
        Assert.Empty(found.Value!);
    }

    [Fact]
    public async Task Linked_chain_that_creates_a_pending_transfer_and_posts_part_of_it_is_created_across_shards()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.LeadersSettled(nodes.Values, TimeSpan.FromSeconds(60));
        var debit = OnShard(0, 21_000);
        var credit = OnShard(1, 22_000);
        var created = await nodes[1].Service.CreateAccountsAsync(new[] { new Account { Id = debit, Ledger = 1, Code = 1 }, new Account { Id = credit, Ledger = 1, Code = 1 } }, cancel);
        Assert.True(created.IsOk, created.Detail);

        // The pending transfer's id lives on a third shard (the chain's coordinator), the post's on the debit's shard.
        var pending = new Transfer { Id = OnShard(2, 23_000), DebitAccountId = debit, CreditAccountId = credit, Amount = 40, Ledger = 1, Code = 1, Flags = TransferFlags.Pending | TransferFlags.Linked };
        var post = new Transfer { Id = OnShard(0, 24_000), PendingId = pending.Id, Amount = 25, Flags = TransferFlags.PostPendingTransfer };
        var sent = await nodes[1].Service.CreateTransfersAsync(new[] { pending, post }, cancel);
        Assert.True(sent.IsOk, $"{sent.Status}: {sent.Detail}. {Counters()}");
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], sent.Value!.Select(r => r.Status));

        var looked = await nodes[3].Service.LookupAccountsAsync(new[] { debit, credit }, cancel);
        Assert.True(looked.IsOk, looked.Detail);
        Assert.Equal(((UInt128)25, UInt128.Zero, (UInt128)25, UInt128.Zero),
            (looked.Value![0].DebitsPosted, looked.Value[0].DebitsPending, looked.Value[1].CreditsPosted, looked.Value[1].CreditsPending));
        var found = await nodes[3].Service.LookupTransfersAsync(new[] { pending.Id, post.Id }, cancel);
        Assert.True(found.IsOk, found.Detail);
        Assert.Equal([pending.Id, post.Id], found.Value!.Select(t => t.Id));

        // A second post of it fails: it was posted by its own chain.
        var again = await nodes[2].Service.CreateTransfersAsync(new[] { new Transfer { Id = OnShard(2, 25_000), PendingId = pending.Id, Flags = TransferFlags.PostPendingTransfer } }, cancel);
        Assert.True(again.IsOk, again.Detail);
        Assert.Equal([CreateTransferResult.PendingTransferAlreadyPosted], again.Value!.Select(r => r.Status));
    }

    [Fact]
    public async Task Linked_chain_of_a_full_request_across_every_shard_is_created_and_one_failing_in_its_last_event_creates_nothing()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.LeadersSettled(nodes.Values, TimeSpan.FromSeconds(60));
        var ids = Enumerable.Range(0, Shards).Select(s => OnShard(s, 31_000 + ((ulong)s * 1_000))).ToArray();
        var created = await nodes[1].Service.CreateAccountsAsync(ids.Select(id => new Account { Id = id, Ledger = 1, Code = 1 }).ToArray(), cancel);
        Assert.True(created.IsOk, created.Detail);

        // 8,189 events (far past the old 64-event bound), each paying 1 from one shard's account to the next shard's,
        // ids homed on every shard in turn: one atomic cross-shard transaction coordinated by shard 0.
        var nextId = 40_000UL;
        var chain = Chain(ids, ref nextId, LedgerLimits.BatchEventsMax, lastDebit: ids[(LedgerLimits.BatchEventsMax - 1) % Shards]);

        // A leader change while it runs answers 503/504: the retry (same ids) of a chain that committed answers exists.
        var sent = await SendRetryingAsync(nodes[2], chain, cancel);

        Assert.True(sent.IsOk, $"{sent.Status}: {sent.Detail}. {Counters()}");
        Assert.DoesNotContain(sent.Value!, r => r.Status == CreateTransferResult.NeedsCrossShardPath);
        Assert.True(sent.Value!.All(r => r.Status == CreateTransferResult.Created) || sent.Value![0].Status == CreateTransferResult.Exists,
            string.Join(", ", sent.Value!.Select(r => r.Status).Distinct()));
        var found = await nodes[3].Service.LookupTransfersAsync(new[] { chain[0].Id, chain[64].Id, chain[^1].Id }, cancel);
        Assert.True(found.IsOk, found.Detail);
        Assert.Equal(3, found.Value!.Length);

        // 65 events whose last debits an account that exists nowhere: TigerBeetle's statuses, nothing stored.
        var failing = Chain(ids, ref nextId, 65, lastDebit: OnShard(3, 90_000));
        var refused = await SendRetryingAsync(nodes[1], failing, cancel);

        Assert.True(refused.IsOk, $"{refused.Status}: {refused.Detail}. {Counters()}");
        Assert.Equal(CreateTransferResult.DebitAccountNotFound, refused.Value![^1].Status);
        Assert.All(refused.Value![..^1], r => Assert.Equal(CreateTransferResult.LinkedEventFailed, r.Status));
        var none = await nodes[3].Service.LookupTransfersAsync(failing.Select(t => t.Id).ToArray(), cancel);
        Assert.True(none.IsOk, none.Detail);
        Assert.Empty(none.Value!);

        // Every account paid and received 8,189 / 4 (rounded by position): net zero for the ring except the remainder.
        Account[] accounts = [];
        await Eventually.Until(() =>
        {
            var looked = nodes[3].Service.LookupAccountsAsync(ids, cancel).AsTask().GetAwaiter().GetResult();
            accounts = looked.IsOk ? looked.Value! : [];
            return accounts.Length == Shards && accounts.All(a => a.DebitsPending == 0 && a.CreditsPending == 0);
        }, "every leg finished", TimeSpan.FromSeconds(60));
        for (var s = 0; s < Shards; s++)
        {
            var debits = Enumerable.Range(0, chain.Length).Count(i => i % Shards == s);
            var credits = Enumerable.Range(0, chain.Length).Count(i => (i + 1) % Shards == s);
            Assert.Equal(((UInt128)debits, (UInt128)credits), (accounts[s].DebitsPosted, accounts[s].CreditsPosted));
        }
    }
}
