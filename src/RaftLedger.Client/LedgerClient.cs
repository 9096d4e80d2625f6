using Grpc.Core;
using RaftLedger.Client.Internal;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Client;

/// <summary>
/// A client of a RaftLedger cluster. Thread-safe; create one per application and share it.
/// <para>
/// <b>Routing.</b> The client reads the cluster map (<c>GetCluster</c>) and sends each event to the
/// leader of its shard: an account to <c>shard(account id)</c>, a transfer to its home shard
/// <c>shard(transfer id)</c> (make ids with <see cref="NewTransferId"/> so that the home shard is
/// the debit account's). It re-reads the map every <see cref="LedgerClientOptions.ClusterMapRefreshInterval"/>
/// and after failures, and falls back to any node (every node forwards to the leader) when the
/// leader is unknown or unreachable.
/// </para>
/// <para>
/// <b>Batching.</b> Concurrent create calls whose shards are led by the same node are coalesced
/// into one request of up to 8189 events while a request to that node is in flight (up to
/// <see cref="LedgerClientOptions.RequestsInFlightPerNodeMax"/>); an idle client sends at once.
/// <see cref="Statistics"/> counts calls, requests and the events they carried.
/// </para>
/// <para>
/// <b>Retries.</b> Timeouts, UNAVAILABLE (503), DEADLINE_EXCEEDED (504) and connection failures are
/// retried with the same events and ids, with exponential backoff and jitter, until the call's
/// deadline. A retried event that the first attempt had already applied answers <c>exists</c>
/// (idempotency), never a second transfer: treat <see cref="TransferOutcome.IsCreatedOrExists"/>
/// as success. A node answers for a whole request, which carries several shards' events, so an
/// event can be retried (and answer <c>exists</c>) because another shard in its request failed.
/// At the deadline an unanswered event reports <see cref="EventOutcome.NotApplied"/> or
/// <see cref="EventOutcome.Unknown"/> instead of throwing.
/// </para>
/// </summary>
public sealed class LedgerClient : IAsyncDisposable
{
    private readonly LedgerClientOptions options;
    private readonly TimeProvider time;
    private readonly StatisticsCounters statistics = new();
    private readonly ClusterRouter router;
    private readonly CreatePipeline<Transfer> transfers;
    private readonly CreatePipeline<Account> accounts;
    private int disposed;

    /// <summary>Creates a client; it connects lazily (or call <see cref="ConnectAsync"/> to fail fast).</summary>
    /// <exception cref="ArgumentException">An option is out of range (the message names it).</exception>
    public LedgerClient(LedgerClientOptions options)
        : this(options, TimeProvider.System, address => new GrpcNodeConnection(address))
    {
    }

    /// <summary>For tests: fake time and fake nodes.</summary>
    internal LedgerClient(LedgerClientOptions options, TimeProvider time, Func<Uri, INodeConnection> connect)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        this.time = time;
        router = new ClusterRouter(options, time, statistics, connect);
        transfers = new CreatePipeline<Transfer>(TransferKind.Instance, router, options, time, statistics);
        accounts = new CreatePipeline<Account>(AccountKind.Instance, router, options, time, statistics);
    }

    /// <summary>Counters of calls, requests, retries and map refreshes so far.</summary>
    public ClientStatistics Statistics => statistics.Snapshot();

    /// <summary>The client's current merged view of the cluster map; null before the first successful read.</summary>
    public ClusterMap? ClusterMap => router.Table?.Map;

    /// <summary>
    /// Reads the cluster map now, retrying until <see cref="LedgerClientOptions.CallTimeout"/>. Optional:
    /// every call does this first when needed.
    /// </summary>
    /// <exception cref="LedgerUnavailableException">No node answered in time.</exception>
    public async Task<ClusterMap> ConnectAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var route = await router.GetTableAsync(router.DeadlineAfter(options.CallTimeout), cancellationToken);
        return route.Map;
    }

    /// <summary>
    /// A new transfer id whose home shard is <paramref name="debitAccountId"/>'s shard (see
    /// <see cref="TransferIds"/>). Needs the shard count: call <see cref="ConnectAsync"/> first.
    /// </summary>
    /// <exception cref="InvalidOperationException">The cluster map has not been read yet.</exception>
    public UInt128 NewTransferId(UInt128 debitAccountId)
    {
        var map = ClusterMap ?? throw new InvalidOperationException("The shard count is not known yet: await ConnectAsync() once before making transfer ids.");
        return TransferIds.New(debitAccountId, map.ShardCount);
    }

    /// <summary>
    /// Creates transfers. Events are routed to their home shards' leaders, batched with concurrent
    /// calls, and retried with the same ids until answered or until the deadline. Linked chains are
    /// kept whole (sent to the shard of the chain's first event).
    /// </summary>
    /// <param name="events">1 to 8189 transfers (ids chosen by the caller, e.g. with <see cref="NewTransferId"/>); copied, so the buffer may be reused at once.</param>
    /// <param name="timeout">How long to keep trying; default <see cref="LedgerClientOptions.CallTimeout"/>.</param>
    /// <param name="cancellationToken">Stops waiting; events already sent may still be applied (retry with the same ids to find out).</param>
    /// <returns>One outcome per event in input order; <see cref="CreateReply{TOutcome}.IsDefinite"/> is false if the deadline passed first.</returns>
    /// <exception cref="LedgerRequestException">The cluster refused the request as malformed; nothing was applied.</exception>
    /// <exception cref="LedgerUnavailableException">The cluster map could not be read before the deadline; nothing was sent.</exception>
    public async Task<CreateReply<TransferOutcome>> CreateTransfersAsync(ReadOnlyMemory<Transfer> events, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var call = await RunAsync(transfers, events.ToArray(), timeout, cancellationToken);
        var outcomes = new TransferOutcome[events.Length];
        var definite = true;
        for (var i = 0; i < outcomes.Length; i++)
        {
            outcomes[i] = ToTransferOutcome(call, i);
            definite &= outcomes[i].Outcome == EventOutcome.Answered;
        }

        return new CreateReply<TransferOutcome>(outcomes, definite);
    }

    /// <summary>Creates one transfer (batched with concurrent calls); see <see cref="CreateTransfersAsync"/>.</summary>
    public async Task<TransferOutcome> CreateTransferAsync(Transfer transfer, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var call = await RunAsync(transfers, new[] { transfer }, timeout, cancellationToken);
        return ToTransferOutcome(call, 0);
    }

    /// <summary>Creates accounts: routed by account id, batched and retried like <see cref="CreateTransfersAsync"/>.</summary>
    /// <param name="events">1 to 8189 accounts (ids chosen by the caller, e.g. with <see cref="AccountIds.New()"/>); copied, so the buffer may be reused at once.</param>
    /// <param name="timeout">How long to keep trying; default <see cref="LedgerClientOptions.CallTimeout"/>.</param>
    /// <param name="cancellationToken">Stops waiting; events already sent may still be applied.</param>
    /// <returns>One outcome per event in input order.</returns>
    /// <exception cref="LedgerRequestException">The cluster refused the request as malformed; nothing was applied.</exception>
    /// <exception cref="LedgerUnavailableException">The cluster map could not be read before the deadline; nothing was sent.</exception>
    public async Task<CreateReply<AccountOutcome>> CreateAccountsAsync(ReadOnlyMemory<Account> events, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var call = await RunAsync(accounts, events.ToArray(), timeout, cancellationToken);
        var outcomes = new AccountOutcome[events.Length];
        var definite = true;
        for (var i = 0; i < outcomes.Length; i++)
        {
            var answer = call.Answers[i];
            if (answer.StatusName is null)
            {
                outcomes[i] = new AccountOutcome { Outcome = call.Outcomes[i], StatusName = "", Problem = call.Problem };
                definite = false;
                continue;
            }

            var known = StatusNames<CreateAccountResult>.TryParse(answer.StatusName, out var status, out var name);
            outcomes[i] = new AccountOutcome { Status = known ? status : null, StatusName = name, Timestamp = answer.Timestamp };
        }

        return new CreateReply<AccountOutcome>(outcomes, definite);
    }

    /// <summary>The accounts that exist among <paramref name="ids"/> (at most 8189), in request order.</summary>
    /// <exception cref="LedgerUnavailableException">No node answered before the deadline.</exception>
    public Task<Account[]> LookupAccountsAsync(ReadOnlyMemory<UInt128> ids, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var array = CheckIds(ids);
        return ReadAsync(array.Length > 0 ? array[0] : null, (node, left, token) => node.LookupAccountsAsync(array, left, token), timeout, cancellationToken);
    }

    /// <summary>The transfers that exist among <paramref name="ids"/> (at most 8189), in request order.</summary>
    /// <exception cref="LedgerUnavailableException">No node answered before the deadline.</exception>
    public Task<Transfer[]> LookupTransfersAsync(ReadOnlyMemory<UInt128> ids, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var array = CheckIds(ids);
        return ReadAsync(array.Length > 0 ? array[0] : null, (node, left, token) => node.LookupTransfersAsync(array, left, token), timeout, cancellationToken);
    }

    /// <summary>The account, or null when it does not exist.</summary>
    public async Task<Account?> LookupAccountAsync(UInt128 id, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var found = await LookupAccountsAsync(new[] { id }, timeout, cancellationToken);
        return found.Length == 0 ? null : found[0];
    }

    /// <summary>The transfer, or null when it does not exist.</summary>
    public async Task<Transfer?> LookupTransferAsync(UInt128 id, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var found = await LookupTransfersAsync(new[] { id }, timeout, cancellationToken);
        return found.Length == 0 ? null : found[0];
    }

    /// <summary>Transfers of an account matching <paramref name="filter"/> (limit 1..8189; flags must include debits and/or credits).</summary>
    /// <exception cref="LedgerRequestException">The filter is invalid (the message says why).</exception>
    public Task<Transfer[]> GetAccountTransfersAsync(AccountFilter filter, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        ReadAsync(filter.AccountId, (node, left, token) => node.GetAccountTransfersAsync(filter, left, token), timeout, cancellationToken);

    /// <summary>Balance history of an account with the <c>history</c> flag, matching <paramref name="filter"/>.</summary>
    /// <exception cref="LedgerRequestException">The filter is invalid (the message says why).</exception>
    public Task<AccountBalance[]> GetAccountBalancesAsync(AccountFilter filter, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        ReadAsync(filter.AccountId, (node, left, token) => node.GetAccountBalancesAsync(filter, left, token), timeout, cancellationToken);

    /// <summary>Re-reads the cluster map from every known node now and returns the merged view.</summary>
    /// <exception cref="LedgerUnavailableException">No node answered.</exception>
    public async Task<ClusterMap> RefreshClusterMapAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        var route = await router.RefreshAsync(force: true) ?? throw new LedgerUnavailableException("No node answered the cluster-map request.");
        return route.Map;
    }

    /// <summary>Stops the background map refresh and closes the connections. Calls still in flight fail with <see cref="ObjectDisposedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0)
        {
            await router.DisposeAsync();
        }
    }

    /// <summary>
    /// Runs a create call on <paramref name="events"/>, an array the client owns: retries may still
    /// read it after a cancelled caller has reused its own buffer, so public methods pass a copy.
    /// </summary>
    private async Task<CreateCall<TEvent>> RunAsync<TEvent>(CreatePipeline<TEvent> pipeline, TEvent[] events, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        if (events.Length is 0 or > ClientLimits.BatchEventsMax)
        {
            throw new ArgumentOutOfRangeException(nameof(events), events.Length, $"A create call takes 1 to {ClientLimits.BatchEventsMax} events; split larger batches (the client batches concurrent calls for you).");
        }

        cancellationToken.ThrowIfCancellationRequested();
        Interlocked.Increment(ref statistics.CreateCalls);
        Interlocked.Add(ref statistics.CreateEvents, events.Length);
        var call = new CreateCall<TEvent>(events, router.DeadlineAfter(Timeout(timeout)), cancellationToken);
        await pipeline.SubmitAsync(call);
        await (cancellationToken.CanBeCanceled ? call.Done.WaitAsync(cancellationToken) : call.Done);
        return call;
    }

    private static TransferOutcome ToTransferOutcome(CreateCall<Transfer> call, int index)
    {
        var answer = call.Answers[index];
        if (answer.StatusName is null)
        {
            return new TransferOutcome { Outcome = call.Outcomes[index], StatusName = "", Problem = call.Problem };
        }

        var known = StatusNames<CreateTransferResult>.TryParse(answer.StatusName, out var status, out var name);
        return new TransferOutcome { Status = known ? status : null, StatusName = name, Timestamp = answer.Timestamp };
    }

    /// <summary>
    /// A read: sent to the leader of <paramref name="routingId"/>'s shard when known (it answers
    /// without a hop), retried on any node after failures until the deadline. Reads change nothing,
    /// so every failure that retrying can fix is retried.
    /// </summary>
    private async Task<T> ReadAsync<T>(UInt128? routingId, Func<INodeConnection, TimeSpan, CancellationToken, Task<T>> read, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        var deadline = router.DeadlineAfter(Timeout(timeout));
        var route = await router.GetTableAsync(deadline, cancellationToken);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, router.Stopping);
        var shard = routingId is { } id ? ShardRouter.ShardOf(id, route.ShardCount) : -1;
        for (var attempt = 0; ; attempt++)
        {
            var connection = router.Pick(route, shard, out _);
            Interlocked.Increment(ref statistics.ReadRequests);
            var remaining = router.Remaining(deadline);
            try
            {
                return await read(connection, remaining < options.RequestTimeout ? remaining : options.RequestTimeout, linked.Token);
            }
            catch (RpcException exception) when (linked.IsCancellationRequested)
            {
                cancellationToken.ThrowIfCancellationRequested();
                throw new ObjectDisposedException($"{nameof(LedgerClient)} was disposed while the read was in flight.", exception);
            }
            catch (RpcException exception) when (!linked.IsCancellationRequested)
            {
                var problem = $"{connection.Address}: {exception.Status.StatusCode}: {exception.Status.Detail}";
                if (RetryPolicy.Classify(exception) == FailureKind.Fatal)
                {
                    throw new LedgerRequestException($"The cluster refused the request ({problem}).", exception);
                }

                router.ReportFailure(connection, nodeLooksDown: !RetryPolicy.NodeAnswered(exception));
                remaining = router.Remaining(deadline);
                if (remaining <= TimeSpan.Zero)
                {
                    throw new LedgerUnavailableException($"No answer before the deadline; last failure: {problem}.", exception);
                }

                var delay = RetryPolicy.Backoff(attempt, options.RetryBackoffInitial, options.RetryBackoffMax, Random.Shared.NextDouble());
                await Task.Delay(delay < remaining ? delay : remaining, time, linked.Token);
                route = router.Table ?? route;
            }
        }
    }

    private TimeSpan Timeout(TimeSpan? timeout)
    {
        if (timeout is { } given && given <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), given, "The timeout must be positive.");
        }

        return timeout ?? options.CallTimeout;
    }

    private static UInt128[] CheckIds(ReadOnlyMemory<UInt128> ids)
    {
        if (ids.Length > ClientLimits.LookupIdsMax)
        {
            throw new ArgumentOutOfRangeException(nameof(ids), ids.Length, $"A lookup takes at most {ClientLimits.LookupIdsMax} ids; split larger ones.");
        }

        return ids.ToArray();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
}
