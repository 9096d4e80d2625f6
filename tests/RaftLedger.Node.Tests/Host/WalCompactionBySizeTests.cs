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

    // The segments the WAL keeps before it names pinning groups (the active one among them), plus the spare and the
    // compacted segments kept for reuse. (It said 4 + 3 until the twenty-fourth session, one free segment where up to
    // FreeSegmentsMax are kept: a node that stopped at 4 segments and 3 free ones failed it now and then.)
    private const int WalFilesMax = WalOptions.CompactionRewriteSegmentsMinDefault + 1 + WalOptions.FreeSegmentsMaxDefault;

    private readonly LoopbackCluster cluster = new("walsize", options => options with
    {
        ShardCount = 1,
        SnapshotEntries = 1_000_000,
        SnapshotCheckTicks = 1,
        WalSegmentBytes = SegmentBytes,
    });

    public async ValueTask InitializeAsync() => await cluster.StartAllAsync();

    public async ValueTask DisposeAsync() => await cluster.DisposeAsync();

    [Fact]
    public async Task Large_entries_keep_the_wal_a_few_segments_long_on_every_node()
    {
        var cancel = TestContext.Current.CancellationToken;
        await Eventually.Until(() => cluster.Nodes.Values.All(n => n.Service.IsReady), "every shard has a leader");
        UInt128 a = 1, b = 2;
        var created = await cluster.Nodes[1].Service.CreateAccountsAsync(new[] { new Account { Id = a, Ledger = 1, Code = 1 }, new Account { Id = b, Ledger = 1, Code = 1 } }, cancel);
        Assert.True(created.IsOk, created.Detail);

        for (var entry = 0; entry < Entries; entry++)
        {
            var transfers = Enumerable.Range(0, TransfersPerEntry)
                .Select(i => new Transfer { Id = (UInt128)(1000 + (entry * TransfersPerEntry) + i), DebitAccountId = a, CreditAccountId = b, Amount = 1, Ledger = 1, Code = 1 })
                .ToArray();
            var result = await cluster.Nodes[1].Service.CreateTransfersAsync(transfers, cancel);
            Assert.True(result.IsOk, result.Detail);
            Assert.All(result.Value!, r => Assert.Equal(CreateTransferResult.Created, r.Status));
        }

        // Without the size rule nothing is compacted before 1,000,000 entries and every node keeps ~25 files.
        await Eventually.Until(() => cluster.Nodes.Keys.All(node => WalFiles(node) <= WalFilesMax),
            () => $"every node's WAL is down to {WalFilesMax} files or fewer (now " + string.Join(", ", cluster.Nodes.Keys.Select(n => $"node {n}: {WalFiles(n)}")) + ")");
        foreach (var node in cluster.Nodes.Values)
        {
            Assert.True(await node.Scheduler.SnapshotIndexAsync(0) > 0, "every node compacted the shard's log although it applied far fewer than SnapshotEntries entries");
        }

        var account = await cluster.Nodes[1].Service.LookupAccountsAsync(new[] { a }, cancel);
        Assert.True(account.IsOk, account.Detail);
        Assert.Equal((UInt128)(Entries * TransfersPerEntry), account.Value![0].DebitsPosted);
    }

    private int WalFiles(ulong node) => Directory.GetFiles(DurableNodeStorage.WalDirectory(cluster.DataDirectory(node))).Length;
}
