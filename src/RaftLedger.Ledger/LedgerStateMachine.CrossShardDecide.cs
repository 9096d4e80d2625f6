using RaftLedger.Common;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger;

// Decide (the commit point, at the home shard), Finish (at participants), Retire and AbortIfUndecided.
public sealed partial class LedgerStateMachine
{
    private int ApplyDecide(ReadOnlySpan<byte> body, ulong firstTimestamp, Span<byte> results)
    {
        var items = DecodeDecide(body);
        var needed = 0;
        var lookups = 0;
        foreach (var item in items)
        {
            needed += 1 + item.Events.Length;
            foreach (var t in item.Events)
            {
                lookups = NoteLookedUpIds(t, lookups);
            }
        }

        PrefetchLookedUpIds(lookups);

        CheckResultRoom(needed, results);
        var position = 0;
        var timestamp = firstTimestamp;
        foreach (var item in items)
        {
            var statuses = results.Slice(position + 1, item.Events.Length);
            results[position] = (byte)DecideOne(item, timestamp, statuses);
            position += 1 + item.Events.Length;
            timestamp += (ulong)item.Events.Length;
        }

        return needed;
    }

    internal static List<DecideItem> DecodeDecide(ReadOnlySpan<byte> body)
    {
        var reader = new ByteReader(body);
        var count = reader.Count(ushort.MaxValue);
        var items = new List<DecideItem>(count);
        for (var i = 0; i < count; i++)
        {
            var id = reader.U128();
            var flags = (DecideFlags)reader.U8();
            var participants = new int[reader.Count(CrossShardLimits.TransactionShardsMax)];
            for (var p = 0; p < participants.Length; p++)
            {
                participants[p] = reader.U16();
            }

            var events = new Transfer[reader.Count(CrossShardLimits.TransactionEventsMax)];
            var legStatuses = new byte[events.Length];
            var inline = (flags & DecideFlags.HomeInline) != 0;
            var homeSides = inline ? new LegSides[events.Length] : [];
            var remote = inline ? new LegReport[events.Length] : [];
            for (var e = 0; e < events.Length; e++)
            {
                events[e] = reader.Transfer();
                legStatuses[e] = reader.U8();
                if (inline)
                {
                    homeSides[e] = (LegSides)reader.U8() & (LegSides.Debit | LegSides.Credit);
                    remote[e] = new LegReport((ushort)e, CrossShardCommand.ReadSide(ref reader, "Decide"), CrossShardCommand.ReadSide(ref reader, "Decide"));
                }
            }

            var expiresElsewhere = (flags & DecideFlags.ExpiresElsewhere) == 0 ? [] : CrossShardCommand.ReadEventMask(ref reader, flags, events.Length);
            var clamped = (flags & DecideFlags.Clamped) != 0;
            var guards = clamped ? new BalancingGuard[events.Length] : [];
            var requested = clamped ? new UInt128[events.Length] : [];
            for (var e = 0; e < guards.Length; e++)
            {
                guards[e] = (BalancingGuard)reader.U8();
                requested[e] = reader.U128();
            }

            var pendingExpiresAt = (flags & DecideFlags.PendingElsewhere) != 0 ? new ulong[events.Length] : [];
            for (var e = 0; e < pendingExpiresAt.Length; e++)
            {
                pendingExpiresAt[e] = reader.U64();
            }

            items.Add(new DecideItem(id, flags, participants, events, legStatuses)
            {
                PendingExpiresAt = pendingExpiresAt,
                HomeSides = homeSides,
                Remote = remote,
                ExpiresElsewhere = expiresElsewhere,
                Guards = guards,
                Requested = requested,
            });
        }

        reader.End();
        return items;
    }

    /// <summary>
    /// Decides one transaction: re-checks its ids here (a concurrent duplicate loses now), combines
    /// them with the participants' statuses as a linked chain would, and writes the transfers and
    /// the coordinator record (commit) or the coordinator record alone (abort). The home shard's own
    /// legs are finished in the same write.
    /// </summary>
    private CrossShardDecision DecideOne(DecideItem item, ulong firstTimestamp, Span<byte> statuses)
    {
        statuses.Fill((byte)CreateTransferResult.LinkedEventFailed);
        if (batch.TryGetSideRecord(CrossShardTables.Coordinator, item.TransactionId, out _) ||
            batch.TryGetSideRecord(CrossShardTables.Tombstone, item.TransactionId, out _))
        {
            return CrossShardDecision.AlreadyDecided;
        }

        if ((item.Flags & DecideFlags.HomeInline) != 0)
        {
            return DecideInline(item, firstTimestamp, statuses);
        }

        PreparedRecord? homeLegs = null;
        if (batch.TryGetSideRecord(CrossShardTables.Prepared, item.TransactionId, out var value))
        {
            homeLegs = CrossShardCommand.ReadPreparedRecord(value);
        }

        var chain = CrossShardChainIndex.Of(item.Events);
        var decision = CrossShardDecision.AbortedWithoutStatus;
        var lostHomeLegs = (item.Flags & DecideFlags.HomeHasLegs) != 0 && homeLegs is null;
        if ((item.Flags & DecideFlags.ForceAbort) == 0 && !lostHomeLegs && !AnyIdClaimed(item.Events) && !AnyPendingHeld(item))
        {
            decision = ChainStatuses(item, chain, firstTimestamp, statuses, out var unprepared) ? CrossShardDecision.Committed : CrossShardDecision.Aborted;
            if (unprepared)
            {
                // An event the coordinator expected to fail here passes now (a post/void whose pending transfer
                // was created meanwhile): nobody holds its legs, so abort without statuses; the client retries.
                decision = CrossShardDecision.AbortedWithoutStatus;
            }
        }

        if (decision == CrossShardDecision.Committed)
        {
            for (var i = 0; i < item.Events.Length; i++)
            {
                var created = item.Events[i];
                if (CrossShardExpiry.IsExpiry(created))
                {
                    CommitExpiry(created.PendingId); // Creates no transfer.
                    continue;
                }

                created.Timestamp = firstTimestamp + (ulong)i;
                batch.CreateForeignTransfer(created, AccountsHereOf(homeLegs, i));
                if (!item.PendingElsewhereAt(i))
                {
                    SetChainTwoPhaseStatus(item, chain, i, created);
                }
            }
        }

        FinishHomeLegs(item.TransactionId, homeLegs, decision == CrossShardDecision.Committed, firstTimestamp);
        var stored = decision == CrossShardDecision.Committed ? CrossShardDecision.Committed : CrossShardDecision.Aborted;
        batch.SetSideRecord(CrossShardTables.Coordinator, item.TransactionId, CrossShardCommand.WriteCoordinatorRecord(stored, item.Participants, item.Events));
        if (decision == CrossShardDecision.AbortedWithoutStatus)
        {
            statuses.Fill((byte)CreateTransferResult.LinkedEventFailed);
        }

        return decision;
    }

    /// <summary>
    /// True when one of the events' ids is claimed here by a transaction coordinated elsewhere (this shard
    /// is that id's home and a chain holding it is in flight): committing would create the id twice, so
    /// the transaction aborts without statuses and the client retries (the retry waits for the claim).
    /// </summary>
    private bool AnyIdClaimed(Transfer[] events)
    {
        foreach (var t in events)
        {
            if (batch.TryGetSideRecord(CrossShardTables.IdClaim, t.Id, out _))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Fills each event's status as <see cref="RunBatch"/> would for a chain; burns ids that failed transiently. True when all are created.</summary>
    /// <summary>
    /// The pending status lives with the pending transfer's record at its id's home: a pending transfer
    /// starts pending (here, and on its id's home when that is another shard: see FinishOne); a post/void
    /// (coordinated at the pending's id home, see CrossShardPostOrVoidStatus) moves it on, so a later or
    /// concurrent post/void of it gets pending_transfer_already_posted/voided at its Decide.
    /// </summary>
    private void SetTwoPhaseStatus(in Transfer created, bool expiresHere)
    {
        if ((created.Flags & TransferFlags.Pending) != 0)
        {
            if (!expiresHere)
            {
                return; // Its id's home keeps its status and expiry (FinishOne); a pending status here would never resolve.
            }

            batch.SetPendingStatus(created.Id, PendingStatus.Pending);
            if (created.TimeoutSeconds != 0)
            {
                ScheduleCrossShardExpiry(created);
            }

            return;
        }

        var post = (created.Flags & TransferFlags.PostPendingTransfer) != 0;
        if (!post && (created.Flags & TransferFlags.VoidPendingTransfer) == 0)
        {
            return;
        }

        var found = batch.TryGetTransfer(created.PendingId, out var p);
        Invariant.Check(found && batch.GetPendingStatus(p.Id) == PendingStatus.Pending, "Decide commits a post/void of a pending transfer stored here");
        batch.SetPendingStatus(p.Id, post ? PendingStatus.Posted : PendingStatus.Voided);
        if (p.TimeoutSeconds != 0 && !UnscheduleCrossShardExpiry(p.Id))
        {
            batch.Writes.RemoveExpiry(new ExpiryEntry((ulong)ExpiresAt(p.Timestamp, p.TimeoutSeconds), p.Id));
        }
    }

    private bool ChainStatuses(DecideItem item, CrossShardChainIndex chain, ulong firstTimestamp, Span<byte> statuses, out bool unprepared)
    {
        unprepared = false;
        var count = item.Events.Length;
        var failed = -1;
        for (var i = 0; i < count && failed < 0; i++)
        {
            var t = item.AsRequested(i); // The id checks compare what the client sent (a balancing amount is an upper bound).
            CreateTransferResult status;
            if ((t.Flags & TransferFlags.Linked) != 0 && i == count - 1)
            {
                status = CreateTransferResult.LinkedEventChainOpen;
            }
            else
            {
                status = CrossShardExpiry.IsExpiry(t)
                    ? ExpiryStatus(t, firstTimestamp + (ulong)i)
                    : item.PendingElsewhereAt(i)
                        ? ForeignDecideStatus(t, firstTimestamp + (ulong)i, item.PendingExpiresAt[i], item.LegStatuses[i])
                        : chain.PendingIndexOf(i) is var j and >= 0
                            ? SameChainDecideStatus(item, i, j, firstTimestamp)
                            : LocalStatus(t, pendingHere: true, firstTimestamp + (ulong)i);
                if (status == CreateTransferResult.Created && chain.EarlierIndexOf(t.Id, i) is var k and >= 0)
                {
                    status = TransferExists(t, item.Events[k]);
                }

                // A pending transfer posted or voided by an earlier event of this chain is no longer pending for this one.
                if (status is CreateTransferResult.Created or CreateTransferResult.PendingTransferExpired &&
                    ResolvedEarlierInChain(item.Events, chain, i, out var earlierPosted))
                {
                    status = earlierPosted ? CreateTransferResult.PendingTransferAlreadyPosted : CreateTransferResult.PendingTransferAlreadyVoided;
                }

                if (status == CreateTransferResult.Created)
                {
                    // NotPrepared with a clean local status cannot happen (local statuses never improve);
                    // refuse rather than commit an event whose legs nobody holds.
                    status = item.LegStatuses[i] == CrossShardRules.NotPrepared ? CreateTransferResult.LinkedEventFailed : (CreateTransferResult)item.LegStatuses[i];
                    unprepared |= item.LegStatuses[i] == CrossShardRules.NotPrepared && (item.Flags & DecideFlags.ForceAbort) == 0 && item.Events.Length == 1;
                }
            }

            statuses[i] = (byte)status;
            if (status != CreateTransferResult.Created)
            {
                failed = i;
            }
        }

        if (failed < 0)
        {
            return true;
        }

        // As in a local chain: the failing event keeps its status, the events before it did not happen.
        statuses[..failed].Fill((byte)CreateTransferResult.LinkedEventFailed);
        var failedStatus = (CreateTransferResult)statuses[failed];
        if (LedgerResults.IsTransient(failedStatus))
        {
            batch.AddTransientFailure(item.Events[failed].Id);
        }

        return false;
    }

    private void FinishHomeLegs(UInt128 transactionId, PreparedRecord? homeLegs, bool commit, ulong firstTimestamp)
    {
        if (homeLegs is null)
        {
            return;
        }

        foreach (var leg in homeLegs.Legs)
        {
            ChangeSides(leg, commit ? BalanceChange.Post : BalanceChange.Release, firstTimestamp + leg.EventIndex);
        }

        SetIdClaims(homeLegs.Legs, transactionId, claim: false);
        SetLegHolds(homeLegs.Legs, transactionId, hold: false);
        batch.SetSideRecord(CrossShardTables.Prepared, transactionId, null);
    }

    private int ApplyFinish(ReadOnlySpan<byte> body, ulong firstTimestamp, int timestamps, Span<byte> results)
    {
        var reader = new ByteReader(body);
        var count = reader.Count(CrossShardLimits.FinishItemsPerCommandMax);
        CheckResultRoom(count, results);
        var items = new FinishItem[count];
        var reserved = 0;
        for (var i = 0; i < count; i++)
        {
            items[i] = CrossShardCommand.ReadFinishItem(ref reader);
            reserved += CrossShardCommand.FinishTimestamps(items[i]);
        }

        reader.End();
        Invariant.Check(timestamps >= reserved, "a finish reserves a timestamp per copy its items may store");
        var itemTimestamp = firstTimestamp;
        for (var i = 0; i < count; i++)
        {
            results[i] = FinishOne(items[i], itemTimestamp) ? (byte)1 : (byte)0;
            itemTimestamp += (ulong)CrossShardCommand.FinishTimestamps(items[i]);
        }

        return count;
    }

    /// <summary>Posts (and stores a copy of each transfer, stamped here) or releases a participant's legs; false when there is nothing prepared.</summary>
    private bool FinishOne(FinishItem item, ulong firstTimestamp)
    {
        if (!batch.TryGetSideRecord(CrossShardTables.Prepared, item.TransactionId, out var value))
        {
            return false;
        }

        var record = CrossShardCommand.ReadPreparedRecord(value);
        Invariant.Check(record.Legs.Length <= item.Copies, "a finish item reserves a timestamp per leg of its transaction");
        for (var k = 0; k < record.Legs.Length; k++)
        {
            var leg = record.Legs[k];
            var timestamp = firstTimestamp + (ulong)k;
            ChangeSides(leg, item.Commit ? BalanceChange.Post : BalanceChange.Release, timestamp);
            if (item.Commit && (leg.Sides & LegSides.Status) != 0)
            {
                FinishStatusLeg(leg.Transfer);
            }

            if (item.Commit && !CrossShardExpiry.IsExpiry(leg.Transfer))
            {
                var copy = leg.Transfer;
                copy.Timestamp = timestamp;
                batch.CreateForeignTransfer(copy, AccountsHereOf(leg.Sides));
                if ((leg.Sides & LegSides.Id) != 0 && (copy.Flags & TransferFlags.Pending) != 0)
                {
                    // The id's home holds the authoritative record, so its status and expiry too: posts/voids
                    // (and the expiry) are coordinated here. One posted or voided by its own chain is final at once.
                    var status = IdLegPendingStatus(leg.Sides);
                    batch.SetPendingStatus(copy.Id, status);
                    if (copy.TimeoutSeconds != 0 && status == PendingStatus.Pending)
                    {
                        ScheduleCrossShardExpiry(copy);
                    }
                }
            }
        }

        SetIdClaims(record.Legs, item.TransactionId, claim: false);
        SetLegHolds(record.Legs, item.TransactionId, hold: false);
        batch.SetSideRecord(CrossShardTables.Prepared, item.TransactionId, null);
        return true;
    }

    private int ApplyRetire(ReadOnlySpan<byte> body, Span<byte> results)
    {
        var ids = DecodeIds(body, results);
        for (var i = 0; i < ids.Length; i++)
        {
            var known = batch.TryGetSideRecord(CrossShardTables.Coordinator, ids[i], out _);
            if (known)
            {
                batch.SetSideRecord(CrossShardTables.Coordinator, ids[i], null);
            }

            results[i] = known ? (byte)1 : (byte)0;
        }

        return ids.Length;
    }

    /// <summary>Presumed abort: a transaction nobody decided gets a tombstone (a later Decide loses) and the home shard's own legs are released.</summary>
    private int ApplyAbortIfUndecided(ReadOnlySpan<byte> body, Span<byte> results)
    {
        var ids = DecodeIds(body, results);
        for (var i = 0; i < ids.Length; i++)
        {
            var id = ids[i];
            CrossShardDecision decision;
            if (batch.TryGetSideRecord(CrossShardTables.Coordinator, id, out var value))
            {
                decision = CrossShardCommand.ReadCoordinatorRecord(value).Decision;
            }
            else
            {
                decision = CrossShardDecision.Aborted;
                if (!batch.TryGetSideRecord(CrossShardTables.Tombstone, id, out _))
                {
                    batch.SetSideRecord(CrossShardTables.Tombstone, id, []);
                    if (batch.TryGetSideRecord(CrossShardTables.Prepared, id, out var legs))
                    {
                        FinishHomeLegs(id, CrossShardCommand.ReadPreparedRecord(legs), commit: false, 0);
                    }
                }
            }

            Invariant.Check(decision is CrossShardDecision.Committed or CrossShardDecision.Aborted);
            results[i] = (byte)decision;
        }

        return ids.Length;
    }

    private static UInt128[] DecodeIds(ReadOnlySpan<byte> body, Span<byte> results)
    {
        var reader = new ByteReader(body);
        var ids = new UInt128[reader.Count(ushort.MaxValue)];
        CheckResultRoom(ids.Length, results);
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = reader.U128();
        }

        reader.End();
        return ids;
    }
}
