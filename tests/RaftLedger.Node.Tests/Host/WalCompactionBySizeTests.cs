using System.Net;
using RaftLedger.Ledger;
using RaftLedger.Node.Host;
using RaftLedger.Node.Tests.Transport;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Node.Tests.Host;

/// <summary>
/// The Raft WAL stays a few segments long under large entries (three real nodes on loopback, real WAL and RocksDB):
/// a shard whose log pins the WAL's oldest segment is compacted long before it has applied
/// <see cref="HostOptions.SnapshotEntries"/> entries. Before, a batched load grew the WAL by one segment every few
/// seconds until 10,000 entries (gigabytes), and a restart replayed all of it.
/// </summary>
public sealed class WalCompactionBySizeTests : IAsyncLifetime
{
    private const long SegmentBytes = HostOptions.WalSegmentBytesMin;
    private const int TransfersPerEntry = 1000;

    // Enough entries to fill many segments without compaction; each transfer takes over 100 bytes of the log.
    private const int Entries = (int)(12 * SegmentBytes / (100 * TransfersPerEntry));

    // The WAL's live segments before it names pinning groups, plus the active segment, its spare and a free one.
    private const int WalFilesMax = WalOptions.CompactionRewriteSegmentsMinDefault + 3;

    private readonly string root = Path.Combine(Path.GetTempPath(), "raftledger-walsize-" + Guid.NewGuid().ToString("N"));
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
        ShardCount = 1,
        Replication = 3,
        Secret = "test-secret",
        TickInterval = TimeSpan.FromMilliseconds(50),
        RequestTimeout = TimeSpan.FromSeconds(10),
        SnapshotEntries = 1_000_000,
        SnapshotCheckTicks = 1,
        WalSegmentBytes = SegmentBytes,
    };

    [Fact]
    public async Task Large_entries_keep_the_wal_a_few_segments_long_on_every_node()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.Until(() => nodes.Values.All(n => n.Service.IsReady), "every shard has a leader");
        UInt128 a = 1, b = 2;
        var created = await nodes[1].Service.CreateAccountsAsync(new[] { new Account { Id = a, Ledger = 1, Code = 1 }, new Account { Id = b, Ledger = 1, Code = 1 } }, cancel);
        Assert.True(created.IsOk, created.Detail);

        var walFilesSeen = 0;
        for (var entry = 0; entry < Entries; entry++)
        {
            var transfers = Enumerable.Range(0, TransfersPerEntry)
                .Select(i => new Transfer { Id = (UInt128)(1000 + (entry * TransfersPerEntry) + i), DebitAccountId = a, CreditAccountId = b, Amount = 1, Ledger = 1, Code = 1 })
                .ToArray();
            var result = await nodes[1].Service.CreateTransfersAsync(transfers, cancel);
            Assert.True(result.IsOk, result.Detail);
            Assert.All(result.Value!, r => Assert.Equal(CreateTransferResult.Created, r.Status));
            walFilesSeen = Math.Max(walFilesSeen, nodes.Keys.Max(WalFiles));
        }

        Assert.True(walFilesSeen <= WalFilesMax, $"a node's WAL held {walFilesSeen} files (at most {WalFilesMax} expected) after {Entries} entries of {TransfersPerEntry} transfers with {SegmentBytes}-byte segments");
        foreach (var node in nodes.Values)
        {
            Assert.True(await node.Scheduler.SnapshotIndexAsync(0) > 0, "every node compacted the shard's log although it applied far fewer than SnapshotEntries entries");
        }

        var account = await nodes[1].Service.LookupAccountsAsync(new[] { a }, cancel);
        Assert.True(account.IsOk, account.Detail);
        Assert.Equal((UInt128)(Entries * TransfersPerEntry), account.Value![0].DebitsPosted);
    }

    private int WalFiles(ulong node) => Directory.GetFiles(DurableNodeStorage.WalDirectory(Path.Combine(root, $"n{node}"))).Length;
}
