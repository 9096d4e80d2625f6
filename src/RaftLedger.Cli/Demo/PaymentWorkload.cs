using System.Diagnostics;
using System.Net;
using RaftLedger.Cli.Client;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Cli.Demo;

/// <summary>
/// Concurrent clients paying between customers (of the same shard, or of two shards for
/// <see cref="DemoOptions.CrossShardPercent"/> of the payments). A request that fails (503, 504,
/// connection refused, timeout) is retried unchanged — same ids — on another node until it is
/// answered, so a transfer counts as acknowledged exactly when the cluster said so.
/// </summary>
public sealed class PaymentWorkload
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(50);
    private readonly LedgerHttpClient client;
    private readonly Func<Uri[]> liveNodes;
    private readonly DemoAccounts accounts;
    private readonly DemoOptions options;
    private readonly object gate = new();
    private readonly List<UInt128> acknowledged = [];
    private long nextTransfer;
    private long rejected;
    private long unavailable;
    private long unknown;
    private long unreachable;

    public PaymentWorkload(LedgerHttpClient client, Func<Uri[]> liveNodes, DemoAccounts accounts, DemoOptions options)
    {
        this.client = client;
        this.liveNodes = liveNodes;
        this.accounts = accounts;
        this.options = options;
    }

    public LatencyWindow Latency { get; } = new();

    public long Rejected => Interlocked.Read(ref rejected);

    public long Unavailable => Interlocked.Read(ref unavailable);

    public long Unknown => Interlocked.Read(ref unknown);

    public long Unreachable => Interlocked.Read(ref unreachable);

    public int AcknowledgedCount
    {
        get
        {
            lock (gate)
            {
                return acknowledged.Count;
            }
        }
    }

    public UInt128[] Acknowledged()
    {
        lock (gate)
        {
            return acknowledged.ToArray();
        }
    }

    /// <summary>
    /// A fresh transfer id whose home shard is <paramref name="homeAccount"/>'s (like the SDK's id generator), so a
    /// payment between two accounts of one shard commits in one Raft write. Never reused: retries are idempotent.
    /// </summary>
    public UInt128 NewTransferId(UInt128 homeAccount)
    {
        var shard = ShardRouter.ShardOf(homeAccount, accounts.Banks.Length);
        while (true)
        {
            var id = new UInt128((ulong)options.Seed + 1, (ulong)Interlocked.Increment(ref nextTransfer));
            if (ShardRouter.ShardOf(id, accounts.Banks.Length) == shard)
            {
                return id;
            }
        }
    }

    /// <summary>Runs every worker until <paramref name="stop"/>; a batch in flight at stop is abandoned (not acknowledged).</summary>
    public Task RunAsync(CancellationToken stop) =>
        Task.WhenAll(Enumerable.Range(0, options.Workers).Select(worker => WorkerAsync(new Random(options.Seed + 1000 + worker), stop)));

    private async Task WorkerAsync(Random random, CancellationToken stop)
    {
        var next = random.Next();
        while (!stop.IsCancellationRequested)
        {
            var batch = NewBatch(random);
            await SendUntilAnsweredAsync(batch, next++, stop);
        }
    }

    private Transfer[] NewBatch(Random random)
    {
        var batch = new Transfer[options.BatchSize];
        for (var i = 0; i < batch.Length; i++)
        {
            var shard = random.Next(accounts.Customers.Length);
            var customers = accounts.Customers[shard];
            var debit = random.Next(customers.Length);
            var credit = customers[(debit + 1 + random.Next(customers.Length - 1)) % customers.Length];
            if (accounts.Customers.Length > 1 && random.Next(100) < options.CrossShardPercent)
            {
                // A payment to a customer of another shard: the two legs live on different shards.
                var other = accounts.Customers[(shard + 1 + random.Next(accounts.Customers.Length - 1)) % accounts.Customers.Length];
                credit = other[random.Next(other.Length)];
            }

            batch[i] = new Transfer
            {
                Id = NewTransferId(customers[debit]),
                DebitAccountId = customers[debit],
                CreditAccountId = credit,
                Amount = (UInt128)random.Next(1, 1000),
                Ledger = DemoAccounts.Ledger,
                Code = DemoAccounts.Code,
            };
        }

        return batch;
    }

    /// <summary>Sends one batch, retrying on other nodes until it is answered; returns the results, or null at stop.</summary>
    public async Task<CreateResult[]?> SendUntilAnsweredAsync(Transfer[] batch, int nodeCursor, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var nodes = liveNodes();
            var node = nodes[(int)((uint)nodeCursor++ % (uint)nodes.Length)];
            var started = Stopwatch.GetTimestamp();
            try
            {
                var answer = await client.CreateTransfersAsync(node, batch, stop);
                if (answer.IsOk)
                {
                    Latency.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds, Count(batch, answer.Value!));
                    return answer.Value;
                }

                Interlocked.Increment(ref answer.StatusCode == HttpStatusCode.GatewayTimeout ? ref unknown : ref unavailable);
            }
            catch (HttpRequestException)
            {
                Interlocked.Increment(ref unreachable);
            }
            catch (TaskCanceledException) when (!stop.IsCancellationRequested)
            {
                // The client's own timeout: the outcome is unknown, so retry with the same ids.
                Interlocked.Increment(ref unknown);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return null;
            }

            await Task.Delay(RetryDelay, CancellationToken.None);
        }

        return null;
    }

    /// <summary>Records the acknowledged transfers of an answered batch; returns how many were created.</summary>
    private int Count(Transfer[] batch, CreateResult[] results)
    {
        var created = 0;
        lock (gate)
        {
            for (var i = 0; i < results.Length; i++)
            {
                // "exists" answers a retry of a transfer an earlier, unanswered attempt applied.
                if (results[i].IsCreated || results[i].Status == "exists")
                {
                    acknowledged.Add(batch[i].Id);
                    created++;
                }
                else
                {
                    Interlocked.Increment(ref rejected);
                }
            }
        }

        return created;
    }
}
