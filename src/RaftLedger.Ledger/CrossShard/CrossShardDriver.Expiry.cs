using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// Expiry of the cross-shard pending transfers whose id home is this shard (see CrossShardExpiry): the leader
// tracks those due within an abandonment timeout and, once cluster time passes one, runs its expiry
// transaction (a void-shaped event with Resolve legs on the accounts' shards; Decide here re-checks the status).
public sealed partial class CrossShardDriver
{
    // (expires-at, pending id), earliest first, one entry per pending id (trackedExpiries holds the same ids):
    // from the ledger's Expiry table (every scan, and after Decides and Finishes that wrote to it). A pending
    // transfer due later than an abandonment timeout from now is left to a later scan (scans run every half
    // abandonment timeout), so memory stays bounded. Leader only.
    // Invariant: expiries.Count == trackedExpiries.Count <= CrossShardLimits.ExpiriesTrackedMax.
    private readonly SortedSet<(ulong ExpiresAtNs, UInt128 PendingId)> expiries = [];
    private readonly Dictionary<UInt128, ulong> trackedExpiries = [];

    /// <summary>Cross-shard pending transfers homed here that this leader will expire soon (for tests and status).</summary>
    public int ExpiriesTracked => expiries.Count;

    /// <summary>Expiry transactions started by this leader (including retries after an abort).</summary>
    public long ExpiriesStarted { get; private set; }

    /// <summary>
    /// No transaction has this id (a transaction id carries its coordinator's term, at least 1, in its high half), so a
    /// Retire of it is a command that changes nothing but the expiries it releases first.
    /// </summary>
    internal static readonly UInt128 PulseTransactionId = UInt128.Zero;

    /// <summary>Commands this leader proposed only to release due one-shard pending transfers (see <see cref="TickExpiryPulse"/>).</summary>
    public long ExpiryPulses { get; private set; }

    private enum ExpiryStart : byte
    {
        Started,
        Busy,
        Gone,
    }

    /// <summary>Tracks the pending transfer when the ledger still has it to expire here.</summary>
    private void TrackExpiry(UInt128 pendingId)
    {
        if (ledger.TryGetCrossShardExpiry(pendingId, out var expiresAtNs))
        {
            TrackExpiry(pendingId, expiresAtNs, force: false);
        }
    }

    private void TrackExpiry(UInt128 pendingId, ulong expiresAtNs, bool force)
    {
        if (trackedExpiries.ContainsKey(pendingId) || (!force && expiresAtNs > nowNs + options.AbandonTimeoutNs))
        {
            return;
        }

        expiries.Add((expiresAtNs, pendingId));
        trackedExpiries.Add(pendingId, expiresAtNs);
        if (expiries.Count > CrossShardLimits.ExpiriesTrackedMax)
        {
            // The latest goes: a later scan finds it again in the ledger.
            trackedExpiries.Remove(expiries.Max.PendingId);
            expiries.Remove(expiries.Max);
        }

        Invariant.Check(expiries.Count == trackedExpiries.Count);
    }

    /// <summary>A Decide committed here: its pending transfers with a timeout whose expiry is kept here.</summary>
    private void TrackDecidedExpiries(DecideItem item, CrossShardDecision decision)
    {
        if (decision != CrossShardDecision.Committed)
        {
            return;
        }

        foreach (ref readonly var t in item.Events.AsSpan())
        {
            if ((t.Flags & TransferFlags.Pending) != 0 && t.TimeoutSeconds != 0)
            {
                TrackExpiry(t.Id);
            }
        }
    }

    /// <summary>A Finish applied here: a chain's pending transfer whose id is homed here keeps its expiry here.</summary>
    private void TrackClaimedExpiries(UInt128 transactionId)
    {
        if (claimsByTransaction.TryGetValue(transactionId, out var ids))
        {
            foreach (var id in ids)
            {
                TrackExpiry(id);
            }
        }
    }

    /// <summary>Starts the expiry transaction of every tracked pending transfer that is due (a bounded number per tick).</summary>
    private void TickExpiries()
    {
        List<UInt128>? busy = null;
        var started = 0;
        while (expiries.Count > 0 && expiries.Min.ExpiresAtNs <= nowNs && started < CrossShardLimits.ExpiriesStartedPerTickMax)
        {
            var due = expiries.Min;
            expiries.Remove(due);
            trackedExpiries.Remove(due.PendingId);
            var start = TryStartExpiry(due.PendingId);
            started += start == ExpiryStart.Started ? 1 : 0;
            if (start == ExpiryStart.Busy)
            {
                (busy ??= []).Add(due.PendingId);
            }
        }

        foreach (var pendingId in busy ?? [])
        {
            // Looked at again after a retry interval: until it is posted, voided or expired here.
            TrackExpiry(pendingId, nowNs + options.RetryIntervalNs, force: true);
        }
    }

    /// <summary>
    /// Pending transfers kept on this shard alone are released by the next command the shard applies (the ledger expires
    /// what is due before anything else). On a shard that gets no more writes that is never, and reads go on showing the
    /// amount reserved. So when one is due and none of this leader's proposals is in flight, it proposes a Retire of
    /// <see cref="PulseTransactionId"/>, which changes nothing else: TigerBeetle's pulse. One at a time, so a due pending
    /// held by a status leg (released by that leg's Finish) costs at most one command per tick.
    /// </summary>
    private void TickExpiryPulse()
    {
        if (proposals.Count == 0 && ledger.HasReleasableExpiry(nowNs))
        {
            // Not through retireQueue: the pulse's id answers nobody and must not wait for BackgroundDue.
            Propose(new Proposal(LedgerOperation.CrossShardRetire) { Ids = [] }, CrossShardCommand.EncodeRetire([PulseTransactionId]));
            ExpiryPulses++;
        }
    }

    /// <summary>
    /// Expires one pending transfer through the protocol: Resolve legs that release its amount on its accounts'
    /// shards, and a Decide here that commits only if it is still pending and due in log order. It waits while a
    /// transaction holds the pending id here (its own, not finished everywhere yet; a post or void of it; an
    /// earlier expiry, which may abort: then this one is tried again).
    /// </summary>
    private ExpiryStart TryStartExpiry(UInt128 pendingId)
    {
        if (!ledger.TryGetCrossShardExpiry(pendingId, out var expiresAtNs) || !ledger.TryLookupTransfer(pendingId, out var pending))
        {
            return ExpiryStart.Gone; // Posted, voided or expired already.
        }

        Invariant.Check(ShardOf(pendingId) == shard, "a pending transfer's expiry is kept on its id's home");
        if (expiresAtNs > nowNs || unfinishedEvents.ContainsKey(pendingId) || claimedIds.Contains(pendingId) ||
            transactions.Count >= CrossShardLimits.CoordinatorTransactionsMax)
        {
            return ExpiryStart.Busy;
        }

        var transaction = new Transaction(NextTransactionId(), null, 0, [CrossShardExpiry.EventOf(pending)], 1, nowNs);
        AssignLegs(transaction);
        Invariant.Check(!transaction.Participants.Values.Any(p => p.Legs.Any(l => (l.Sides & LegSides.Id) != 0)), "an expiry's id is homed here");
        transactions.Add(transaction.Id, transaction);
        IndexEvents(transaction, [pendingId]); // A post or void of it waits, then gets pending_transfer_expired.
        ExpiriesStarted++;
        foreach (var participant in transaction.Participants.Values)
        {
            SendPrepare(transaction, participant);
        }

        return ExpiryStart.Started;
    }

    /// <summary>Marks the events whose pending transfer's expiry is kept on their id's home, not on this (coordinating) shard.</summary>
    private DecideItem WithExpiresElsewhere(DecideItem item)
    {
        bool[]? mask = null;
        for (var i = 0; i < item.Events.Length; i++)
        {
            ref readonly var t = ref item.Events[i];
            if ((t.Flags & TransferFlags.Pending) != 0 && t.TimeoutSeconds != 0 && ShardOf(t.Id) != shard)
            {
                (mask ??= new bool[item.Events.Length])[i] = true;
            }
        }

        return mask is null ? item : item with { Flags = item.Flags | DecideFlags.ExpiresElsewhere, ExpiresElsewhere = mask };
    }

    private void ClearExpiries()
    {
        expiries.Clear();
        trackedExpiries.Clear();
    }
}
