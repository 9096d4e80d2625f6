using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// Posts and voids inside a cross-shard chain whose pending transfer P lives on another shard p than this (the chain's
// coordinating) shard (docs/design/cross-shard.md, "Posts and voids of another shard's pending transfer in a chain"):
// 1. PendingLookup round: p's leader answers P as it holds it (no Raft write; not while a transaction there holds P);
//    P's fields never change, so the coordinator checks and resolves the post/void on them as if P were here.
// 2. A status leg on p (LegSides.Status) goes with the chain's other legs: p's Prepare checks P is still pending and
//    holds P's id (LegHold) until Finish, so no other post, void or expiry of P decides meanwhile.
// 3. Decide here (the commit point) compares its timestamp with P's expiry (DecideFlags.PendingElsewhere).
// 4. Finish(commit) at p sets P's status to posted / voided; an abort releases the hold.
public sealed partial class CrossShardDriver
{
    // Units waiting for their pending transfers' homes to answer a PendingLookup (leader only), by lookup id.
    // Invariant: each counts once in its request's Open.
    private readonly Dictionary<UInt128, PendingLookup> pendingLookups = [];

    /// <summary>
    /// True when event <paramref name="i"/> of a chain is a post/void of a pending transfer homed on another shard and
    /// stored there (not one created by an earlier event of the same chain, which the chain's own Decide resolves).
    /// </summary>
    private bool PendingElsewhere(ReadOnlySpan<Transfer> events, CrossShardChainIndex chain, int i) =>
        IsPostOrVoid(events[i]) && ShardOf(events[i].PendingId) != shard && chain.PendingIndexOf(i) < 0;

    /// <summary>
    /// Starts reading the pending transfers of the chain's posts/voids that live on other shards; false when there are
    /// none (the unit starts at once). The unit is started again with what was read (<see cref="OnPendingFound"/>).
    /// </summary>
    private bool StartPendingLookup(Request request, ReadOnlySpan<Transfer> events, int offset, int restarts)
    {
        Dictionary<int, List<UInt128>>? asked = null;
        var chain = CrossShardChainIndex.Of(events);
        for (var i = 0; i < events.Length; i++)
        {
            ref readonly var t = ref events[i];
            if (!PendingElsewhere(events, chain, i))
            {
                continue;
            }

            asked ??= [];
            var home = ShardOf(t.PendingId);
            if (!asked.TryGetValue(home, out var ids))
            {
                ids = [];
                asked.Add(home, ids);
            }

            if (!ids.Contains(t.PendingId))
            {
                ids.Add(t.PendingId);
            }
        }

        if (asked is null)
        {
            return false;
        }

        var lookup = new PendingLookup(NextTransactionId(), request, events.ToArray(), offset, restarts, nowNs);
        foreach (var (home, ids) in asked)
        {
            lookup.Awaited.Add(home, ids.ToArray());
        }

        pendingLookups.Add(lookup.Id, lookup);
        request.Open++;
        SendPendingLookups(lookup);
        return true;
    }

    private void SendPendingLookups(PendingLookup lookup)
    {
        lookup.SentNs = nowNs;
        foreach (var (home, ids) in lookup.Awaited)
        {
            Send(home, new CrossShardMessage(CrossShardMessageKind.PendingLookup, shard, shard, lookup.Id) { AccountIds = ids });
        }
    }

    /// <summary>
    /// A chain coordinator asks for pending transfers homed here: answered from this leader's applied state, unless a
    /// transaction here still holds one (its own transaction not finished everywhere, a post, void or expiry of it in
    /// flight, another chain's status leg): then not at all, and the coordinator asks again.
    /// </summary>
    private void OnPendingLookupRequest(CrossShardMessage message)
    {
        var pendings = new ForeignPending[message.AccountIds.Length];
        for (var i = 0; i < pendings.Length; i++)
        {
            var id = message.AccountIds[i];
            if (ShardOf(id) != shard)
            {
                MessagesDropped++;
                return;
            }

            if (unfinishedEvents.ContainsKey(id) || claimedIds.Contains(id))
            {
                return; // Busy: asked again every retry interval.
            }

            pendings[i] = ledger.CrossShardPendingHere(id);
        }

        Send(message.Home, new CrossShardMessage(CrossShardMessageKind.PendingFound, message.Home, shard, message.TransactionId) { Pendings = pendings });
    }

    private void OnPendingFound(CrossShardMessage message)
    {
        if (message.Home != shard || !pendingLookups.TryGetValue(message.TransactionId, out var lookup) ||
            !lookup.Awaited.TryGetValue(message.From, out var asked) || message.Pendings.Length != asked.Length)
        {
            return; // Late, duplicate or not ours.
        }

        for (var i = 0; i < asked.Length; i++)
        {
            if (message.Pendings[i].Id != asked[i])
            {
                MessagesDropped++;
                return;
            }
        }

        foreach (var pending in message.Pendings)
        {
            lookup.Found[pending.Id] = pending;
        }

        lookup.Awaited.Remove(message.From);
        if (lookup.Awaited.Count != 0)
        {
            return;
        }

        pendingLookups.Remove(lookup.Id);
        if (!requests.ContainsKey(lookup.Request.Token))
        {
            return;
        }

        StartUnit(lookup.Request, lookup.Events, lookup.Offset, lookup.Restarts, lookup.Found);
        lookup.Request.Open--;
        MaybeAnswer(lookup.Request);
    }

    /// <summary>Resends unanswered lookups; one unanswered for the coordinator timeout fails its unit (503: nothing was prepared).</summary>
    private void TickPendingLookups()
    {
        List<PendingLookup>? timedOut = null;
        foreach (var lookup in pendingLookups.Values)
        {
            if (nowNs - lookup.StartedNs >= options.CoordinatorTimeoutNs)
            {
                (timedOut ??= []).Add(lookup);
            }
            else if (nowNs - lookup.SentNs >= options.RetryIntervalNs)
            {
                SendPendingLookups(lookup);
            }
        }

        foreach (var lookup in timedOut ?? [])
        {
            pendingLookups.Remove(lookup.Id);
            var request = lookup.Request;
            request.FailDetail ??= $"A pending transfer posted or voided in a cross-shard chain could not be read from its shard in time (or is busy with another transfer): nothing was created; retry with the same ids.";
            request.Open--;
            MaybeAnswer(request);
        }
    }

    /// <summary>A chain event's status on this shard's state and the pending transfers read from their homes.</summary>
    private CreateTransferResult ForeignChainEventStatus(ref Transfer t, Dictionary<UInt128, ForeignPending> found)
    {
        Invariant.Check(found.ContainsKey(t.PendingId), "every pending transfer homed elsewhere was read");
        var status = ledger.CrossShardForeignPostOrVoidStatus(t, found[t.PendingId], out var resolved);
        if (status == CreateTransferResult.Created)
        {
            t = resolved;
        }

        return status;
    }

    /// <summary>
    /// What the coordinator makes of a status leg's report for event <paramref name="i"/>: the pending transfer's status
    /// when it is no longer pending (that is the event's status), Ok, or busy (abort without statuses, the client retries).
    /// </summary>
    private static SideReport StatusLegReport(Transaction transaction, int i, int pendingShard, int debitShard, int creditShard)
    {
        var report = ReportOf(transaction, i, pendingShard, debitSide: true);
        if (report.Outcome is LegOutcome.PendingStatus or LegOutcome.Ok or LegOutcome.IdBusy)
        {
            return report;
        }

        if (report.Outcome == LegOutcome.NotEvaluated)
        {
            return SideReport.Ok; // An earlier event of the chain failed on that shard: the chain fails there.
        }

        // On a shard holding one of the accounts the report is that side's (its own outcome, combined as usual); on a
        // shard holding only the status, anything else (a late duplicate found finished) must not commit.
        return pendingShard == debitShard || pendingShard == creditShard ? SideReport.Ok : new SideReport(LegOutcome.IdBusy, 0);
    }

    /// <summary>Per event, for Decide: 0, or the pending transfer's expires-at when it lives on another shard.</summary>
    private static DecideItem WithPendingElsewhere(DecideItem item, Transaction transaction)
    {
        if (transaction.Foreign is null)
        {
            return item;
        }

        var expiresAt = new ulong[item.Events.Length];
        for (var i = 0; i <= transaction.PrepareCount && i < item.Events.Length; i++)
        {
            // The event after the prepared ones failed here: when on its pending transfer, Decide takes that status from
            // its leg status (EnqueueDecide), so it is marked too.
            if (IsPostOrVoid(item.Events[i]) && transaction.Foreign.TryGetValue(item.Events[i].PendingId, out var p))
            {
                expiresAt[i] = p.Found ? LedgerStateMachine.ForeignExpiresAt(p.Transfer) : ulong.MaxValue;
            }
        }

        return item with { Flags = item.Flags | DecideFlags.PendingElsewhere, PendingExpiresAt = expiresAt };
    }

    // A status leg's pending id is held here from the Prepare being queued (like a claimed id): a post/void or expiry of
    // it coordinated here waits, and the fast path does not take one. Listed for every transaction that holds it (not
    // only the first), so that whichever frees it last finds it (FreeIds keeps it while a LegHold record remains).
    private static void AddHeldPendingIds(Leg[] legs, ref List<UInt128>? ids, HashSet<UInt128> claimed)
    {
        foreach (var leg in legs)
        {
            if ((leg.Sides & LegSides.Status) != 0)
            {
                claimed.Add(leg.Transfer.PendingId);
                (ids ??= []).Add(leg.Transfer.PendingId);
            }
        }
    }

    private bool AnyStatusLegBusyHere(Leg[] legs)
    {
        foreach (var leg in legs)
        {
            if ((leg.Sides & LegSides.Status) != 0 && unfinishedEvents.ContainsKey(leg.Transfer.PendingId))
            {
                return true;
            }
        }

        return false;
    }

    private sealed class PendingLookup(UInt128 id, Request request, Transfer[] events, int offset, int restarts, ulong startedNs)
    {
        public UInt128 Id { get; } = id;

        public Request Request { get; } = request;

        public Transfer[] Events { get; } = events;

        public int Offset { get; } = offset;

        public int Restarts { get; } = restarts;

        public ulong StartedNs { get; } = startedNs;

        public ulong SentNs { get; set; }

        /// <summary>Shards not answered yet, with the pending ids asked of each.</summary>
        public Dictionary<int, UInt128[]> Awaited { get; } = [];

        public Dictionary<UInt128, ForeignPending> Found { get; } = [];
    }
}
