using RaftLedger.Common;
using RaftLedger.Common.Placement;

namespace RaftLedger.Ledger.CrossShard;

/// <summary>
/// The cross-shard protocol on one shard replica (escrow two-phase commit, presumed abort; see
/// docs/design/cross-shard.md). Pure: no IO, no clock, no threads. The host calls every method from
/// the shard's single thread, feeds it role changes, messages from other shards, applied proposals
/// and cluster time, and executes the actions it takes out with <see cref="TryTakeAction"/> in order.
/// </summary>
/// <remarks>
/// Only the leader does anything; a follower's driver ignores messages and keeps no state (all
/// durable state is in the ledger, which every replica applies). The same driver is coordinator for
/// transactions whose home is this shard and participant for legs whose accounts live here.
/// </remarks>
public sealed partial class CrossShardDriver
{
    private readonly int shard;
    private readonly int shardCount;
    private readonly LedgerStateMachine ledger;
    private readonly CrossShardOptions options;

    // Invariant: actions.Count <= CrossShardLimits.ActionsQueuedMax (sends beyond are dropped and retried).
    private readonly Queue<CrossShardAction> actions = new();

    // Invariant: all in-memory state below is empty unless isLeader.
    private bool isLeader;
    private ulong term;
    private ulong transactionSequence;
    private ulong nowNs;
    private ulong lastScanNs;
    private bool scanDue;

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

    /// <summary>True while this replica's driver acts as its shard's leader.</summary>
    public bool IsLeader => isLeader;

    /// <summary>Transactions this shard coordinates and has not retired yet (leader only).</summary>
    public int CoordinatorTransactionCount => transactions.Count;

    /// <summary>Transactions whose legs are prepared here, as far as this leader knows.</summary>
    public int PreparedTransactionCount => preparedHere.Count;

    /// <summary>Balancing transactions this leader restarted because a guard found their clamp stale.</summary>
    public long StaleClampRestarts { get; private set; }

    /// <summary>Messages that could not be decoded or did not belong here (dropped).</summary>
    public long MessagesDropped { get; private set; }

    /// <summary>
    /// Marks which events of a create_transfers request on this (home) shard must go through the
    /// driver instead of the host's normal proposal: an event is cross-shard when its debit or credit
    /// account (for a post/void: its pending transfer's home, or that transfer's accounts) or its id's home
    /// is another shard, or when its id (or, for a post/void, its pending transfer's id) is claimed here by another
    /// shard's transaction or is an event of a transaction this shard coordinates that is not finished everywhere
    /// yet: it then waits for that transaction, so a retry or reuse of the id is answered only once the first
    /// attempt's legs are posted or released on every shard. A linked chain is kept whole: one cross-shard event makes
    /// its whole chain cross-shard.
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

    /// <summary>
    /// After a fast-path write: marks each chain (or single event) that the ledger refused untouched with the internal
    /// status <see cref="CreateTransferResult.NeedsCrossShardPath"/>, and returns true when there is one. That is a
    /// post/void classified local while its pending transfer was unknown here, applied after a cross-shard transaction
    /// stored that pending transfer here: only the driver can finish it, so the host hands the chain to
    /// <see cref="Submit"/> instead of answering. Nothing of such a chain was applied (the refusal fails the chain and
    /// burns no id), so running it again is safe. Never shown to a client.
    /// </summary>
    public static bool MarkChainsRefusedOnFastPath(ReadOnlySpan<Transfer> transfers, ReadOnlySpan<CreateTransferResult> statuses, Span<bool> reroute)
    {
        Invariant.Check(statuses.Length == transfers.Length && reroute.Length >= transfers.Length);
        var any = false;
        var chainStart = 0;
        var chainRefused = false;
        for (var i = 0; i < transfers.Length; i++)
        {
            chainRefused |= statuses[i] == CreateTransferResult.NeedsCrossShardPath;
            if ((transfers[i].Flags & TransferFlags.Linked) == 0 || i == transfers.Length - 1)
            {
                reroute[chainStart..(i + 1)].Fill(chainRefused);
                any |= chainRefused;
                chainStart = i + 1;
                chainRefused = false;
            }
        }

        return any;
    }

    private bool IsLocal(in Transfer t)
    {
        if (ShardOf(t.Id) != shard || HeldByTransaction(t.Id))
        {
            // Another shard must check the id (a chain's later event), or a transaction holds it here.
            return false;
        }

        if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0)
        {
            // Local when the pending transfer lives here with both its accounts (or is unknown here: the
            // ledger answers pending_transfer_not_found). A cross-shard pending transfer's post/void is
            // coordinated here, where its status is, and finished on its accounts' shards.
            if (ShardOf(t.PendingId) != shard || HeldByTransaction(t.PendingId))
            {
                // (Or another shard's chain holds the pending transfer here with a status leg, or the pending
                // transfer's own transaction is still in flight: wait for it.)
                return false;
            }

            return !ledger.TryLookupTransfer(t.PendingId, out var pending) ||
                (ShardOf(pending.DebitAccountId) == shard && ShardOf(pending.CreditAccountId) == shard);
        }

        return ShardOf(t.DebitAccountId) == shard && ShardOf(t.CreditAccountId) == shard;
    }

    private int ShardOf(UInt128 id) => ShardRouter.ShardOf(id, shardCount);

    /// <summary>
    /// True while a cross-shard transaction holds <paramref name="id"/> here: claimed by another shard's transaction,
    /// or an event of one this shard coordinates that is not finished on every shard.
    /// </summary>
    private bool HeldByTransaction(UInt128 id) =>
        (claimedIds.Count != 0 && claimedIds.Contains(id)) || (unfinishedEvents.Count != 0 && unfinishedEvents.ContainsKey(id));

    /// <summary>
    /// True when this shard's committed state holds a prepared (undecided or unfinished) leg on
    /// <paramref name="accountId"/>: its balances may still change when the leg is finished. A read that
    /// must see every acknowledged transfer as posted waits (re-reads later) while this is true. Works
    /// on any replica; costs one pass over the prepared records (one per transaction in flight).
    /// </summary>
    public bool HasPreparedLegs(UInt128 accountId)
    {
        foreach (var record in ledger.Store.EnumerateSideRecords(CrossShardTables.Prepared))
        {
            foreach (var leg in CrossShardCommand.ReadPreparedRecord(record.Value!).Legs)
            {
                if (((leg.Sides & LegSides.Debit) != 0 && leg.Transfer.DebitAccountId == accountId) ||
                    ((leg.Sides & LegSides.Credit) != 0 && leg.Transfer.CreditAccountId == accountId))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// This replica became leader of <paramref name="term"/> (it resumes unfinished work from the
    /// ledger: decided transactions to finish, prepared legs to watch) or stopped being leader (every
    /// request in flight fails; the new leader finishes what was decided).
    /// </summary>
    public void OnRoleChanged(bool isLeader, ulong term)
    {
        if (this.isLeader)
        {
            FailAllRequests();
        }

        // Proposals and messages of the old role are void; client answers still go out.
        var kept = actions.Where(a => a is CompleteAction or FailAction).ToArray();
        actions.Clear();
        foreach (var action in kept)
        {
            actions.Enqueue(action);
        }

        ClearVolatileState();
        this.isLeader = isLeader;
        this.term = term;
        transactionSequence = 0;
        nowNs = Math.Max(nowNs, ledger.LastTimestamp);
        scanDue = isLeader;
        if (isLeader)
        {
            ScanLedger();
            FenceInheritedLegs();
        }
    }

    /// <summary>A message from another shard's leader (possibly late, duplicated or corrupt: then dropped).</summary>
    public void OnMessage(int fromShard, ReadOnlySpan<byte> message)
    {
        if (!isLeader)
        {
            return;
        }

        if (CrossShardBundle.IsBundle(message))
        {
            OnBundle(fromShard, message);
            return;
        }

        if (!CrossShardMessage.TryDecode(message, out var decoded) || decoded.From != fromShard ||
            decoded.Home < 0 || decoded.Home >= shardCount || fromShard < 0 || fromShard >= shardCount)
        {
            MessagesDropped++;
            return;
        }

        Dispatch(decoded);
    }

    private void Dispatch(CrossShardMessage message)
    {
        if (message.Kind is CrossShardMessageKind.Prepare or CrossShardMessageKind.Finish or CrossShardMessageKind.Fence && message.From == message.Home)
        {
            NoteHomeTerm(message.Home, message.TransactionId);
        }

        switch (message.Kind)
        {
            case CrossShardMessageKind.Prepare:
                OnPrepareRequest(message);
                break;
            case CrossShardMessageKind.Prepared:
                OnPreparedReply(message);
                break;
            case CrossShardMessageKind.Finish:
                OnFinishRequest(message.TransactionId, message.Home, message.Decision);
                break;
            case CrossShardMessageKind.Finished:
                OnFinishedReply(message.TransactionId, message.From);
                break;
            case CrossShardMessageKind.FinishTaken:
                OnFinishTakenReply(message.TransactionId, message.From);
                break;
            case CrossShardMessageKind.Fence:
                OnFenceRequest(message.TransactionId, message.Home);
                break;
            case CrossShardMessageKind.Fenced:
                OnFencedReply(message.TransactionId, message.From);
                break;
            case CrossShardMessageKind.Query:
                OnQuery(message.TransactionId, message.From);
                break;
            case CrossShardMessageKind.Delegate:
                OnDelegateRequest(message);
                break;
            case CrossShardMessageKind.Delegated:
                OnDelegatedReply(message);
                break;
            case CrossShardMessageKind.Snapshot:
                OnSnapshotRequest(message);
                break;
            case CrossShardMessageKind.Snapshotted:
                OnSnapshotReply(message);
                break;
            case CrossShardMessageKind.PendingLookup:
                OnPendingLookupRequest(message);
                break;
            case CrossShardMessageKind.PendingFound:
                OnPendingFound(message);
                break;
            default:
                OnDecision(message.TransactionId, message.Decision);
                break;
        }
    }

    /// <summary>Sends a message to a shard's leader, or hands it straight to this driver when it is for this shard.</summary>
    private void Send(int toShard, CrossShardMessage message)
    {
        if (toShard == shard)
        {
            Dispatch(message);
            return;
        }

        QueueSend(toShard, message);
    }

    /// <summary>Cluster time moved on: resend what is unanswered, time out stuck transactions, ask about abandoned legs.</summary>
    public void Tick(ulong clusterTimeNs)
    {
        nowNs = Math.Max(nowNs, clusterTimeNs);
        if (!isLeader)
        {
            return;
        }

        if (scanDue || nowNs - lastScanNs >= options.AbandonTimeoutNs / 2)
        {
            ScanLedger();
        }

        backgroundDue = true;
        TickCoordinator();
        TickPendingLookups();
        TickExpiries();
        TickExpiryPulse();
        TickDelegations();
        TickParticipant();
        SweepFences();
        StartUnclaimedWaiters();
    }

    /// <summary>The next action for the host, in order; false when there is none.</summary>
    public bool TryTakeAction(out CrossShardAction action)
    {
        if (actions.Count == 0 && isLeader)
        {
            // Messages and proposals go out last so that what arrived since the last call shares one bundle per
            // destination and one entry per command kind.
            FlushSends();
            FlushProposals();
        }

        return actions.TryDequeue(out action!);
    }

    private void ScanLedger()
    {
        scanDue = false;
        lastScanNs = nowNs;
        foreach (var record in ledger.Store.EnumerateSideRecords(CrossShardTables.Coordinator))
        {
            ResumeCoordinatorRecord(record.Key, CrossShardCommand.ReadCoordinatorRecord(record.Value!));
        }

        foreach (var record in ledger.Store.EnumerateSideRecords(CrossShardTables.Prepared))
        {
            var prepared = CrossShardCommand.ReadPreparedRecord(record.Value!);
            TrackPrepared(record.Key, prepared.Home, prepared.PreparedAt, prepared.Legs);
            ClaimIds(record.Key, prepared.Legs);
        }

        // Only those due within the tracking horizon are read: pending transfers held for days cost nothing here.
        foreach (var (expiresAtNs, pendingId) in ledger.EnumerateCrossShardExpiries(nowNs + options.AbandonTimeoutNs))
        {
            TrackExpiry(pendingId, expiresAtNs, force: false);
        }
    }

    private void ClearVolatileState()
    {
        requests.Clear();
        transactions.Clear();
        unfinishedEvents.Clear();
        preparedHere.Clear();
        claimedIds.Clear();
        claimWaiters.Clear();
        pendingLookups.Clear();
        ClearDelegations();
        ClearOutbox();
        ClearExpiries();
        recentlyFinished.Clear();
        recentlyFinishedOrder.Clear();
        Array.Clear(newestHomeTerms);
        ClearFences();
        ClearProposals();
    }
}
