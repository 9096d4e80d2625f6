using RaftLedger.Cli.Processes;
using RaftLedger.Client;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Client.Tests.Cluster;

/// <summary>
/// One real 3-node cluster (`raftledger node` processes on free loopback ports, in a temporary
/// folder) shared by the tests of <see cref="ClientClusterTests"/>, which run one after another.
/// It kills exactly the processes it started and deletes the folder afterwards.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public const int ShardCount = 4;
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    private readonly string dataRoot = Path.Combine(Path.GetTempPath(), $"raftledger-client-test-{Guid.NewGuid():N}");

    public ClusterFixture()
    {
        Cluster = LocalCluster.Create(new LocalClusterOptions { DataRoot = dataRoot, NodeCount = 3, ShardCount = ShardCount });
    }

    public LocalCluster Cluster { get; }

    public string LogHint => $"Node logs: {dataRoot}";

    /// <summary>Options naming every node with its id, so the client can send to leaders directly.</summary>
    public LedgerClientOptions Options => new()
    {
        Addresses = [.. Cluster.Nodes.Select(node => node.GrpcUrl)],
        NodeAddresses = Cluster.Nodes.ToDictionary(node => node.Id, node => node.GrpcUrl),
    };

    public async ValueTask InitializeAsync()
    {
        Cluster.StartAll();
        await Cluster.WaitAllReadyAsync(ReadyTimeout, CancellationToken.None);
    }

    /// <summary>
    /// Restarts every node a test killed and waits until it is ready. A test that kills a node calls
    /// this first (a second kill needs all three up to keep a quorum); a test that leaves a node
    /// dead saves the restart when it runs last.
    /// </summary>
    public async Task EnsureAllRunningAsync()
    {
        var stopped = Cluster.Nodes.Select(node => node.Id).Where(id => !Cluster.IsRunning(id)).ToList();
        foreach (var id in stopped)
        {
            Cluster.Start(id);
        }

        await Cluster.WaitReadyAsync(stopped, ReadyTimeout, TestContext.Current.CancellationToken);
    }

    /// <summary>A timestamped line in the test output, so a slow run shows where its time went.</summary>
    public void Log(string message) =>
        TestContext.Current.TestOutputHelper?.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {message}");

    /// <summary>Two new accounts on each shard: payments go from the first to the second of a shard.</summary>
    public static (UInt128 Debit, UInt128 Credit)[] NewAccountPairs(int seed)
    {
        var random = new Random(seed);
        var found = new List<UInt128>[ShardCount];
        for (var shard = 0; shard < ShardCount; shard++)
        {
            found[shard] = [];
        }

        while (found.Any(list => list.Count < 2))
        {
            var id = AccountIds.New((ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), random);
            var list = found[ShardRouter.ShardOf(id, ShardCount)];
            if (list.Count < 2)
            {
                list.Add(id);
            }
        }

        return found.Select(list => (list[0], list[1])).ToArray();
    }

    public static Account[] AccountsOf((UInt128 Debit, UInt128 Credit)[] pairs) =>
        pairs.SelectMany(pair => new[] { pair.Debit, pair.Credit }).Select(id => new Account { Id = id, Ledger = 1, Code = 1 }).ToArray();

    public static Transfer Payment((UInt128 Debit, UInt128 Credit) pair) => new()
    {
        Id = TransferIds.New(pair.Debit, ShardCount),
        DebitAccountId = pair.Debit,
        CreditAccountId = pair.Credit,
        Amount = 1,
        Ledger = 1,
        Code = 1,
    };

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
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
