using System.Net;
using RaftLedger.Cli.Client;
using RaftLedger.Cli.Demo;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Cli.Verify;

/// <summary>
/// Jepsen's bank, stricter (issue 8 §1): clients pay between guarded accounts (amounts 1..5), some payments
/// two-phase (pending, later posted or voided; half of them with a timeout of 1–3 s, posted or voided soon, around
/// their expiry or never), some linked pairs, and read single accounts and all accounts.
/// Every attempt goes to a random node and is recorded; an unanswered transfer operation is retried with the
/// same ids until the cluster answers or the workload stops.
/// </summary>
public sealed class BankWorkload
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(100);

    /// <summary>Share of pending transfers sent with a timeout (percent).</summary>
    private const int TimedPendingPercent = 50;

    private const int TimeoutSecondsMin = 1;
    private const int TimeoutSecondsMax = 3;

    /// <summary>
    /// A late post/void is due this much before to this much after the pending transfer's expiry (history clock), so
    /// some reach the cluster just before it and some just after: the post/void and the expiry race.
    /// </summary>
    private const int LateBeforeExpiryMillisMax = 400;
    private const int LateAfterExpiryMillisMax = 600;

    /// <summary>
    /// Pending transfers a client holds to post or void later: a few, so one waiting for its expiry is not pushed out
    /// by the next one before it is due.
    /// </summary>
    private const int OpenPendingsMax = 4;
    private readonly LedgerHttpClient client;
    private readonly IReadOnlyList<(ulong Id, Uri Url)> nodes;
    private readonly DemoAccounts accounts;
    private readonly VerifyOptions options;
    private readonly HistoryRecorder history;
    private readonly UInt128[] allCustomers;
    private long nextTransfer;

    public BankWorkload(LedgerHttpClient client, IReadOnlyList<(ulong Id, Uri Url)> nodes, DemoAccounts accounts, VerifyOptions options, HistoryRecorder history)
    {
        this.client = client;
        this.nodes = nodes;
        this.accounts = accounts;
        this.options = options;
        this.history = history;
        allCustomers = accounts.Customers.SelectMany(c => c).ToArray();
    }

    /// <summary>
    /// A fresh transfer id, unique in the run: the high half carries the seed, so ids differ across seeds. A
    /// transfer is stored on the shard of its id, so the id is drawn on the debit account's shard: same-shard
    /// pairs then stay on one shard, and only <c>--cross-shard</c> pairs take the two-phase commit path.
    /// </summary>
    public UInt128 NewTransferId(UInt128 debitAccountId)
    {
        var home = ShardRouter.ShardOf(debitAccountId, options.ShardCount);
        while (true)
        {
            var id = new UInt128((ulong)options.Seed + 1, (ulong)Interlocked.Increment(ref nextTransfer));
            if (ShardRouter.ShardOf(id, options.ShardCount) == home)
            {
                return id;
            }
        }
    }

    /// <summary>Funds every customer from its shard's operator account (retried until answered); the transfers are in the history.</summary>
    public async Task FundAsync(CancellationToken cancellationToken)
    {
        var funding = new List<Transfer>();
        for (var shard = 0; shard < accounts.Banks.Length; shard++)
        {
            foreach (var customer in accounts.Customers[shard])
            {
                funding.Add(Payment(accounts.Banks[shard], customer, options.OpeningBalance));
            }
        }

        var op = history.Begin(-1, OpKind.Transfers, transfers: funding.ToArray());
        await SendTransfersAsync(op, new Random(options.Seed), cancellationToken, cancellationToken);
        // "exists" answers a retry whose earlier, unanswered attempt created the funding.
        if (op.Outcome != OpOutcome.Ok || op.Statuses.Any(s => s is not ("created" or "exists")))
        {
            throw new VerifyException($"funding the accounts failed: {(op.Outcome == OpOutcome.Ok ? string.Join(", ", op.Statuses.Distinct()) : "no answer")}.");
        }
    }

    /// <summary>Runs the clients until <paramref name="stop"/>; an operation in flight finishes its current attempt (bounded by the request timeout).</summary>
    public Task RunAsync(CancellationToken stop, CancellationToken abort) =>
        Task.WhenAll(Enumerable.Range(0, options.Clients).Select(c => Task.Run(() => ClientAsync(c, new Random(HashCode.Combine(options.Seed, c)), stop, abort))));

    /// <summary>When a timed pending transfer is posted or voided: as one without timeout, around its expiry, or never.</summary>
    private enum FinishPlan
    {
        Soon,
        Late,
        Never,
    }

    /// <summary>A pending transfer a client will post or void once the history clock reaches <see cref="DueMicros"/>.</summary>
    private readonly record struct OpenPending(Transfer Transfer, long DueMicros);

    private async Task ClientAsync(int clientIndex, Random random, CancellationToken stop, CancellationToken abort)
    {
        var open = new List<OpenPending>(OpenPendingsMax);
        while (!stop.IsCancellationRequested)
        {
            var roll = random.Next(100);
            var due = open.FindIndex(p => history.NowMicros >= p.DueMicros);
            if (due >= 0 && roll < 30)
            {
                var finished = open[due].Transfer;
                open.RemoveAt(due);
                await SendTransfersAsync(history.Begin(clientIndex, OpKind.Transfers, transfers: [Finish(finished, random)]), random, stop, abort);
            }
            else if (roll < 60)
            {
                var batch = Enumerable.Range(0, random.Next(1, 4)).Select(_ => RandomPayment(random, TransferFlags.None)).ToArray();
                await SendTransfersAsync(history.Begin(clientIndex, OpKind.Transfers, transfers: batch), random, stop, abort);
            }
            else if (roll < 70)
            {
                if (await SendPendingAsync(clientIndex, random, stop, abort) is { } created)
                {
                    KeepOpen(open, created);
                }
            }
            else if (roll < 78)
            {
                await SendTransfersAsync(history.Begin(clientIndex, OpKind.Transfers, transfers: LinkedPair(random)), random, stop, abort);
            }
            else if (roll < 82)
            {
                await SendTransfersAsync(history.Begin(clientIndex, OpKind.Transfers, transfers: [BalancingPayment(random)]), random, stop, abort);
            }
            else if (roll < 95)
            {
                await ReadAsync(history.Begin(clientIndex, OpKind.ReadAccount, accountIds: [allCustomers[random.Next(allCustomers.Length)]]), random, abort);
            }
            else
            {
                await ReadAsync(history.Begin(clientIndex, OpKind.ReadAll, accountIds: accounts.All.ToArray()), random, abort);
            }
        }
    }

    /// <summary>Holds a new pending transfer to finish; when full, the oldest is never posted or voided (left open, or to expire).</summary>
    private static void KeepOpen(List<OpenPending> open, OpenPending created)
    {
        if (open.Count == OpenPendingsMax)
        {
            open.RemoveAt(0);
        }

        open.Add(created);
    }

    /// <summary>
    /// Sends a pending transfer, with a timeout or without; returns it with the time its post/void is due, or null when
    /// it was not created or is to be left to expire.
    /// </summary>
    private async Task<OpenPending?> SendPendingAsync(int clientIndex, Random random, CancellationToken stop, CancellationToken abort)
    {
        var pending = RandomPayment(random, TransferFlags.Pending);
        var timed = random.Next(100) < TimedPendingPercent;
        pending.TimeoutSeconds = timed ? (uint)random.Next(TimeoutSecondsMin, TimeoutSecondsMax + 1) : 0;
        // A timed one is posted/voided soon, around its expiry, or never (a third each).
        var plan = timed ? (FinishPlan)random.Next(3) : FinishPlan.Soon;
        var lateMillis = random.Next(-LateBeforeExpiryMillisMax, LateAfterExpiryMillisMax + 1);
        var op = history.Begin(clientIndex, OpKind.Transfers, transfers: [pending]);
        await SendTransfersAsync(op, random, stop, abort);
        if (op.Outcome != OpOutcome.Ok || op.Statuses[0] != "created" || plan == FinishPlan.Never)
        {
            return null;
        }

        var late = TimeSpan.FromSeconds(pending.TimeoutSeconds) + TimeSpan.FromMilliseconds(lateMillis);
        var due = plan == FinishPlan.Late ? op.InvokeMicros + (long)late.TotalMicroseconds : 0;
        return new OpenPending(op.Transfers[0], due);
    }

    private Transfer RandomPayment(Random random, TransferFlags flags)
    {
        var (debit, credit) = Pair(random);
        var payment = Payment(debit, credit, (ulong)random.Next(1, 6));
        payment.Flags = flags;
        return payment;
    }

    /// <summary>
    /// "Pay up to": a balancing debit of up to the opening balance, which the ledger clamps to what the payer has
    /// (stored with the clamped amount; across shards the clamp is taken on a snapshot and guarded where applied).
    /// </summary>
    private Transfer BalancingPayment(Random random)
    {
        var (debit, credit) = Pair(random);
        var payment = Payment(debit, credit, (ulong)random.Next(1, (int)Math.Min(options.OpeningBalance, int.MaxValue - 1) + 1));
        payment.Flags = TransferFlags.BalancingDebit;
        return payment;
    }

    /// <summary>Two distinct customers: on the same shard, or anywhere with --cross-shard.</summary>
    private (UInt128 Debit, UInt128 Credit) Pair(Random random)
    {
        var pool = options.CrossShard ? allCustomers : accounts.Customers[random.Next(accounts.Customers.Length)];
        var debit = random.Next(pool.Length);
        var credit = (debit + 1 + random.Next(pool.Length - 1)) % pool.Length;
        return (pool[debit], pool[credit]);
    }

    /// <summary>A payment and its way back, linked: both happen or neither (a failing first leg fails the second).</summary>
    private Transfer[] LinkedPair(Random random)
    {
        var first = RandomPayment(random, TransferFlags.Linked);
        var second = Payment(first.CreditAccountId, first.DebitAccountId, (ulong)random.Next(1, 6));
        return [first, second];
    }

    /// <summary>Posts part or all of a pending transfer, or voids it (the full amount, so the stored amount is the sent one).</summary>
    private Transfer Finish(Transfer pending, Random random)
    {
        var post = random.Next(2) == 0;
        var finish = Payment(pending.DebitAccountId, pending.CreditAccountId, post ? (ulong)random.Next(1, (int)pending.Amount + 1) : (ulong)pending.Amount);
        finish.PendingId = pending.Id;
        finish.Flags = post ? TransferFlags.PostPendingTransfer : TransferFlags.VoidPendingTransfer;
        return finish;
    }

    private Transfer Payment(UInt128 debit, UInt128 credit, ulong amount) => new()
    {
        Id = NewTransferId(debit),
        DebitAccountId = debit,
        CreditAccountId = credit,
        Amount = amount,
        Ledger = DemoAccounts.Ledger,
        Code = DemoAccounts.Code,
    };

    /// <summary>Sends until a 200 answer, retrying (same ids) on random nodes; at <paramref name="stop"/> the last attempt decides.</summary>
    private async Task SendTransfersAsync(OpRecord op, Random random, CancellationToken stop, CancellationToken abort)
    {
        var anyUnknown = false;
        while (true)
        {
            var (id, url) = nodes[random.Next(nodes.Count)];
            history.Invoke(op, id);
            var (answered, definite, error, results) = await AttemptAsync(() => client.CreateTransfersAsync(url, op.Transfers, abort));
            if (answered)
            {
                history.Ok(op, results!.Select(r => r.Status).ToArray(), []);
                return;
            }

            anyUnknown |= !definite;
            // A 400 says the request itself is wrong: retrying cannot help (and nothing was applied).
            var final = stop.IsCancellationRequested || abort.IsCancellationRequested || error.StartsWith("400", StringComparison.Ordinal);
            history.NotAnswered(op, final ? !anyUnknown : definite, error, final);
            if (final)
            {
                return;
            }

            await Task.Delay(RetryDelay, CancellationToken.None);
        }
    }

    private async Task ReadAsync(OpRecord op, Random random, CancellationToken abort)
    {
        var (id, url) = nodes[random.Next(nodes.Count)];
        history.Invoke(op, id);
        var (answered, definite, error, accountsRead) = await AttemptAsync(() => client.LookupAccountsAsync(url, op.AccountIds, abort));
        if (answered)
        {
            history.Ok(op, [], accountsRead!);
        }
        else
        {
            history.NotAnswered(op, definite, error, final: true);
        }
    }

    /// <summary>One request: answered (200), or not — definitely nothing applied (503, 4xx) or unknown (504, timeout, broken connection).</summary>
    private static async Task<(bool Answered, bool Definite, string Error, T? Value)> AttemptAsync<T>(Func<Task<HttpAnswer<T>>> call)
    {
        try
        {
            var answer = await call();
            if (answer.IsOk)
            {
                return (true, true, "", answer.Value);
            }

            var definite = answer.StatusCode != HttpStatusCode.GatewayTimeout && (int)answer.StatusCode is >= 400 and < 600;
            return (false, definite, $"{(int)answer.StatusCode} {answer.Problem}", default);
        }
        catch (HttpRequestException exception)
        {
            // A refused connection sent nothing (definite); a reset after the request went out is unknown.
            var refused = exception.InnerException is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused };
            return (false, refused, exception.Message, default);
        }
        catch (OperationCanceledException exception)
        {
            return (false, false, exception is TaskCanceledException ? "client timeout" : "stopped", default);
        }
    }

    /// <summary>The shard of an operation's first account (used to measure failover per shard).</summary>
    public int ShardOf(OpRecord op) => ShardRouter.ShardOf(op.Transfers.Length > 0 ? op.Transfers[0].DebitAccountId : op.AccountIds[0], options.ShardCount);
}
