using RaftLedger.Ledger;

namespace RaftLedger.Node.Api;

/// <summary>
/// What the client API (REST and gRPC) needs from the node. The node host implements it: it
/// splits a batch by shard, forwards each part to its shard's leader, and reassembles results in
/// input order. Failures the cluster expects (no leader, no quorum, outcome unknown) are values,
/// not exceptions; an exception means a bug or a broken node and becomes a 500.
/// </summary>
/// <remarks>
/// Implementations must be safe to call concurrently. Every batch given here has already been
/// validated by the API: at most <see cref="ApiLimits.EventsPerBatchMax"/> events or ids.
/// The cancellation token is the client's: when it fires the client has gone, so the result is
/// no longer needed, but a proposal already made may still commit.
/// </remarks>
public interface ILedgerService
{
    /// <summary>Creates accounts. On success: exactly one result per input event, in input order.</summary>
    ValueTask<ServiceResult<AccountEventResult[]>> CreateAccountsAsync(
        ReadOnlyMemory<Account> accounts, CancellationToken cancellationToken);

    /// <summary>Creates transfers. On success: exactly one result per input event, in input order.</summary>
    ValueTask<ServiceResult<TransferEventResult[]>> CreateTransfersAsync(
        ReadOnlyMemory<Transfer> transfers, CancellationToken cancellationToken);

    /// <summary>The accounts that exist, in the order of <paramref name="ids"/> (linearizable read).</summary>
    ValueTask<ServiceResult<Account[]>> LookupAccountsAsync(
        ReadOnlyMemory<UInt128> ids, CancellationToken cancellationToken);

    /// <summary>The transfers that exist, in the order of <paramref name="ids"/> (linearizable read).</summary>
    ValueTask<ServiceResult<Transfer[]>> LookupTransfersAsync(
        ReadOnlyMemory<UInt128> ids, CancellationToken cancellationToken);

    /// <summary>get_account_transfers: the account's transfers matching <paramref name="filter"/>.</summary>
    ValueTask<ServiceResult<Transfer[]>> GetAccountTransfersAsync(
        AccountFilter filter, CancellationToken cancellationToken);

    /// <summary>get_account_balances: the account's balance history matching <paramref name="filter"/>.</summary>
    ValueTask<ServiceResult<AccountBalance[]>> GetAccountBalancesAsync(
        AccountFilter filter, CancellationToken cancellationToken);

    /// <summary>Nodes and shards as this node knows them (not a linearizable read; may lag).</summary>
    ValueTask<ClusterStatus> GetClusterStatusAsync(CancellationToken cancellationToken);

    /// <summary>
    /// This node's own replicas with their applied index, and their ledger fingerprints when
    /// <paramref name="withFingerprints"/> (otherwise 0). A fingerprint reads the shard's whole ledger on the node's
    /// scheduler loop, which pauses every group's heartbeats for as long: ask for it for audits, not to poll.
    /// </summary>
    ValueTask<NodeStatus> GetNodeStatusAsync(bool withFingerprints, CancellationToken cancellationToken);

    /// <summary>True when every shard this node hosts a replica of has a known leader (/readyz).</summary>
    bool IsReady { get; }
}

/// <summary>Why a request did not produce an answer. Anything but <see cref="Ok"/> means nothing was applied, except <see cref="OutcomeUnknown"/>.</summary>
public enum ServiceStatus
{
    Ok = 0,

    /// <summary>A shard the request needs has no leader right now (election running). HTTP 503; nothing applied.</summary>
    NoLeader,

    /// <summary>The shard's leader cannot reach a majority of its replicas. HTTP 503; nothing applied.</summary>
    NoQuorum,

    /// <summary>The node cannot serve at all yet or any more (not bootstrapped, shutting down). HTTP 503; nothing applied.</summary>
    Unavailable,

    /// <summary>
    /// The deadline passed after the proposal was made: it may or may not commit. HTTP 504; the client
    /// must retry with the same ids, which idempotency makes safe.
    /// </summary>
    OutcomeUnknown,
}

/// <summary>A value or the reason there is none.</summary>
public readonly struct ServiceResult<T>
{
    private ServiceResult(ServiceStatus status, T? value, string detail, TimeSpan retryAfter)
    {
        Status = status;
        Value = value;
        Detail = detail;
        RetryAfter = retryAfter;
    }

    public ServiceStatus Status { get; }

    /// <summary>Set when <see cref="Status"/> is <see cref="ServiceStatus.Ok"/>.</summary>
    public T? Value { get; }

    /// <summary>For failures: what happened, for the operator (e.g. "shard 3 has no leader").</summary>
    public string Detail { get; }

    /// <summary>For 503 failures: when a retry is likely to succeed; zero means "use the default".</summary>
    public TimeSpan RetryAfter { get; }

    public bool IsOk => Status == ServiceStatus.Ok;

    public static ServiceResult<T> Ok(T value) => new(ServiceStatus.Ok, value, "", TimeSpan.Zero);

    public static ServiceResult<T> Failed(ServiceStatus status, string detail, TimeSpan retryAfter = default)
    {
        ArgumentOutOfRangeException.ThrowIfEqual(status, ServiceStatus.Ok);
        ArgumentException.ThrowIfNullOrEmpty(detail);
        return new(status, default, detail, retryAfter);
    }
}

/// <summary>The outcome of one create_accounts event; <see cref="Timestamp"/> is set when created.</summary>
public readonly record struct AccountEventResult(CreateAccountResult Status, ulong Timestamp);

/// <summary>The outcome of one create_transfers event; <see cref="Timestamp"/> is set when created.</summary>
public readonly record struct TransferEventResult(CreateTransferResult Status, ulong Timestamp);

/// <summary>The cluster map and each shard's Raft progress as this node knows them.</summary>
public sealed record ClusterStatus(IReadOnlyList<NodeInfo> Nodes, IReadOnlyList<ShardInfo> Shards)
{
    /// <summary>The meta group (Raft group 0, which holds the cluster map) as this node sees it; null when not reported.</summary>
    public MetaGroupInfo? Meta { get; init; }
}

/// <summary>
/// The meta group: its voters, leader (0 = none known; this node's view, so 0 on a node outside the group), term,
/// commit index, and the applied index of the map this node uses.
/// </summary>
public sealed record MetaGroupInfo(IReadOnlyList<ulong> Members, ulong Leader, ulong Term, ulong CommitIndex, ulong AppliedIndex);

/// <summary>A member node: its addresses and whether this node currently hears from it.</summary>
public sealed record NodeInfo(ulong Id, string ApiAddress, string PeerAddress, bool Up)
{
    /// <summary>The gRPC client API address, when the node serves one.</summary>
    public string? GrpcAddress { get; init; }
}

/// <summary>A shard: its replicas (node ids), leader (0 = none known) and Raft progress.</summary>
public sealed record ShardInfo(
    uint Id, IReadOnlyList<ulong> Replicas, ulong Leader, ulong Term, ulong CommitIndex, ulong AppliedIndex)
{
    /// <summary>Each replica's match index, when this node leads the shard (for lag); empty otherwise.</summary>
    public IReadOnlyList<ReplicaProgress> Progress { get; init; } = [];
}

/// <summary>How far a replica's log matches the leader's.</summary>
public readonly record struct ReplicaProgress(ulong NodeId, ulong MatchIndex);

/// <summary>This node and the state of each replica it hosts.</summary>
public sealed record NodeStatus(ulong NodeId, IReadOnlyList<LocalReplicaStatus> Replicas);

/// <summary>
/// One local replica. Two replicas of a shard with the same <see cref="AppliedIndex"/> must have the
/// same <see cref="Fingerprint"/>; the demo and the tests check exactly that. <see cref="CrossShardUnfinished"/>:
/// cross-shard transactions this replica still holds unfinished (coordinator records, prepared legs, and on the
/// leader the transactions it coordinates); 0 once the cluster is quiet.
/// </summary>
public readonly record struct LocalReplicaStatus(
    uint ShardId, bool IsLeader, ulong Term, ulong CommitIndex, ulong AppliedIndex, UInt128 Fingerprint, int CrossShardUnfinished = 0);
