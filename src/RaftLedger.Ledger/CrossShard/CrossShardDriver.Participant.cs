using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// The participant: holds legs prepared on this shard until the home shard's decision finishes them.
public sealed partial class CrossShardDriver
{
    // Transactions with legs prepared here (from applied Prepares and from scanning the ledger).
    private readonly Dictionary<UInt128, PreparedHere> preparedHere = [];

    // Per home shard, the newest coordinator term seen in a Prepare or Finish it sent (0: none yet). A transaction id
    // carries its coordinator's term in its high 64 bits, and a coordinator that takes office drops every undecided
    // transaction of earlier terms: a leg of an older term than its home's newest is settled by asking at once.
    private ulong[] newestHomeTerms = [];

    // Ids this shard is the home of that a cross-shard transaction claims (from the Prepare being queued
    // until its Finish applied; a superset of the IdClaim records). While claimed, a request with that id
    // is not taken by the fast path (Classify) and waits in claimWaiters. Leader only.
    private readonly HashSet<UInt128> claimedIds = [];
    private readonly Dictionary<UInt128, List<UInt128>> claimsByTransaction = [];

    // Transactions this leader was told to finish, oldest first (at most RecentlyFinishedMax): a Prepare
    // of one of them that arrives late (a delayed duplicate) is ignored, so that after an abort was
    // answered no reservation of it appears again. Invariant: recentlyFinishedOrder holds the same ids.
    private readonly HashSet<UInt128> recentlyFinished = [];
    private readonly Queue<UInt128> recentlyFinishedOrder = new();

    private void OnPrepareRequest(CrossShardMessage message)
    {
        if (message.Legs.Length == 0 || !LegsBelongHere(message.Legs))
        {
            MessagesDropped++;
            return;
        }

        if (recentlyFinished.Contains(message.TransactionId))
        {
            return; // Decided and finished here already: the coordinator no longer waits for this answer.
        }

        if (preparedHere.ContainsKey(message.TransactionId))
        {
            // Already prepared (a duplicate, or the coordinator's answer was lost): every leg is Ok.
            SendPrepared(message.Home, message.TransactionId, message.Legs, prepared: true, reports: []);
            return;
        }

        if (LegsTouchFence(message.Legs))
        {
            HoldPrepare(message); // A fenced leg on one of its accounts may belong to an answered transfer: taken once it is finished.
            return;
        }

        if (AnyStatusLegBusyHere(message.Legs))
        {
            return; // A transaction coordinated here holds the pending transfer (a post, void or expiry of it): asked again later.
        }

        if (preparedHere.Count >= CrossShardLimits.ParticipantTransactionsMax || !prepareQueued.Add(message.TransactionId))
        {
            return; // Full, or queued already: the coordinator retries.
        }

        prepareQueue.Add(new PrepareItem(message.TransactionId, message.Home, message.Legs));
        ClaimIds(message.TransactionId, message.Legs);
    }

    /// <summary>Marks the ids this Prepare claims before it is proposed, so that no fast-path event with one of them is proposed after it.</summary>
    private void ClaimIds(UInt128 transactionId, Leg[] legs)
    {
        List<UInt128>? ids = null;
        foreach (var leg in legs)
        {
            if ((leg.Sides & LegSides.Id) != 0 && claimedIds.Add(leg.Transfer.Id))
            {
                (ids ??= []).Add(leg.Transfer.Id);
            }
        }

        AddHeldPendingIds(legs, ref ids, claimedIds);

        if (ids is not null)
        {
            claimsByTransaction[transactionId] = ids;
        }
    }

    /// <summary>The transaction's claims here are gone (finished, released, or its Prepare refused or dropped).</summary>
    private void FreeIds(UInt128 transactionId)
    {
        if (!claimsByTransaction.Remove(transactionId, out var ids))
        {
            return;
        }

        foreach (var id in ids)
        {
            if (!ledger.Store.TryGetSideRecord(CrossShardTables.IdClaim, id, out _) && !ledger.Store.TryGetSideRecord(CrossShardTables.LegHold, id, out _))
            {
                claimedIds.Remove(id);
            }
        }

        StartUnclaimedWaiters();
    }

    private bool LegsBelongHere(Leg[] legs)
    {
        foreach (var leg in legs)
        {
            if (((leg.Sides & LegSides.Debit) != 0 && ShardOf(leg.Transfer.DebitAccountId) != shard) ||
                ((leg.Sides & LegSides.Credit) != 0 && ShardOf(leg.Transfer.CreditAccountId) != shard) ||
                ((leg.Sides & LegSides.Id) != 0 && ShardOf(leg.Transfer.Id) != shard) ||
                ((leg.Sides & LegSides.Status) != 0 && ShardOf(leg.Transfer.PendingId) != shard))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A Prepare was applied here: answer the coordinator (reports are the Apply result bytes of the item's legs, empty = all Ok).</summary>
    private void OnPrepareApplied(PrepareItem item, bool prepared, ReadOnlySpan<byte> reports)
    {
        prepareQueued.Remove(item.TransactionId);
        if (prepared)
        {
            // Applied with prepared = 1: the Prepared record is in the ledger (written now, or by a duplicate before).
            // Its prepared-at only times this leader's abandonment query, so the driver's clock stands in for it
            // (a little later than the stamp: the query may come a commit later) instead of re-reading the record.
            TrackPrepared(item.TransactionId, item.Home, nowNs, item.Legs);
        }
        else
        {
            FreeIds(item.TransactionId);
        }

        SendPrepared(item.Home, item.TransactionId, item.Legs, prepared, reports);
    }

    private void SendPrepared(int home, UInt128 transactionId, Leg[] legs, bool prepared, ReadOnlySpan<byte> reports)
    {
        var legReports = new LegReport[legs.Length];
        for (var k = 0; k < legs.Length; k++)
        {
            if (reports.IsEmpty)
            {
                legReports[k] = new LegReport(legs[k].EventIndex, SideReport.Ok, SideReport.Ok);
                continue;
            }

            var at = reports.Slice(k * CrossShardCommand.LegReportBytes, CrossShardCommand.LegReportBytes);
            legReports[k] = new LegReport(
                legs[k].EventIndex,
                new SideReport((LegOutcome)at[0], System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(at[1..])),
                new SideReport((LegOutcome)at[5], System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(at[6..])));
        }

        Send(home, new CrossShardMessage(CrossShardMessageKind.Prepared, home, shard, transactionId) { Prepared = prepared, Reports = legReports });
    }

    private void TrackPrepared(UInt128 transactionId, int home, ulong preparedAtNs, Leg[] legs)
    {
        preparedHere.TryAdd(transactionId, new PreparedHere(home, preparedAtNs, legs));
    }

    /// <summary>The coordinator (or a query's answer) says how to finish: post or release through Raft, then acknowledge.</summary>
    private void OnFinishRequest(UInt128 transactionId, int home, CrossShardDecision decision)
    {
        if (decision is not (CrossShardDecision.Committed or CrossShardDecision.Aborted))
        {
            MessagesDropped++;
            return;
        }

        if (home == shard)
        {
            // The home shard's own legs are finished by Decide (or AbortIfUndecided) itself.
            preparedHere.Remove(transactionId);
            return;
        }

        RememberFinished(transactionId);
        if (prepareQueued.Remove(transactionId))
        {
            // Not proposed yet: it must not be proposed after this Finish (it would reserve again).
            prepareQueue.RemoveAll(p => p.TransactionId == transactionId);
        }

        // Always through Raft, even when nothing seems prepared: this leader may not have applied the
        // Prepare yet, and acknowledging without it could let the coordinator forget a commit.
        if (finishProposed.Contains(transactionId))
        {
            SendFinishTaken(transactionId); // A resent Finish: the first FinishTaken may have been lost.
        }
        else if (finishQueued.TryAdd(transactionId, home))
        {
            // Its Finish reserves a timestamp per copy it may store: the legs prepared here when known, else as many
            // as a transaction can have here (a Prepare of an earlier leadership may still be in the log).
            var copies = preparedHere.TryGetValue(transactionId, out var prepared) ? prepared.LegCount : CrossShardLimits.ParticipantLegsMax;
            finishQueue.Add(new FinishItem(transactionId, decision == CrossShardDecision.Committed, copies));

            // It may linger only if this leader answered Fenced for the legs; otherwise the home waits for its FinishTaken.
            backgroundDue |= !announcedLegs.ContainsKey(transactionId);
        }
        else
        {
            backgroundDue = true; // Sent again while it lingers: the home is still waiting (a Fenced answer may be lost).
        }
    }

    private void RememberFinished(UInt128 transactionId)
    {
        if (!recentlyFinished.Add(transactionId))
        {
            return;
        }

        recentlyFinishedOrder.Enqueue(transactionId);
        if (recentlyFinishedOrder.Count > CrossShardLimits.RecentlyFinishedMax)
        {
            recentlyFinished.Remove(recentlyFinishedOrder.Dequeue());
        }

        Invariant.Check(recentlyFinished.Count == recentlyFinishedOrder.Count);
    }

    /// <summary>
    /// This leader proposed the transaction's Finish: anything it proposes from now on is ordered after it in the log, so the
    /// coordinator may answer its client. Only a leader that holds the legs prepared says so: a deposed leader that still
    /// believes it leads cannot have applied a Prepare of its successor's term, and the legs it does hold are fenced by the
    /// successor as inherited until finished (<see cref="IsAccountFenced"/>). Others acknowledge with Finished once applied.
    /// </summary>
    private void SendFinishTaken(UInt128 transactionId)
    {
        if (preparedHere.ContainsKey(transactionId) && finishQueued.TryGetValue(transactionId, out var home) && home != shard)
        {
            Send(home, new CrossShardMessage(CrossShardMessageKind.FinishTaken, home, shard, transactionId));
        }
    }

    private void OnFinishApplied(FinishItem item)
    {
        TrackClaimedExpiries(item.TransactionId);
        FreeIds(item.TransactionId);
        finishProposed.Remove(item.TransactionId);
        Unfence(item.TransactionId);
        if (finishQueued.Remove(item.TransactionId, out var home))
        {
            preparedHere.Remove(item.TransactionId);
            Send(home, new CrossShardMessage(CrossShardMessageKind.Finished, home, shard, item.TransactionId));
        }
    }

    private void OnDecision(UInt128 transactionId, CrossShardDecision decision)
    {
        if (decision == CrossShardDecision.Undecided || !preparedHere.TryGetValue(transactionId, out var prepared))
        {
            return;
        }

        OnFinishRequest(transactionId, prepared.Home, decision);
    }

    private void NoteHomeTerm(int home, UInt128 transactionId)
    {
        if (newestHomeTerms.Length == 0)
        {
            newestHomeTerms = new ulong[shardCount];
        }

        newestHomeTerms[home] = Math.Max(newestHomeTerms[home], TermOf(transactionId));
    }

    private static ulong TermOf(UInt128 transactionId) => (ulong)(transactionId >> 64);

    /// <summary>True when the leg's coordinator term is older than its home's current one (this shard's own, or the newest seen).</summary>
    private bool CoordinatorReplaced(UInt128 transactionId, int home)
    {
        var homeTerm = home == shard ? term : newestHomeTerms.Length == 0 ? 0 : newestHomeTerms[home];
        return TermOf(transactionId) < homeTerm;
    }

    /// <summary>
    /// Legs prepared longer than the abandonment timeout, legs this leader inherited or was told to fence and whose Finish is
    /// late (they fence accounts), and legs whose
    /// coordinator was replaced by a newer leader of their home (it dropped them if undecided): ask their home shard what
    /// was decided. A home that no longer holds the transaction in memory (its coordinator leader changed
    /// before deciding) settles it through Raft at once, so an inherited leg of an abandoned transaction fences for a
    /// round trip and a write instead of the abandonment timeout; one still in progress answers undecided and finishes it.
    /// </summary>
    private void TickParticipant()
    {
        List<(UInt128 Id, int Home)>? queries = null;
        foreach (var (transactionId, prepared) in preparedHere)
        {
            var due = nowNs >= prepared.PreparedAt + options.AbandonTimeoutNs || (inheritedLegs.Count != 0 && inheritedLegs.ContainsKey(transactionId)) ||
                AnnouncedFenceIsLate(transactionId) || CoordinatorReplaced(transactionId, prepared.Home);
            if (due && nowNs - prepared.LastQueryNs >= options.RetryIntervalNs &&
                !finishQueued.ContainsKey(transactionId))
            {
                prepared.LastQueryNs = nowNs;
                (queries ??= []).Add((transactionId, prepared.Home));
            }
        }

        foreach (var (transactionId, home) in queries ?? [])
        {
            Send(home, new CrossShardMessage(CrossShardMessageKind.Query, home, shard, transactionId));
        }
    }

    private sealed class PreparedHere(int home, ulong preparedAt, Leg[] legs)
    {
        public int Home { get; } = home;

        /// <summary>The legs prepared here (their count is the copies a commit stores; their accounts are what a fence closes).</summary>
        public Leg[] Legs { get; } = legs;

        public int LegCount => Legs.Length;

        /// <summary>When this leader fenced the legs on the home's Fence (0: not announced).</summary>
        public ulong FencedAtNs { get; set; }

        public ulong PreparedAt { get; } = preparedAt;

        public ulong LastQueryNs { get; set; }
    }
}
