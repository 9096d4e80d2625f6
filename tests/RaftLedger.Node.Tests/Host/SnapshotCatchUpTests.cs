using System.Net.Sockets;
using Google.Protobuf;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Node.Host;
using RaftLedger.Node.Tests.Transport;
using RaftLedger.Node.Transport.Protos;
using RaftLedger.Raft;

namespace RaftLedger.Node.Tests.Host;

/// <summary>
/// Snapshots and WAL compaction on a three-node cluster (real gRPC on loopback, real WAL and RocksDB, one data folder
/// per node): a node that was down while the others compacted past its log catches up from a streamed snapshot.
/// </summary>
public sealed class SnapshotCatchUpTests : IAsyncLifetime
{
    private const int Shards = 1;
    private const int SnapshotEntries = 4;
    private readonly LoopbackCluster cluster = new("snap", options => options with
    {
        ShardCount = Shards,
        SnapshotEntries = SnapshotEntries,
        SnapshotCheckTicks = 1,
    });

    public async ValueTask InitializeAsync() => await cluster.StartAllAsync();

    public async ValueTask DisposeAsync() => await cluster.DisposeAsync();

    [Fact]
    public async Task A_node_that_missed_compacted_entries_catches_up_from_a_snapshot_with_an_identical_ledger()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.Until(() => cluster.Nodes.Values.All(n => n.Service.IsReady), "every shard has a leader");
        UInt128 a = 1, b = 2;
        Assert.Equal(0, ShardRouter.ShardOf(a, Shards));
        var created = await cluster.Nodes[1].Service.CreateAccountsAsync(new[] { new Account { Id = a, Ledger = 1, Code = 1 }, new Account { Id = b, Ledger = 1, Code = 1 } }, cancel);
        Assert.True(created.IsOk, created.Detail);
        await Pay(cluster.Nodes[1], 100, 3, a, b);

        // Node 3 goes down with everything applied so far; the others write on and compact past its log.
        await Eventually.Until(() => cluster.Nodes.Values.Select(n => n.Scheduler.View(0).Applied).Distinct().Count() == 1, "all replicas applied the same index");
        var missedAfter = cluster.Nodes[3].Scheduler.View(0).Applied;
        await cluster.Nodes[3].DisposeAsync();
        cluster.Nodes.Remove(3);
        var survivors = cluster.Nodes.Values.ToArray();
        await Pay(survivors[0], 200, 6 * SnapshotEntries, a, b);
        foreach (var node in survivors)
        {
            await EventuallyAsync(async () => await node.Scheduler.SnapshotIndexAsync(0) > missedAfter + 1, "the survivors compact past what node 3 has");
        }

        // Node 3 returns: the entries it needs are gone, so it must install a snapshot.
        await cluster.StartAsync(3);
        await Eventually.Until(() => cluster.Nodes[3].Scheduler.SnapshotCounts.Installed >= 1, "node 3 installs a snapshot");
        await Pay(cluster.Nodes[3], 300, 2, a, b);
        await Eventually.Until(() => cluster.Nodes.Values.Select(n => n.Scheduler.View(0).Applied).Distinct().Count() == 1, "all replicas applied the same index");
        Assert.True(survivors.Sum(n => n.Scheduler.SnapshotCounts.Sent) >= 1);

        var fingerprints = new List<UInt128>();
        foreach (var node in cluster.Nodes.Values)
        {
            var status = await node.Service.GetNodeStatusAsync(withFingerprints: true, cancel);
            fingerprints.Add(status.Replicas.Single(r => r.ShardId == 0).Fingerprint);
        }

        Assert.Single(fingerprints.Distinct());
        var account = await cluster.Nodes[3].Service.LookupAccountsAsync(new[] { a }, cancel);
        Assert.True(account.IsOk, account.Detail);
        Assert.Equal((UInt128)(3 + (6 * SnapshotEntries) + 2), account.Value![0].DebitsPosted);
    }

    [Fact]
    public async Task A_corrupt_shard_snapshot_is_refused_in_the_answer_and_leaves_no_file_behind()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.Until(() => cluster.Nodes.Values.All(n => n.Service.IsReady), "every shard has a leader");
        var node = cluster.Nodes[3];
        // From a term ahead of the replica's (else it is not even prepared: the next test), never stepped into the core.
        var chunk = GarbageSnapshot(messageTerm: node.Scheduler.View(0).Term + 1000);

        // The file is checked when it is complete, off the loop, before the core hears of it: the leader learns at once.
        var ack = await node.Scheduler.OnSnapshotAsync(fromNode: 2, new OneSnapshotChunk(chunk), cancel);

        Assert.False(ack.Installed);
        Assert.Equal("the snapshot is corrupt", ack.Error);
        Assert.Empty(Directory.GetFiles(Path.Combine(cluster.DataDirectory(3), "snapshots")));
        Assert.Equal(0, node.Scheduler.SnapshotCounts.Installed);
    }

    [Fact]
    public async Task A_snapshot_from_a_leader_whose_term_is_over_is_not_prepared_and_leaves_no_file_behind()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.Until(() => cluster.Nodes.Values.All(n => n.Service.IsReady), "every shard has a leader");
        var node = cluster.Nodes[3];
        var term = node.Scheduler.View(0).Term;
        Assert.True(term > 1, "the shard has elected a leader since bootstrap");

        // Garbage data: had it been prepared, the answer would say corrupt; the core would drop it for its term anyway.
        var ack = await node.Scheduler.OnSnapshotAsync(fromNode: 2, new OneSnapshotChunk(GarbageSnapshot(messageTerm: 1)), cancel);

        Assert.False(ack.Installed);
        Assert.Equal($"shard 0: the snapshot at 50 is from term 1; this replica is at term {term}", ack.Error);
        Assert.Empty(Directory.GetFiles(Path.Combine(cluster.DataDirectory(3), "snapshots")));
        Assert.Equal(0, node.Scheduler.SnapshotCounts.Installed);
        Assert.Equal(term, node.Scheduler.View(0).Term);
    }

    /// <summary>One chunk of 4 KiB of random bytes for shard 0 at index 50, its Raft message from node 2 in <paramref name="messageTerm"/>.</summary>
    private static SnapshotChunk GarbageSnapshot(ulong messageTerm)
    {
        var snapshot = new SnapshotMetadata(50, 1, ConfState.OfVoters(1, 2, 3));
        var raft = MessageCodec.Encode(new Message { Type = MessageType.Snapshot, From = 2, To = 3, Term = messageTerm, Snapshot = snapshot });
        var garbage = new byte[4096];
        new Random(7).NextBytes(garbage);
        return new SnapshotChunk
        {
            GroupId = 1,
            Index = 50,
            Term = 1,
            Offset = 0,
            Last = true,
            Data = ByteString.CopyFrom(garbage),
            Raft = ByteString.CopyFrom(raft),
        };
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
