using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// The coordinator: the home shard's leader drives each transaction from prepare to retire.
public sealed partial class CrossShardDriver
{
    private readonly Dictionary<long, Request> requests = [];

    // Invariant: every transaction of a request is in here until the request is answered.
    private readonly Dictionary<UInt128, Transaction> transactions = [];

    // Event id → the transaction holding it, from Submit until every participant finished it. A unit
    // reusing one of these ids waits for that transaction (a retry must not answer exists before the
    // legs are posted, nor reserve a second time). Invariant: every value is in transactions.
    private readonly Dictionary<UInt128, Transaction> unfinishedEvents = [];

    // Units whose id (homed here) is claimed by another shard's transaction: started once it is free.
    private readonly List<WaitingUnit> claimWaiters = [];

    /// <summary>
    /// Starts a cross-shard request (leader only): the events <see cref="Classify"/> marked, in request
    /// order. Each non-linked event and each linked chain is one transaction. The request is answered
    /// with one <see cref="CompleteAction"/> (or <see cref="FailAction"/>) once every transaction is decided.
    /// </summary>
    public void Submit(long requestToken, ReadOnlySpan<Transfer> transfers)
    {
        if (!isLeader)
        {
            actions.Enqueue(new FailAction(requestToken, false, $"Shard {shard} is not the leader here: send the request to the leader."));
            return;
        }

        if (requests.ContainsKey(requestToken) || transfers.Length > LedgerLimits.BatchEventsMax)
        {
            throw new ArgumentException($"Request token {requestToken} is in use, or the request has more than {LedgerLimits.BatchEventsMax} events.", nameof(requestToken));
        }

        if (transactions.Count + UnitCount(transfers) > CrossShardLimits.CoordinatorTransactionsMax)
        {
            actions.Enqueue(new FailAction(requestToken, false,
                $"Shard {shard} has {transactions.Count} cross-shard transactions in flight (at most {CrossShardLimits.CoordinatorTransactionsMax}): retry later."));
            return;
        }

        // Long chains are bounded by events too, so the transactions held (and their legs, Decide items and messages)
        // stay within what 4,096 chains of 64 events took. Counted only for such requests: short ones fit by the count above.
        if (transfers.Length > CrossShardLimits.ShortRequestEventsMax && EventsHeld() + transfers.Length > CrossShardLimits.CoordinatorEventsMax)
        {
            actions.Enqueue(new FailAction(requestToken, false,
                $"Shard {shard} holds cross-shard transactions of more than {CrossShardLimits.CoordinatorEventsMax - transfers.Length} events: retry later."));
            return;
        }

        nowNs = Math.Max(nowNs, ledger.LastTimestamp); // Cluster time is at least the last applied timestamp.
        var request = new Request(requestToken, transfers.Length);
        requests.Add(requestToken, request);
        var start = 0;
        for (var i = 0; i < transfers.Length; i++)
        {
            if ((transfers[i].Flags & TransferFlags.Linked) == 0 || i == transfers.Length - 1)
            {
                StartUnit(request, transfers[start..(i + 1)], start);
                start = i + 1;
            }
        }

        MaybeAnswer(request);
    }

    /// <summary>Events of the transactions this coordinator holds.</summary>
    private long EventsHeld()
    {
        long events = 0;
        foreach (var transaction in transactions.Values)
        {
            events += transaction.Events.Length;
        }

        return events;
    }

    /// <summary>Transactions a request makes at most: one per non-linked event or chain (an unclosed chain at the end is one too).</summary>
    private static int UnitCount(ReadOnlySpan<Transfer> transfers)
    {
        var units = 0;
        for (var i = 0; i < transfers.Length; i++)
        {
            units += (transfers[i].Flags & TransferFlags.Linked) == 0 || i == transfers.Length - 1 ? 1 : 0;
        }

        return units;
    }

    /// <summary>Starts one transaction (a single event or a chain), or answers it at once when its first event fails on this shard's state alone.</summary>
    /// <remarks>
    /// A chain with a post/void of a pending transfer homed on another shard first reads it there
    /// (<see cref="StartPendingLookup"/>) and comes back here with <paramref name="foreign"/>.
    /// </remarks>
    private void StartUnit(Request request, ReadOnlySpan<Transfer> events, int offset, int restarts = 0, Dictionary<UInt128, ForeignPending>? foreign = null)
    {
        var n = events.Length;
        Invariant.Check(n is > 0 and <= CrossShardLimits.TransactionEventsMax, "a chain is part of one request");

        if (WaitForEarlierTransaction(request, events, offset))
        {
            return;
        }

        if (n == 1 && IsPostOrVoid(events[0]))
        {
            if (ShardOf(events[0].PendingId) != shard)
            {
                StartDelegation(request, events[0], offset);
                return;
            }

            StartPostOrVoid(request, events[0], offset);
            return;
        }

        if (foreign is null && StartPendingLookup(request, events, offset, restarts))
        {
            return;
        }

        var prepareCount = n;
        var firstStatus = CreateTransferResult.Created;
        var unit = events.ToArray(); // A chain's posts/voids are replaced by their resolved form.
        var chain = CrossShardChainIndex.Of(events);
        for (var i = 0; i < n && prepareCount == n; i++)
        {
            var status = (events[i].Flags & TransferFlags.Linked) != 0 && i == n - 1
                ? CreateTransferResult.LinkedEventChainOpen
                : chain.PendingIndexOf(i) is var j and >= 0 ? SameChainEventStatus(unit, i, j)
                : PendingElsewhere(events, chain, i) ? ForeignChainEventStatus(ref unit[i], foreign!) : ChainEventStatus(ref unit[i]);
            if (status != CreateTransferResult.Created)
            {
                prepareCount = i;
                firstStatus = status;
            }
        }

        if (prepareCount == 0 && !LedgerResults.IsTransient(firstStatus))
        {
            // Fails on this shard's committed state alone (these statuses never turn back into created).
            request.Results.AsSpan(offset, n).Fill(CreateTransferResult.LinkedEventFailed);
            request.Results[offset] = firstStatus;
            return;
        }

        var transaction = new Transaction(NextTransactionId(), request, offset, unit, prepareCount, nowNs) { Original = events.ToArray(), Restarts = restarts, Foreign = foreign, FirstFailure = firstStatus };
        transactions.Add(transaction.Id, transaction);
        IndexEvents(transaction, UnitIdsOf(unit));
        request.Open++;
        if (prepareCount > 0 && StartSnapshot(transaction))
        {
            return; // A balancing transfer: its amount is clamped on a snapshot of its accounts first (BeginPrepare later).
        }

        BeginPrepare(transaction);
    }

    /// <summary>Assigns the transaction's legs and sends its Prepares (or decides at once when nothing is to prepare).</summary>
    private void BeginPrepare(Transaction transaction)
    {
        AssignLegs(transaction);
        if (transaction.PrepareCount == 0)
        {
            EnqueueDecide(transaction, DecideFlags.None); // A transient failure burns the id through Decide, as locally.
        }
        else if (!HasPostOrVoid(transaction.Events) && transaction.Participants.TryGetValue(shard, out var own))
        {
            // The home's own sides are checked and posted by Decide itself (DecideFlags.HomeInline): no Prepare
            // here, so nothing is reserved or recorded on this shard before the decision. A chain with a post/void
            // keeps the prepared path: its Resolve legs post or release a pending transfer, which the inline checks
            // do not cover.
            transaction.HomeInline = true;
            own.Reports = [];
            own.Prepared = true;
        }

        foreach (var participant in transaction.Participants.Values)
        {
            if (participant.Reports is null)
            {
                SendPrepare(transaction, participant);
            }
        }

        if (AllAnswered(transaction))
        {
            EnqueueDecide(transaction, DecideFlags.None);
        }
    }

    private static bool AllAnswered(Transaction transaction)
    {
        foreach (var participant in transaction.Participants.Values)
        {
            if (participant.Reports is null)
            {
                return false;
            }
        }

        return true;
    }

    private static bool HasPostOrVoid(Transfer[] unit)
    {
        foreach (var t in unit)
        {
            if (IsPostOrVoid(t))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsPostOrVoid(in Transfer t) => (t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0;

    /// <summary>
    /// A post/void of a pending transfer stored here whose accounts live elsewhere: checked against the
    /// pending transfer here (answered at once when that fails), then one leg per account shard (nothing
    /// reserved; the post moves pending to posted there). Decide re-checks the pending status in log order.
    /// </summary>
    private void StartPostOrVoid(Request request, in Transfer t, int offset)
    {
        var status = ledger.CrossShardPostOrVoidStatus(t, out var resolved);
        if (status != CreateTransferResult.Created && !LedgerResults.IsTransient(status))
        {
            request.Results[offset] = status;
            return;
        }

        // A transient failure (pending_transfer_not_found) burns the id as the local path does: through a
        // Decide with no legs, which re-checks in log order and records the failure.
        var prepareCount = status == CreateTransferResult.Created ? 1 : 0;
        var transaction = new Transaction(NextTransactionId(), request, offset, [resolved], prepareCount, nowNs);
        AssignLegs(transaction);
        transactions.Add(transaction.Id, transaction);

        // The pending id too: a concurrent second post/void waits, then answers already_posted/voided.
        IndexEvents(transaction, [resolved.Id, resolved.PendingId]);
        request.Open++;
        if (prepareCount == 0)
        {
            EnqueueDecide(transaction, DecideFlags.None);
        }

        foreach (var participant in transaction.Participants.Values)
        {
            SendPrepare(transaction, participant);
        }
    }

    /// <summary>
    /// When an event of the unit reuses the id of a transaction not finished everywhere yet (a retry, or a
    /// concurrent duplicate), the unit waits for it and is started afresh afterwards: it then answers
    /// exists (or prepares, if that transaction aborted) only once that transaction's legs are posted or
    /// released on every shard.
    /// </summary>
    private bool WaitForEarlierTransaction(Request request, ReadOnlySpan<Transfer> events, int offset)
    {
        if (AnyClaimed(events))
        {
            backgroundDue = true; // Ids claimed by legs prepared here are freed by their Finish.
            claimWaiters.Add(new WaitingUnit(request, events.ToArray(), offset));
            request.Open++;
            request.Waiting++;
            return true;
        }

        foreach (ref readonly var t in events)
        {
            // A post/void also waits for its pending transfer's transaction (its legs must be finished
            // everywhere first) and for another post/void of the same pending transfer.
            if (unfinishedEvents.TryGetValue(t.Id, out var earlier) ||
                (IsPostOrVoid(t) && unfinishedEvents.TryGetValue(t.PendingId, out earlier)))
            {
                Invariant.Check(transactions.ContainsKey(earlier.Id), "an indexed transaction is in flight");
                earlier.Waiters.Add(new WaitingUnit(request, events.ToArray(), offset));
                request.Open++;
                request.Waiting++;
                return true;
            }
        }

        return false;
    }

    private bool AnyClaimed(ReadOnlySpan<Transfer> events)
    {
        if (claimedIds.Count == 0)
        {
            return false;
        }

        foreach (ref readonly var t in events)
        {
            // A post/void also waits while another shard's chain holds its pending transfer here (a status leg).
            if (claimedIds.Contains(t.Id) || (IsPostOrVoid(t) && claimedIds.Contains(t.PendingId)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Starts the units that waited for a claim on one of their ids, once none is claimed any more.</summary>
    private void StartUnclaimedWaiters()
    {
        for (var i = 0; i < claimWaiters.Count; i++)
        {
            var waiting = claimWaiters[i];
            if (AnyClaimed(waiting.Events) || !requests.ContainsKey(waiting.Request.Token))
            {
                continue;
            }

            claimWaiters.RemoveAt(i--);
            waiting.Request.Waiting--;
            StartUnit(waiting.Request, waiting.Events, waiting.Offset);
            waiting.Request.Open--;
            MaybeAnswer(waiting.Request);
        }
    }

    private void IndexEvents(Transaction transaction, UInt128[] eventIds)
    {
        transaction.EventIds = eventIds;
        foreach (var id in eventIds)
        {
            unfinishedEvents.TryAdd(id, transaction); // A chain may repeat an id: the first holds it.
        }
    }

    private UInt128 NextTransactionId()
    {
        // Unique across the cluster: participants key prepared legs by it. The home shard, its term
        // (one leader per term) and a sequence within the term: term << 64 | shard << 48 | sequence.
        Invariant.Check(term > 0, "a leader has a term");
        Invariant.Check(transactionSequence < (1UL << 48) - 1, "a term starts fewer than 2^48 transactions");
        return ((UInt128)term << 64) | ((UInt128)(ulong)shard << 48) | ++transactionSequence;
    }

    /// <summary>
    /// One leg per (shard, event): the debit side on the debit account's shard, the credit side on the
    /// credit account's, and the id side on the id's home when that is not this (coordinating) shard, so
    /// that every event's id is checked and claimed where ids with that home are unique.
    /// </summary>
    private void AssignLegs(Transaction transaction)
    {
        var legsByShard = new Dictionary<int, List<Leg>>();
        var sides = new Dictionary<int, LegSides>(3);
        var chain = CrossShardChainIndex.Of(transaction.Events.AsSpan(0, transaction.PrepareCount));
        for (var i = 0; i < transaction.PrepareCount; i++)
        {
            var t = transaction.Events[i];
            var resolve = IsPostOrVoid(t) ? LegSides.Resolve : LegSides.None; // t is resolved: the pending's accounts
            sides.Clear();
            AddSide(sides, ShardOf(t.DebitAccountId), LegSides.Debit | resolve);
            AddSide(sides, ShardOf(t.CreditAccountId), LegSides.Credit | resolve);
            if (resolve != LegSides.None && ShardOf(t.PendingId) != shard && chain.PendingIndexOf(i) < 0)
            {
                AddSide(sides, ShardOf(t.PendingId), LegSides.Status); // Its pending transfer's home checks and holds it.
            }

            if (ShardOf(t.Id) != shard)
            {
                AddSide(sides, ShardOf(t.Id), IdSidesOf(transaction, chain, i));
            }

            var guard = transaction.Guards.Length == 0 ? BalancingGuard.None : transaction.Guards[i];
            foreach (var (legShard, legSides) in sides)
            {
                var requested = (guard & BalancingGuard.Clamped) != 0 ? transaction.Requested[i] : UInt128.Zero;
                LegsOf(legsByShard, legShard).Add(new Leg((ushort)i, legSides, t) { Guard = guard, Requested = requested });
            }
        }

        foreach (var (participantShard, legs) in legsByShard)
        {
            transaction.Participants.Add(participantShard, new Participant(participantShard, legs.ToArray()));
        }

        Invariant.Check(transaction.Participants.Count <= CrossShardLimits.TransactionShardsMax);
    }

    private static void AddSide(Dictionary<int, LegSides> sides, int legShard, LegSides side) =>
        sides[legShard] = sides.GetValueOrDefault(legShard) | side;

    private static List<Leg> LegsOf(Dictionary<int, List<Leg>> legsByShard, int participantShard)
    {
        if (!legsByShard.TryGetValue(participantShard, out var legs))
        {
            legs = [];
            legsByShard.Add(participantShard, legs);
        }

        return legs;
    }

    private void SendPrepare(Transaction transaction, Participant participant)
    {
        participant.LastSentNs = nowNs;
        Send(participant.Shard, new CrossShardMessage(CrossShardMessageKind.Prepare, shard, shard, transaction.Id) { Legs = participant.Legs });
    }

    private void OnPreparedReply(CrossShardMessage message)
    {
        if (message.Home != shard || !transactions.TryGetValue(message.TransactionId, out var transaction) ||
            transaction.Phase != Phase.Preparing || !transaction.Participants.TryGetValue(message.From, out var participant) ||
            participant.Reports is not null || message.Reports.Length != participant.Legs.Length)
        {
            return; // Late, duplicate or not ours.
        }

        participant.Reports = message.Reports;
        participant.Prepared = message.Prepared;
        if (AllAnswered(transaction))
        {
            EnqueueDecide(transaction, DecideFlags.None);
        }
    }

    /// <summary>Every participant answered (or the wait timed out): the per-event statuses go to Decide, the commit point.</summary>
    private void EnqueueDecide(Transaction transaction, DecideFlags flags)
    {
        var events = transaction.Events;
        var chain = CrossShardChainIndex.Of(events);
        var legStatuses = new byte[events.Length];
        Array.Fill(legStatuses, CrossShardRules.NotPrepared);
        var inline = transaction.HomeInline;
        var homeSides = inline ? new LegSides[events.Length] : [];
        var remote = inline ? new LegReport[events.Length] : [];
        if ((flags & DecideFlags.ForceAbort) == 0)
        {
            for (var i = 0; i < transaction.PrepareCount; i++)
            {
                // The id's home answers first: TigerBeetle checks the id before the accounts.
                var id = ShardOf(events[i].Id) == shard ? SideReport.Ok : ReportOf(transaction, i, ShardOf(events[i].Id), debitSide: true);
                if (id.Outcome == LegOutcome.IdBusy)
                {
                    flags |= DecideFlags.ForceAbort; // Another transaction holds the id: abort, the client retries.
                    break;
                }

                var debitShard = ShardOf(events[i].DebitAccountId);
                var creditShard = ShardOf(events[i].CreditAccountId);
                if (id.Outcome != LegOutcome.IdTaken && PendingElsewhere(events, chain, i))
                {
                    var pending = StatusLegReport(transaction, i, ShardOf(events[i].PendingId), debitShard, creditShard);
                    if (pending.Outcome == LegOutcome.IdBusy)
                    {
                        flags |= DecideFlags.ForceAbort; // Another transaction holds the pending transfer there: the client retries.
                        break;
                    }

                    if (pending.Outcome == LegOutcome.PendingStatus)
                    {
                        legStatuses[i] = (byte)pending.Ledger; // Not pending any more: that is its status (before the accounts').
                        continue;
                    }
                }

                var debit = inline && debitShard == shard ? SideReport.Ok : ReportOf(transaction, i, debitShard, debitSide: true);
                var credit = inline && creditShard == shard ? SideReport.Ok : ReportOf(transaction, i, creditShard, debitSide: false);
                if (debit.Outcome is LegOutcome.IdBusy or LegOutcome.StaleClamp || credit.Outcome is LegOutcome.IdBusy or LegOutcome.StaleClamp)
                {
                    // A post/void leg found no copy of its pending transfer yet, or a balancing side's headroom changed
                    // since the snapshot: abort (a stale clamp is restarted here, see RestartIfClampWasStale).
                    transaction.StaleClamp |= debit.Outcome == LegOutcome.StaleClamp || credit.Outcome == LegOutcome.StaleClamp;
                    flags |= DecideFlags.ForceAbort;
                    break;
                }

                if (inline)
                {
                    // Decide checks the home's sides and combines them with these reports (Created = to be combined).
                    homeSides[i] = (debitShard == shard ? LegSides.Debit : LegSides.None) | (creditShard == shard ? LegSides.Credit : LegSides.None);
                    remote[i] = new LegReport((ushort)i, debit, credit);
                    legStatuses[i] = id.Outcome == LegOutcome.IdTaken ? (byte)id.Ledger : (byte)CreateTransferResult.Created;
                    continue;
                }

                legStatuses[i] = id.Outcome == LegOutcome.IdTaken
                    ? (byte)id.Ledger
                    : (byte)CrossShardRules.Combine(events[i], debit, credit);
            }

            if ((flags & DecideFlags.ForceAbort) != 0)
            {
                Array.Fill(legStatuses, CrossShardRules.NotPrepared);
            }
            else if (transaction.PrepareCount < events.Length && transaction.Foreign is not null && IsPostOrVoid(events[transaction.PrepareCount]) &&
                transaction.Foreign.ContainsKey(events[transaction.PrepareCount].PendingId) &&
                LedgerStateMachine.IsPendingCheckStatus((byte)transaction.FirstFailure))
            {
                // It failed on its pending transfer as read from that transfer's home, which Decide here cannot re-read.
                legStatuses[transaction.PrepareCount] = (byte)transaction.FirstFailure;
            }
        }

        // Decide must find this shard's own legs still prepared (or abort without statuses).
        if (inline)
        {
            flags |= DecideFlags.HomeInline;
        }
        else if (transaction.Participants.TryGetValue(shard, out var home) && home.Prepared)
        {
            flags |= DecideFlags.HomeHasLegs;
        }

        var participants = new List<int>();
        foreach (var participantShard in transaction.Participants.Keys)
        {
            if (participantShard != shard)
            {
                participants.Add(participantShard);
            }
        }

        participants.Sort();
        transaction.Phase = Phase.Deciding;
        var clamped = transaction.Guards.Length != 0;
        flags |= clamped ? DecideFlags.Clamped : DecideFlags.None;
        transaction.Decide = WithPendingElsewhere(WithExpiresElsewhere(new DecideItem(transaction.Id, flags, participants.ToArray(), events, legStatuses)
        {
            HomeSides = homeSides,
            Remote = remote,
            Guards = transaction.Guards,
            Requested = transaction.Requested,
        }), transaction);
        decideQueue.Add(transaction.Decide);
        AnnounceDecide(transaction);
    }

    /// <summary>
    /// Asks every participant that may hold legs to fence them while Decide commits (Fence): one that does can be left
    /// out of the answer's wait, which then ends with the Decide instead of a Finish round trip later.
    /// </summary>
    private void AnnounceDecide(Transaction transaction)
    {
        foreach (var participantShard in transaction.Decide!.Participants)
        {
            if (MayHoldLegs(transaction, participantShard))
            {
                Send(participantShard, new CrossShardMessage(CrossShardMessageKind.Fence, shard, shard, transaction.Id));
            }
        }
    }

    private void OnFencedReply(UInt128 transactionId, int from)
    {
        if (!transactions.TryGetValue(transactionId, out var transaction))
        {
            return;
        }

        if (transaction.Phase == Phase.Deciding)
        {
            transaction.Fenced.Add(from);
        }
        else if (transaction.Phase == Phase.Finishing && transaction.Untaken.Remove(from))
        {
            MaybeAnswerOnceTaken(transaction);
        }
    }

    private static SideReport ReportOf(Transaction transaction, int eventIndex, int participantShard, bool debitSide)
    {
        var participant = transaction.Participants[participantShard];
        var reports = participant.Reports!;
        for (var k = 0; k < reports.Length; k++)
        {
            if (reports[k].EventIndex == eventIndex)
            {
                return debitSide ? reports[k].Debit : reports[k].Credit;
            }
        }

        throw new InvariantViolationException($"participant {participantShard} sent no report for event {eventIndex}");
    }

    /// <summary>Decide was applied: answer the client's part, then finish the participants.</summary>
    private void OnDecided(DecideItem item, CrossShardDecision decision, ReadOnlySpan<byte> statuses)
    {
        if (!transactions.TryGetValue(item.TransactionId, out var transaction) || transaction.Phase != Phase.Deciding)
        {
            return;
        }

        var fresh = decision != CrossShardDecision.AlreadyDecided;
        if (!fresh)
        {
            // A duplicate Decide, or a tombstone won: the ledger holds the outcome.
            decision = CrossShardCommand.TryGetCoordinatorRecord(ledger.Store, item.TransactionId, out var record)
                ? (record.Decision == CrossShardDecision.Committed ? CrossShardDecision.Committed : CrossShardDecision.AbortedWithoutStatus)
                : CrossShardDecision.AbortedWithoutStatus;
        }

        preparedHere.Remove(item.TransactionId); // This shard's own legs were finished by Decide itself.
        if (fresh && decision == CrossShardDecision.AbortedWithoutStatus && (item.Flags & (DecideFlags.HomeInline | DecideFlags.ForceAbort)) == DecideFlags.HomeInline &&
            transaction.Guards.Length != 0)
        {
            transaction.StaleClamp = true; // The home's own balancing side found the clamp stale (or a held leg: a restart is harmless).
        }

        transaction.Outcome = decision;
        transaction.Statuses = statuses.ToArray();
        if (fresh)
        {
            // This Decide wrote the coordinator record from the item: no need to read it back.
            StartFinishing(transaction, decision == CrossShardDecision.Committed ? CrossShardDecision.Committed : CrossShardDecision.Aborted, item.Participants, retire: true);
            return;
        }

        if (!CrossShardCommand.TryGetCoordinatorRecord(ledger.Store, item.TransactionId, out var stored))
        {
            // Tombstoned (a participant's query aborted it first): nothing durable to retire, but the
            // client is answered only once every participant we sent a Prepare has released its legs.
            StartFinishing(transaction, CrossShardDecision.Aborted, OtherParticipants(transaction), retire: false);
            return;
        }

        StartFinishing(transaction, stored.Decision, stored.Participants, retire: true);
    }

    private int[] OtherParticipants(Transaction transaction)
    {
        var participants = new List<int>(transaction.Participants.Count);
        foreach (var participantShard in transaction.Participants.Keys)
        {
            if (participantShard != shard)
            {
                participants.Add(participantShard);
            }
        }

        participants.Sort();
        return participants.ToArray();
    }

    private void AnswerTransaction(Transaction transaction, CrossShardDecision decision, ReadOnlySpan<byte> statuses)
    {
        var request = transaction.Request;
        if (request is null)
        {
            return;
        }

        transaction.Request = null;
        request.Open--;
        var results = request.Results.AsSpan(transaction.Offset, transaction.Events.Length);
        if (decision == CrossShardDecision.Committed)
        {
            results.Fill(CreateTransferResult.Created);
            for (var i = 0; i < transaction.Events.Length; i++)
            {
                Invariant.Check(ledger.TryLookupTransfer(transaction.Events[i].Id, out var created), "a committed transfer is stored at home");
                request.Timestamps[transaction.Offset + i] = created.Timestamp;
            }

            request.AnyCommitted = true;
        }
        else if (decision == CrossShardDecision.Aborted)
        {
            for (var i = 0; i < results.Length; i++)
            {
                results[i] = (CreateTransferResult)statuses[i];
            }
        }
        else
        {
            request.FailDetail ??= $"Cross-shard transaction {transaction.Id:X32} was aborted before a decision (a participant shard did not answer in time, or one of its ids is held by another transfer in flight): nothing of it was created; retry with the same ids.";
        }

        MaybeAnswer(request);
    }

    private void MaybeAnswer(Request request)
    {
        if (request.Open != 0 || !requests.Remove(request.Token))
        {
            return;
        }

        if (request.ReplyTo >= 0)
        {
            AnswerDelegation(request); // A post/void delegated by its id's home: the answer goes there.
            return;
        }

        actions.Enqueue(request.FailDetail is null
            ? new CompleteAction(request.Token, request.Results, request.Timestamps)
            : new FailAction(request.Token, request.AnyCommitted, request.FailDetail));
    }

    private void StartFinishing(Transaction transaction, CrossShardDecision decision, int[] participants, bool retire)
    {
        transaction.Phase = Phase.Finishing;
        transaction.Decision = decision;
        transaction.Retire = retire;
        transaction.Unacknowledged.Clear();
        transaction.Untaken.Clear();
        foreach (var participantShard in participants)
        {
            transaction.Unacknowledged.Add(participantShard);
            if (MayHoldLegs(transaction, participantShard) && !transaction.Fenced.Contains(participantShard))
            {
                transaction.Untaken.Add(participantShard);
            }

            SendFinish(transaction, participantShard);
        }

        transaction.LastFinishSentNs = nowNs;
        MaybeAnswerOnceTaken(transaction);
        MaybeRetire(transaction);
    }

    /// <summary>
    /// False only for a participant that answered its Prepare with a refusal: it holds nothing, so the client need not wait
    /// for it. One that prepared, or whose answer never came (it may have prepared), must take the Finish first.
    /// </summary>
    private static bool MayHoldLegs(Transaction transaction, int participantShard) =>
        !transaction.Participants.TryGetValue(participantShard, out var participant) || participant.Reports is null || participant.Prepared;

    private void OnFinishTakenReply(UInt128 transactionId, int from)
    {
        if (transactions.TryGetValue(transactionId, out var transaction) && transaction.Phase == Phase.Finishing &&
            transaction.Untaken.Remove(from))
        {
            MaybeAnswerOnceTaken(transaction);
        }
    }

    /// <summary>
    /// Decide is applied and every participant that may hold legs has fenced them or proposed its Finish (or applied it): the
    /// client is answered now, before the participants' Finish entries commit. A read or write of one of the accounts that
    /// starts after the answer reaches that leader while fenced (it waits until the Finish is proposed) or after its
    /// Finish, so it is ordered after it in the log (a read waits for the Finish's index); a later leader that lacks the
    /// Finish holds the legs as inherited and fences their accounts until they are finished
    /// (see "When the client is answered" in docs/design/cross-shard.md). A stale balancing clamp restarts instead, at retire.
    /// </summary>
    private void MaybeAnswerOnceTaken(Transaction transaction)
    {
        if (transaction.Untaken.Count != 0 || transaction.Phase != Phase.Finishing || transaction.Request is null || transaction.StaleClamp)
        {
            return;
        }

        AnswerTransaction(transaction, transaction.Outcome, transaction.Statuses);
    }

    private void SendFinish(Transaction transaction, int participantShard) =>
        Send(participantShard, new CrossShardMessage(CrossShardMessageKind.Finish, shard, shard, transaction.Id) { Decision = transaction.Decision });

    private void OnFinishedReply(UInt128 transactionId, int from)
    {
        if (transactions.TryGetValue(transactionId, out var transaction) && transaction.Phase == Phase.Finishing &&
            transaction.Unacknowledged.Remove(from))
        {
            transaction.Untaken.Remove(from); // Applied implies proposed.
            MaybeAnswerOnceTaken(transaction);
            MaybeRetire(transaction);
        }
    }

    /// <summary>
    /// Every participant acknowledged its Finish (its legs are posted or released): the record is retired, the client
    /// answered if it was not yet (a stale clamp restarts instead), and units waiting for these ids start afresh.
    /// </summary>
    private void MaybeRetire(Transaction transaction)
    {
        if (transaction.Unacknowledged.Count != 0 || transaction.Phase != Phase.Finishing)
        {
            return;
        }

        if (transaction.Retire)
        {
            transaction.Phase = Phase.Retiring;
            retireQueue.Add(transaction.Id);
        }
        else
        {
            transactions.Remove(transaction.Id);
        }

        foreach (var id in transaction.EventIds)
        {
            if (unfinishedEvents.TryGetValue(id, out var holder) && holder == transaction)
            {
                unfinishedEvents.Remove(id);
            }
        }

        if (!RestartIfClampWasStale(transaction))
        {
            AnswerTransaction(transaction, transaction.Outcome, transaction.Statuses);
        }

        foreach (var waiting in transaction.Waiters)
        {
            // Started afresh on the ledger state that now holds this transaction's outcome.
            waiting.Request.Waiting--;
            StartUnit(waiting.Request, waiting.Events, waiting.Offset);
            waiting.Request.Open--;
            MaybeAnswer(waiting.Request);
        }

        transaction.Waiters.Clear();
    }

    /// <summary>
    /// A balancing transaction refused by a guard (a concurrent transfer changed a balancing account between the
    /// snapshot and the Prepare) is aborted without statuses; instead of answering 503 it is started afresh, on a new
    /// snapshot, at most <see cref="CrossShardLimits.StaleClampRestartsMax"/> times. It is finished everywhere (nothing
    /// of it is reserved) before it restarts.
    /// </summary>
    private bool RestartIfClampWasStale(Transaction transaction)
    {
        var request = transaction.Request;
        if (request is null || !transaction.StaleClamp || transaction.Outcome != CrossShardDecision.AbortedWithoutStatus ||
            transaction.Restarts >= CrossShardLimits.StaleClampRestartsMax || !requests.ContainsKey(request.Token))
        {
            return false;
        }

        StaleClampRestarts++;
        transaction.Request = null;
        StartUnit(request, transaction.Original, transaction.Offset, transaction.Restarts + 1);
        request.Open--; // The restarted unit holds its own part of the request now.
        MaybeAnswer(request);
        return true;
    }

    /// <summary>A new leader found a decided transaction in the ledger: finish it.</summary>
    private void ResumeCoordinatorRecord(UInt128 transactionId, CoordinatorRecord record)
    {
        if (transactions.ContainsKey(transactionId))
        {
            return;
        }

        var transaction = new Transaction(transactionId, null, 0, [], 0, nowNs);
        transactions.Add(transactionId, transaction);
        IndexEvents(transaction, record.EventIds);
        StartFinishing(transaction, record.Decision, record.Participants, retire: true);
    }

    /// <summary>A participant asks about legs prepared too long.</summary>
    private void OnQuery(UInt128 transactionId, int from)
    {
        if (transactions.TryGetValue(transactionId, out var transaction) && transaction.Phase is Phase.Preparing or Phase.Deciding)
        {
            Send(from, new CrossShardMessage(CrossShardMessageKind.Decision, shard, shard, transactionId) { Decision = CrossShardDecision.Undecided });
            return;
        }

        if (transaction is not null)
        {
            Send(from, new CrossShardMessage(CrossShardMessageKind.Decision, shard, shard, transactionId) { Decision = transaction.Decision });
            return;
        }

        // Unknown to this leader: through Raft, so that a Decide still in the log is seen first.
        if (!queryAskers.TryGetValue(transactionId, out var askers))
        {
            askers = [];
            queryAskers.Add(transactionId, askers);
            abortQueue.Add(transactionId);
        }

        askers.Add(from);
    }

    private void OnAbortIfUndecidedApplied(UInt128 transactionId, CrossShardDecision decision)
    {
        preparedHere.Remove(transactionId); // This shard's own legs were released (or finished by Decide).
        if (!queryAskers.Remove(transactionId, out var askers))
        {
            return;
        }

        foreach (var asker in askers)
        {
            Send(asker, new CrossShardMessage(CrossShardMessageKind.Decision, shard, shard, transactionId) { Decision = decision });
        }
    }

    private void TickCoordinator()
    {
        List<Transaction>? timedOut = null;
        foreach (var transaction in transactions.Values)
        {
            if (transaction.Phase == Phase.Preparing)
            {
                if (nowNs - transaction.StartedNs >= options.CoordinatorTimeoutNs)
                {
                    (timedOut ??= []).Add(transaction);
                    continue;
                }

                foreach (var participant in transaction.Participants.Values)
                {
                    if (participant.Reports is null && nowNs - participant.LastSentNs >= options.RetryIntervalNs)
                    {
                        SendPrepare(transaction, participant);
                    }
                }

                ResendSnapshots(transaction);
            }
            else if (transaction.Phase == Phase.Finishing && nowNs - transaction.LastFinishSentNs >= options.RetryIntervalNs)
            {
                transaction.LastFinishSentNs = nowNs;
                foreach (var participantShard in transaction.Unacknowledged)
                {
                    SendFinish(transaction, participantShard);
                }
            }
        }

        foreach (var transaction in timedOut ?? [])
        {
            EnqueueDecide(transaction, DecideFlags.ForceAbort);
        }
    }

    private void FailAllRequests()
    {
        foreach (var request in requests.Values)
        {
            if (request.ReplyTo >= 0)
            {
                continue; // Delegated by another shard: it times out or resends to the next leader.
            }

            // Outcome unknown when a Decide may be in the log: the next leader finishes it either way.
            var decideProposed = request.AnyCommitted;
            foreach (var delegation in delegations.Values)
            {
                decideProposed |= delegation.Request == request;
            }

            foreach (var transaction in transactions.Values)
            {
                decideProposed |= transaction.Request == request && transaction.Phase != Phase.Preparing;
            }

            // A unit waiting for an earlier transaction with its ids may be a retry of a committed one.
            decideProposed |= request.Waiting > 0;

            actions.Enqueue(new FailAction(request.Token, decideProposed,
                $"Shard {shard} lost its leadership during a cross-shard request: retry with the same ids (created transfers answer exists)."));
        }
    }

    private enum Phase : byte
    {
        Preparing,
        Deciding,
        Finishing,
        Retiring,
    }

    private sealed class Request(long token, int count)
    {
        public long Token { get; } = token;

        public CreateTransferResult[] Results { get; } = new CreateTransferResult[count];

        public ulong[] Timestamps { get; } = new ulong[count];

        /// <summary>Transactions and waiting units of this request not answered yet.</summary>
        public int Open { get; set; }

        /// <summary>Units waiting for an earlier transaction with one of their ids to finish.</summary>
        public int Waiting { get; set; }

        public bool AnyCommitted { get; set; }

        public string? FailDetail { get; set; }

        /// <summary>For a post/void delegated by another shard (its id's home): that shard, which gets the answer; -1 for a client's request.</summary>
        public int ReplyTo { get; init; } = -1;

        public UInt128 DelegationId { get; init; }
    }

    private sealed class Transaction(UInt128 id, Request? request, int offset, Transfer[] events, int prepareCount, ulong startedNs)
    {
        public UInt128 Id { get; } = id;

        /// <summary>The client's request, until answered (null for a transaction resumed from the ledger).</summary>
        public Request? Request { get; set; } = request;

        public int Offset { get; } = offset;

        public Transfer[] Events { get; } = events;

        /// <summary>Events 0..PrepareCount-1 have legs; the first event after them failed on the home shard alone.</summary>
        public int PrepareCount { get; } = prepareCount;

        public ulong StartedNs { get; } = startedNs;

        public Dictionary<int, Participant> Participants { get; } = [];

        /// <summary>The home's own sides are checked and posted by Decide (no Prepare on the home shard).</summary>
        public bool HomeInline { get; set; }

        public Phase Phase { get; set; }

        public DecideItem? Decide { get; set; }

        public CrossShardDecision Decision { get; set; }

        public HashSet<int> Unacknowledged { get; } = [];

        /// <summary>While finishing: the participants that may hold legs and have not yet said they fenced them or took the Finish (the answer waits for them).</summary>
        public HashSet<int> Untaken { get; } = [];

        /// <summary>While deciding: the participants that fenced their legs on the Fence (the answer need not wait for their Finish).</summary>
        public HashSet<int> Fenced { get; } = [];

        public ulong LastFinishSentNs { get; set; }

        /// <summary>False when there is no coordinator record to retire (tombstoned).</summary>
        public bool Retire { get; set; }

        /// <summary>The outcome Decide gave, kept until every participant finished (then the client is answered).</summary>
        public CrossShardDecision Outcome { get; set; }

        public byte[] Statuses { get; set; } = [];

        /// <summary>The event ids indexed in unfinishedEvents for this transaction.</summary>
        public UInt128[] EventIds { get; set; } = [];

        /// <summary>Units of requests that reuse one of this transaction's ids: started once it is finished everywhere.</summary>
        public List<WaitingUnit> Waiters { get; } = [];

        /// <summary>The events as the client sent them (a restart after a stale clamp starts from these).</summary>
        public Transfer[] Original { get; init; } = [];

        /// <summary>How many times this unit was restarted after a stale clamp.</summary>
        public int Restarts { get; init; }

        /// <summary>A balancing side refused the clamped amount (its headroom changed since the snapshot).</summary>
        public bool StaleClamp { get; set; }

        /// <summary>With balancing events: per event how its amount was clamped (empty otherwise; set before the legs are assigned).</summary>
        public BalancingGuard[] Guards { get; set; } = [];

        /// <summary>With balancing events: per event the amount the client asked for.</summary>
        public UInt128[] Requested { get; set; } = [];

        /// <summary>While the accounts a balancing event clamps on are read: the ids asked of each shard not answered yet.</summary>
        public Dictionary<int, UInt128[]> SnapshotsAwaited { get; } = [];

        /// <summary>The accounts read so far (as the ledger checks them: with reservations).</summary>
        public Dictionary<UInt128, AccountSnapshot> Snapshot { get; } = [];

        public ulong SnapshotSentNs { get; set; }

        /// <summary>The pending transfers homed elsewhere that the chain's posts/voids resolve, as read there (null when none).</summary>
        public Dictionary<UInt128, ForeignPending>? Foreign { get; init; }

        /// <summary>The status of event <see cref="PrepareCount"/> (the first that failed on this shard's state), Created when none did.</summary>
        public CreateTransferResult FirstFailure { get; init; } = CreateTransferResult.Created;
    }

    private sealed record WaitingUnit(Request Request, Transfer[] Events, int Offset);

    private sealed class Participant(int shard, Leg[] legs)
    {
        public int Shard { get; } = shard;

        public Leg[] Legs { get; } = legs;

        public LegReport[]? Reports { get; set; }

        public bool Prepared { get; set; }

        public ulong LastSentNs { get; set; }
    }
}
