using System.Net;
using System.Net.Sockets;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Node.Host;
using RaftLedger.Node.Tests.Transport;

namespace RaftLedger.Node.Tests.Host;

/// <summary>
/// Snapshots and WAL compaction on a three-node cluster (real gRPC on loopback, real WAL and RocksDB, one data folder
/// per node): a node that was down while the others compacted past its log catches up from a streamed snapshot.
/// </summary>
public sealed class SnapshotCatchUpTests : IAsyncLifetime
{
    private const int Shards = 1;
    private const int SnapshotEntries = 4;
    private readonly string root = Path.Combine(Path.GetTempPath(), "raftledger-snap-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<ulong, NodeHost> nodes = [];
    private Dictionary<ulong, string> peers = [];

    public async ValueTask InitializeAsync()
    {
        peers = Enumerable.Range(1, 3).ToDictionary(i => (ulong)i, _ => $"127.0.0.1:{LoopbackPorts.Free()}");
        foreach (var id in peers.Keys)
        {
            nodes[id] = await NodeHost.StartAsync(Options(id), cancel: TestContext.Current.CancellationToken);
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

    private HostOptions Options(ulong id) => new()
    {
        NodeId = id,
        DataDirectory = Path.Combine(root, $"n{id}"),
        Listen = IPEndPoint.Parse(peers[id]),
        Peers = peers,
        ShardCount = Shards,
        Replication = 3,
        Secret = "test-secret",
        TickInterval = TimeSpan.FromMilliseconds(50),
        RequestTimeout = TimeSpan.FromSeconds(10),
        SnapshotEntries = SnapshotEntries,
        SnapshotCheckTicks = 1,
    };


    [Fact]
    public async Task A_node_that_missed_compacted_entries_catches_up_from_a_snapshot_with_an_identical_ledger()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.Until(() => nodes.Values.All(n => n.Service.IsReady), "every shard has a leader");
        UInt128 a = 1, b = 2;
        Assert.Equal(0, ShardRouter.ShardOf(a, Shards));
        var created = await nodes[1].Service.CreateAccountsAsync(new[] { new Account { Id = a, Ledger = 1, Code = 1 }, new Account { Id = b, Ledger = 1, Code = 1 } }, cancel);
        Assert.True(created.IsOk, created.Detail);
        await Pay(nodes[1], 100, 3, a, b);

        // Node 3 goes down with everything applied so far; the others write on and compact past its log.
        await Eventually.Until(() => nodes.Values.Select(n => n.Scheduler.View(0).Applied).Distinct().Count() == 1, "all replicas applied the same index");
        var missedAfter = nodes[3].Scheduler.View(0).Applied;
        await nodes[3].DisposeAsync();
        nodes.Remove(3);
        var survivors = nodes.Values.ToArray();
        await Pay(survivors[0], 200, 6 * SnapshotEntries, a, b);
        foreach (var node in survivors)
        {
            await EventuallyAsync(async () => await node.Scheduler.SnapshotIndexAsync(0) > missedAfter + 1, "the survivors compact past what node 3 has");
        }

        // Node 3 returns: the entries it needs are gone, so it must install a snapshot.
        nodes[3] = await NodeHost.StartAsync(Options(3), cancel: cancel);
        await Eventually.Until(() => nodes[3].Scheduler.SnapshotCounts.Installed >= 1, "node 3 installs a snapshot");
        await Pay(nodes[3], 300, 2, a, b);
        await Eventually.Until(() => nodes.Values.Select(n => n.Scheduler.View(0).Applied).Distinct().Count() == 1, "all replicas applied the same index");
        Assert.True(survivors.Sum(n => n.Scheduler.SnapshotCounts.Sent) >= 1);

        var fingerprints = new List<UInt128>();
        foreach (var node in nodes.Values)
        {
            var status = await node.Service.GetNodeStatusAsync(withFingerprints: true, cancel);
            fingerprints.Add(status.Replicas.Single(r => r.ShardId == 0).Fingerprint);
        }

        Assert.Single(fingerprints.Distinct());
        var account = await nodes[3].Service.LookupAccountsAsync(new[] { a }, cancel);
        Assert.True(account.IsOk, account.Detail);
        Assert.Equal((UInt128)(3 + (6 * SnapshotEntries) + 2), account.Value![0].DebitsPosted);
    }

    /// <summary>Sequential one-transfer requests (one Raft entry each), every one created.</summary>
    private static async Task Pay(NodeHost via, int firstId, int count, UInt128 debit, UInt128 credit)
    {
        for (var i = 0; i < count; i++)
        {
            var transfer = new Transfer { Id = (UInt128)(firstId + i), DebitAccountId = debit, CreditAccountId = credit, Amount = 1, Ledger = 1, Code = 1 };
            var result = await via.Service.CreateTransfersAsync(new[] { transfer }, TestContext.Current.CancellationToken);
            Assert.True(result.IsOk, result.Detail);
            Assert.Equal(CreateTransferResult.Created, result.Value![0].Status);
        }
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Eventually.DefaultTimeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for: {what}");
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }
}
