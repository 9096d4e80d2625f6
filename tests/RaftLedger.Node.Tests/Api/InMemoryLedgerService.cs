using RaftLedger.Ledger;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Api;

/// <summary>
/// A test double of the node host: one real <see cref="LedgerStateMachine"/> on the in-memory store
/// behind a lock, with a logical clock (no Raft). Tests can make the next call fail the way the
/// cluster would (no leader, no quorum, outcome unknown, a crash).
/// </summary>
internal sealed class InMemoryLedgerService : ILedgerService
{
    public const ulong StartNanoseconds = 1_000_000_000_000;
    private readonly object gate = new();
    private readonly LedgerStateMachine ledger = new(new InMemoryLedgerStore());
    private ServiceStatus nextFailure;
    private TimeSpan nextRetryAfter;
    private bool throwNext;

    public bool IsReady { get; set; } = true;

    public ClusterStatus Cluster { get; set; } = new(
        [new NodeInfo(1, "127.0.0.1:8101", "127.0.0.1:7101", true) { GrpcAddress = "127.0.0.1:9101" }],
        [new ShardInfo(1, [1, 2, 3], 1, 4, 120, 118) { Progress = [new ReplicaProgress(2, 120), new ReplicaProgress(3, 117)] }]);

    /// <summary>Service calls made, failed or not (to prove that a refused request never reached it).</summary>
    public int Calls { get; private set; }

    /// <summary>The next service call fails with <paramref name="status"/> and applies nothing.</summary>
    public void FailNext(ServiceStatus status, TimeSpan retryAfter = default)
    {
        lock (gate)
        {
            nextFailure = status;
            nextRetryAfter = retryAfter;
        }
    }

    /// <summary>The next service call throws, as a bug in the host would.</summary>
    public void ThrowNext()
    {
        lock (gate)
        {
            throwNext = true;
        }
    }

    public ValueTask<ServiceResult<AccountEventResult[]>> CreateAccountsAsync(ReadOnlyMemory<Account> accounts, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (TakeFailure(out ServiceResult<AccountEventResult[]> failed))
            {
                return ValueTask.FromResult(failed);
            }

            var statuses = new CreateAccountResult[accounts.Length];
            var timestamp = NextBatchTimestamp(accounts.Length);
            ledger.CreateAccounts(accounts.Span, timestamp, statuses);
            var results = new AccountEventResult[accounts.Length];
            for (var i = 0; i < results.Length; i++)
            {
                var created = statuses[i] == CreateAccountResult.Created;
                results[i] = new AccountEventResult(statuses[i], created ? EventTimestamp(timestamp, accounts.Length, i) : 0);
            }

            return ValueTask.FromResult(ServiceResult<AccountEventResult[]>.Ok(results));
        }
    }

    public ValueTask<ServiceResult<TransferEventResult[]>> CreateTransfersAsync(ReadOnlyMemory<Transfer> transfers, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (TakeFailure(out ServiceResult<TransferEventResult[]> failed))
            {
                return ValueTask.FromResult(failed);
            }

            var batch = transfers.ToArray();
            var statuses = new CreateTransferResult[batch.Length];
            var timestamp = NextBatchTimestamp(batch.Length);
            ledger.CreateTransfers(batch, timestamp, statuses);
            var results = new TransferEventResult[batch.Length];
            for (var j = 0; j < batch.Length; j++)
            {
                var created = statuses[j] == CreateTransferResult.Created;
                results[j] = new TransferEventResult(statuses[j], created ? EventTimestamp(timestamp, batch.Length, j) : 0);
            }

            return ValueTask.FromResult(ServiceResult<TransferEventResult[]>.Ok(results));
        }
    }

    public ValueTask<ServiceResult<Account[]>> LookupAccountsAsync(ReadOnlyMemory<UInt128> ids, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (TakeFailure(out ServiceResult<Account[]> failed))
            {
                return ValueTask.FromResult(failed);
            }

            var found = new Account[ids.Length];
            var count = ledger.LookupAccounts(ids.Span, found);
            return ValueTask.FromResult(ServiceResult<Account[]>.Ok(found[..count]));
        }
    }

    public ValueTask<ServiceResult<Transfer[]>> LookupTransfersAsync(ReadOnlyMemory<UInt128> ids, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (TakeFailure(out ServiceResult<Transfer[]> failed))
            {
                return ValueTask.FromResult(failed);
            }

            var found = new Transfer[ids.Length];
            var count = ledger.LookupTransfers(ids.Span, found);
            return ValueTask.FromResult(ServiceResult<Transfer[]>.Ok(found[..count]));
        }
    }

    public ValueTask<ServiceResult<Transfer[]>> GetAccountTransfersAsync(AccountFilter filter, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (TakeFailure(out ServiceResult<Transfer[]> failed))
            {
                return ValueTask.FromResult(failed);
            }

            var found = new Transfer[LedgerLimits.QueryResultsMax];
            var count = ledger.GetAccountTransfers(filter, found);
            return ValueTask.FromResult(ServiceResult<Transfer[]>.Ok(found[..count]));
        }
    }

    public ValueTask<ServiceResult<AccountBalance[]>> GetAccountBalancesAsync(AccountFilter filter, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (TakeFailure(out ServiceResult<AccountBalance[]> failed))
            {
                return ValueTask.FromResult(failed);
            }

            var found = new AccountBalance[LedgerLimits.QueryResultsMax];
            var count = ledger.GetAccountBalances(filter, found);
            return ValueTask.FromResult(ServiceResult<AccountBalance[]>.Ok(found[..count]));
        }
    }

    public ValueTask<ClusterStatus> GetClusterStatusAsync(CancellationToken cancellationToken) => ValueTask.FromResult(Cluster);

    public ValueTask<NodeStatus> GetNodeStatusAsync(bool withFingerprints, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            return ValueTask.FromResult(new NodeStatus(1, [new LocalReplicaStatus(1, true, 4, 120, 118, withFingerprints ? ledger.Fingerprint() : UInt128.Zero)]));
        }
    }

    public UInt128 Fingerprint()
    {
        lock (gate)
        {
            return ledger.Fingerprint();
        }
    }

    private bool TakeFailure<T>(out ServiceResult<T> failed)
    {
        Calls++;
        if (throwNext)
        {
            throwNext = false;
            throw new InvalidOperationException("injected host failure");
        }

        var status = nextFailure;
        nextFailure = ServiceStatus.Ok;
        failed = status == ServiceStatus.Ok
            ? default
            : ServiceResult<T>.Failed(status, $"Injected {status} for shard 1.", nextRetryAfter);
        return status != ServiceStatus.Ok;
    }

    private ulong NextBatchTimestamp(int eventCount) =>
        Math.Max(StartNanoseconds, ledger.LastTimestamp + (ulong)Math.Max(eventCount, 1));

    /// <summary>The ledger gives event i of n in a batch stamped T the timestamp T - n + i + 1.</summary>
    private static ulong EventTimestamp(ulong batchTimestamp, int eventCount, int index) =>
        batchTimestamp - (ulong)eventCount + (ulong)index + 1;
}
