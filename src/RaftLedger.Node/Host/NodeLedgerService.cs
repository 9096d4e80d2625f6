using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Node.Api;
using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport;

namespace RaftLedger.Node.Host;

/// <summary>
/// The node's implementation of the client API's <see cref="ILedgerService"/>: splits each batch by shard
/// (account → shard by jump hash), sends each part to its shard's leader (here or on another node), and puts
/// the results back in input order. Transfers go to their home shard (<c>shard(transfer id)</c>), whose leader
/// runs the cross-shard protocol when the accounts live elsewhere; a linked chain of accounts that spans shards
/// is refused (account chains are not coordinated across shards).
/// </summary>
internal sealed partial class NodeLedgerService(HostOptions options, ClusterMap map, MultiRaftHost host, PeerTransport transport, ShardRequestRouter router) : ILedgerService
{
    public bool IsReady
    {
        get
        {
            if (host.Completion.IsCompleted)
            {
                return false; // The scheduler stopped (or failed): nothing here is served any more.
            }

            for (var shard = 0; shard < host.ShardCount; shard++)
            {
                var view = host.View(shard);
                if (view.Hosted && view.Leader == 0)
                {
                    return false;
                }
            }

            return true;
        }
    }

    public async ValueTask<ServiceResult<AccountEventResult[]>> CreateAccountsAsync(ReadOnlyMemory<Account> accounts, CancellationToken cancellationToken)
    {
        var shards = new int[accounts.Length];
        var refused = new bool[accounts.Length];
        for (var i = 0; i < accounts.Length; i++)
        {
            shards[i] = map.ShardOf(accounts.Span[i].Id);
        }

        MarkChainsSpanningShards(accounts.Length, i => (accounts.Span[i].Flags & AccountFlags.Linked) != 0, shards, refused);
        var parts = Split(shards, refused);
        var payloads = new byte[parts.Count][];
        var index = 0;
        foreach (var (_, events) in parts)
        {
            var batch = new Account[events.Count];
            for (var j = 0; j < events.Count; j++)
            {
                batch[j] = accounts.Span[events[j]];
            }

            payloads[index++] = ShardPayload.EncodeAccounts(batch);
        }

        var calls = CallAll(parts, ShardRequestKind.CreateAccounts, payloads, cancellationToken);
        var outcome = await Gather(calls).ConfigureAwait(false);
        if (outcome is { } failure)
        {
            return ServiceResult<AccountEventResult[]>.Failed(failure.Status, failure.Detail, failure.RetryAfter);
        }

        var results = new AccountEventResult[accounts.Length];
        for (var i = 0; i < results.Length; i++)
        {
            results[i] = new AccountEventResult(CreateAccountResult.LinkedEventFailed, 0);
        }

        index = 0;
        foreach (var (_, events) in parts)
        {
            var payload = calls[index++].Result.Payload.Span;
            for (var j = 0; j < events.Count; j++)
            {
                var (status, timestamp) = ShardPayload.ReadWriteResult(payload, j);
                results[events[j]] = new AccountEventResult((CreateAccountResult)status, timestamp);
            }
        }

        return ServiceResult<AccountEventResult[]>.Ok(results);
    }

    /// <summary>
    /// Each transfer goes to its home shard, <c>shard(transfer id)</c>, which holds its record and coordinates it
    /// when its accounts live elsewhere; a linked chain goes whole to the home of its first event.
    /// </summary>
    public async ValueTask<ServiceResult<TransferEventResult[]>> CreateTransfersAsync(ReadOnlyMemory<Transfer> transfers, CancellationToken cancellationToken)
    {
        var shards = HomeShards(transfers.Span);
        var parts = Split(shards, new bool[transfers.Length]);
        var payloads = new byte[parts.Count][];
        var index = 0;
        foreach (var (_, events) in parts)
        {
            var batch = new Transfer[events.Count];
            for (var j = 0; j < events.Count; j++)
            {
                batch[j] = transfers.Span[events[j]];
            }

            payloads[index++] = ShardPayload.EncodeTransfers(batch);
        }

        var calls = CallAll(parts, ShardRequestKind.CreateTransfers, payloads, cancellationToken);
        var outcome = await Gather(calls).ConfigureAwait(false);
        if (outcome is { } failure)
        {
            return ServiceResult<TransferEventResult[]>.Failed(failure.Status, failure.Detail, failure.RetryAfter);
        }

        var results = new TransferEventResult[transfers.Length];
        index = 0;
        foreach (var (_, events) in parts)
        {
            var payload = calls[index++].Result.Payload.Span;
            for (var j = 0; j < events.Count; j++)
            {
                var (status, timestamp) = ShardPayload.ReadWriteResult(payload, j);
                results[events[j]] = new TransferEventResult((CreateTransferResult)status, timestamp);
            }
        }

        return ServiceResult<TransferEventResult[]>.Ok(results);
    }

    /// <summary>
    /// Starts every part's call, only once all payloads are encoded: the parts for shards this node leads then
    /// reach the scheduler's inbox back to back (<see cref="MultiRaftHost.ExecuteAsync"/> writes it before its
    /// first await), so an idle scheduler that wakes on the first part usually finds the others too and proposes
    /// them in the same round, persisted with one fsync. Encoding between the writes left a window in which the
    /// woken loop took the first part alone and the rest waited a whole round (an extra fsync).
    /// </summary>
    private Task<ShardCallResult>[] CallAll(List<(int Shard, List<int> Events)> parts, ShardRequestKind kind, byte[][] payloads, CancellationToken cancellationToken)
    {
        Invariant.Check(payloads.Length == parts.Count);
        var calls = new Task<ShardCallResult>[parts.Count];
        for (var i = 0; i < calls.Length; i++)
        {
            calls[i] = router.CallAsync(parts[i].Shard, kind, payloads[i], cancellationToken);
        }

        return calls;
    }

    /// <summary>The home shard of each event: its id's shard, or for an event inside a linked chain, the chain's first event's.</summary>
    private int[] HomeShards(ReadOnlySpan<Transfer> transfers)
    {
        var shards = new int[transfers.Length];
        var chainHome = -1;
        for (var i = 0; i < transfers.Length; i++)
        {
            shards[i] = chainHome >= 0 ? chainHome : map.ShardOf(transfers[i].Id);
            chainHome = (transfers[i].Flags & TransferFlags.Linked) != 0 ? shards[i] : -1;
        }

        return shards;
    }

    /// <summary>
    /// A linked chain whose events live on more than one shard cannot be all-or-nothing yet: every event of it
    /// is refused (not sent), so nothing of the chain is applied.
    /// </summary>
    private static void MarkChainsSpanningShards(int count, Func<int, bool> isLinked, int[] shards, bool[] refused)
    {
        var start = 0;
        for (var i = 0; i < count; i++)
        {
            if (isLinked(i) && i < count - 1)
            {
                continue;
            }

            var spans = false;
            for (var j = start; j <= i; j++)
            {
                spans |= shards[j] != shards[start] || refused[j];
            }

            for (var j = start; j <= i && spans && i > start; j++)
            {
                refused[j] = true;
            }

            start = i + 1;
        }
    }

    /// <summary>Groups event positions by shard, keeping input order within each shard, skipping refused events.</summary>
    private static List<(int Shard, List<int> Events)> Split(int[] shards, bool[] refused)
    {
        var byShard = new SortedDictionary<int, List<int>>();
        for (var i = 0; i < shards.Length; i++)
        {
            if (refused[i])
            {
                continue;
            }

            if (!byShard.TryGetValue(shards[i], out var list))
            {
                list = [];
                byShard.Add(shards[i], list);
            }

            list.Add(i);
        }

        var parts = new List<(int, List<int>)>(byShard.Count);
        foreach (var (shard, events) in byShard)
        {
            parts.Add((shard, events));
        }

        return parts;
    }

    private readonly record struct Failure(ServiceStatus Status, string Detail, TimeSpan RetryAfter);

    /// <summary>
    /// Waits for every shard's part. All Ok → null. When some part failed: if every part is known not to have been
    /// applied, that status (503); otherwise OutcomeUnknown (504), because some shard may have applied its part
    /// and only a retry with the same ids (idempotent) can tell the client what happened.
    /// </summary>
    private async Task<Failure?> Gather(Task<ShardCallResult>[] calls)
    {
        await Task.WhenAll(calls).ConfigureAwait(false);
        var anyFailed = false;
        var anyMayHaveApplied = false;
        ShardCallResult firstFailure = default;
        foreach (var call in calls)
        {
            var result = call.Result;
            if (result.IsOk || result.Status == ShardCallStatus.OutcomeUnknown)
            {
                anyMayHaveApplied = true;
            }

            if (!result.IsOk && !anyFailed)
            {
                anyFailed = true;
                firstFailure = result;
            }
        }

        if (!anyFailed)
        {
            return null;
        }

        if (anyMayHaveApplied)
        {
            return new Failure(ServiceStatus.OutcomeUnknown, $"{firstFailure.Detail}; other shards of the batch may have applied their part, retry the whole batch with the same ids", TimeSpan.Zero);
        }

        var status = firstFailure.Status switch
        {
            ShardCallStatus.NotLeader or ShardCallStatus.NoLeader => ServiceStatus.NoLeader,
            _ => ServiceStatus.Unavailable,
        };
        return new Failure(status, firstFailure.Detail, options.TickInterval * options.ElectionTimeoutTicks);
    }
}
