using RaftLedger.Common;
using RaftLedger.Common.Placement;

namespace RaftLedger.Ledger.CrossShard;

/// <summary>
/// The cross-shard protocol on one shard replica (escrow two-phase commit, presumed abort; see
/// docs/design/cross-shard.md). Pure: no IO, no clock, no threads. The host calls every method from
/// the shard's single thread, feeds it role changes, messages from other shards, applied proposals
/// and cluster time, and executes the actions it takes out with <see cref="TryTakeAction"/> in order.
/// </summary>
public sealed partial class CrossShardDriver
{
    private readonly int shard;
    private readonly int shardCount;
    private readonly LedgerStateMachine ledger;
    private readonly CrossShardOptions options;
    private readonly Queue<CrossShardAction> actions = new();

    public CrossShardDriver(int shard, int shardCount, LedgerStateMachine ledger, CrossShardOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shardCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(shardCount, ShardRouter.ShardCountMax);
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(shard, shardCount);
        ArgumentNullException.ThrowIfNull(ledger);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.shard = shard;
        this.shardCount = shardCount;
        this.ledger = ledger;
        this.options = options;
    }

    /// <summary>This replica's shard.</summary>
    public int Shard => shard;

    /// <summary>
    /// Marks which events of a create_transfers request on this (home) shard must go through the
    /// driver instead of the host's normal proposal: an event is cross-shard when its debit or credit
    /// account (for a post/void: its pending transfer's home) lives on another shard. A linked chain
    /// is kept whole: one cross-shard event makes its whole chain cross-shard.
    /// </summary>
    public void Classify(ReadOnlySpan<Transfer> transfers, Span<bool> crossShard)
    {
        Invariant.Check(crossShard.Length >= transfers.Length);
        var chainStart = 0;
        var chainCross = false;
        for (var i = 0; i < transfers.Length; i++)
        {
            chainCross |= !IsLocal(transfers[i]);
            if ((transfers[i].Flags & TransferFlags.Linked) == 0 || i == transfers.Length - 1)
            {
                crossShard[chainStart..(i + 1)].Fill(chainCross);
                chainStart = i + 1;
                chainCross = false;
            }
        }
    }

    private bool IsLocal(in Transfer t)
    {
        if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0)
        {
            // A pending transfer is only ever created on one shard (cross-shard pending transfers are
            // refused), so its home holds both its accounts: a post/void is local when it lives here.
            return ShardRouter.ShardOf(t.PendingId, shardCount) == shard;
        }

        return ShardRouter.ShardOf(t.DebitAccountId, shardCount) == shard &&
            ShardRouter.ShardOf(t.CreditAccountId, shardCount) == shard;
    }

    /// <summary>This replica became leader (resume unfinished work from the ledger) or stopped being one.</summary>
    public void OnRoleChanged(bool isLeader, ulong term)
    {
    }

    /// <summary>Starts a cross-shard request (leader only): the events <see cref="Classify"/> marked, in request order.</summary>
    public void Submit(long requestToken, ReadOnlySpan<Transfer> transfers)
    {
        var results = new CreateTransferResult[transfers.Length];
        Array.Fill(results, CreateTransferResult.CrossShardNotSupported);
        actions.Enqueue(new CompleteAction(requestToken, results, new ulong[transfers.Length]));
    }

    /// <summary>A message from another shard's leader (possibly late, duplicated or corrupt).</summary>
    public void OnMessage(int fromShard, ReadOnlySpan<byte> message)
    {
    }

    /// <summary>A <see cref="ProposeAction"/>'s entry was applied on this replica; <paramref name="results"/> are Apply's result bytes.</summary>
    public void OnProposalApplied(long token, ReadOnlySpan<byte> results)
    {
    }

    /// <summary>A <see cref="ProposeAction"/>'s entry will never apply (leadership lost, refused).</summary>
    public void OnProposalFailed(long token)
    {
    }

    /// <summary>Cluster time moved on: resend what is unanswered, ask about abandoned legs.</summary>
    public void Tick(ulong clusterTimeNs)
    {
    }

    /// <summary>The next action for the host, in order; false when there is none.</summary>
    public bool TryTakeAction(out CrossShardAction action) => actions.TryDequeue(out action!);
}
