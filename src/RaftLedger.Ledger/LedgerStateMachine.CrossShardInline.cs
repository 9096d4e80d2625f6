using RaftLedger.Common;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger;

// Decide with the home shard's own sides checked and posted in the decision's write (DecideFlags.HomeInline):
// the home shard prepares nothing, so a transaction writes no Prepared record, leg holds or reservations there.
public sealed partial class LedgerStateMachine
{
    /// <summary>
    /// Decides a transaction whose home sides were not prepared: in event order (a linked chain's semantics), each
    /// event's home-local checks, then its id's answer from its home, then its two sides, the home's checked here
    /// (seeing the chain's earlier home sides as posted, as a participant's Prepare would) and the others' taken
    /// from their reports; all created → the transfers are written and the home sides posted, else nothing changes
    /// but the statuses and the coordinator record. The caller checked the transaction is not decided yet.
    /// </summary>
    private CrossShardDecision DecideInline(DecideItem item, ulong firstTimestamp, Span<byte> statuses)
    {
        Invariant.Check(item.HomeSides.Length == item.Events.Length && item.Remote.Length == item.Events.Length);
        var homeLegs = HomeLegsOf(item);
        var decision = CrossShardDecision.AbortedWithoutStatus;
        if ((item.Flags & DecideFlags.ForceAbort) == 0 && !AnyIdClaimed(item.Events) && !AnyLegHeld(homeLegs, item.TransactionId))
        {
            batch.Savepoint();
            var failed = InlineStatuses(item, homeLegs, firstTimestamp, statuses, out var unprepared);
            if (failed < 0)
            {
                batch.Release();
                decision = CrossShardDecision.Committed;
                CommitInline(item, homeLegs, firstTimestamp);
            }
            else
            {
                batch.Rollback(); // The home sides reserved before the failing event are not kept.
                statuses[..failed].Fill((byte)CreateTransferResult.LinkedEventFailed);
                if (LedgerResults.IsTransient((CreateTransferResult)statuses[failed]))
                {
                    batch.AddTransientFailure(item.Events[failed].Id);
                }

                decision = unprepared ? CrossShardDecision.AbortedWithoutStatus : CrossShardDecision.Aborted;
            }
        }

        var stored = decision == CrossShardDecision.Committed ? CrossShardDecision.Committed : CrossShardDecision.Aborted;
        batch.SetSideRecord(CrossShardTables.Coordinator, item.TransactionId, CrossShardCommand.WriteCoordinatorRecord(stored, item.Participants, item.Events));
        if (decision == CrossShardDecision.AbortedWithoutStatus)
        {
            statuses.Fill((byte)CreateTransferResult.LinkedEventFailed);
        }

        return decision;
    }

    private static Leg[] HomeLegsOf(DecideItem item)
    {
        var count = 0;
        foreach (var sides in item.HomeSides)
        {
            count += sides == LegSides.None ? 0 : 1;
        }

        var legs = new Leg[count];
        var k = 0;
        for (var i = 0; i < item.Events.Length; i++)
        {
            if (item.HomeSides[i] != LegSides.None)
            {
                legs[k++] = new Leg((ushort)i, item.HomeSides[i], item.Events[i])
                {
                    Guard = item.Guards.Length == 0 ? BalancingGuard.None : item.Guards[i],
                    Requested = item.Requested.Length == 0 ? UInt128.Zero : item.Requested[i],
                };
            }
        }

        return legs;
    }

    /// <summary>True when an earlier attempt holds prepared legs of one of these events here (as Prepare's IdBusy: abort, the client retries).</summary>
    private bool AnyLegHeld(Leg[] legs, UInt128 transactionId)
    {
        foreach (var leg in legs)
        {
            if (HeldByAnother(leg.Transfer.Id, transactionId))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Each event's status as a local chain would get it, reserving the home sides of the events that pass (inside
    /// the caller's savepoint); the index of the first event that fails, or -1 when all are created.
    /// </summary>
    private int InlineStatuses(DecideItem item, Leg[] homeLegs, ulong firstTimestamp, Span<byte> statuses, out bool unprepared)
    {
        unprepared = false;
        var chain = CrossShardChainIndex.Of(item.Events);
        var legIndex = new CrossShardLegIndex(homeLegs);
        var count = item.Events.Length;
        var k = 0;
        for (var i = 0; i < count; i++)
        {
            var t = item.AsRequested(i); // The id checks compare what the client sent (a balancing amount is an upper bound).
            var status = (t.Flags & TransferFlags.Linked) != 0 && i == count - 1
                ? CreateTransferResult.LinkedEventChainOpen
                : LocalStatus(t, pendingHere: true, firstTimestamp + (ulong)i);
            if (status == CreateTransferResult.Created && chain.EarlierIndexOf(t.Id, i) is var j and >= 0)
            {
                status = TransferExists(t, item.Events[j]);
            }

            var home = k < homeLegs.Length && homeLegs[k].EventIndex == i ? k++ : -1;
            if (status == CreateTransferResult.Created)
            {
                status = SidesStatus(item, i, legIndex, home, ref unprepared);
            }

            statuses[i] = (byte)status;
            if (status != CreateTransferResult.Created)
            {
                return i;
            }

            if (home >= 0)
            {
                ChangeSides(homeLegs[home], BalanceChange.Reserve, 0);
            }
        }

        return -1;
    }

    /// <summary>An event that passed the home-local checks: its id's answer (from its home), then its two sides'.</summary>
    private CreateTransferResult SidesStatus(DecideItem item, int i, CrossShardLegIndex legIndex, int home, ref bool unprepared)
    {
        var legStatus = item.LegStatuses[i];
        if (legStatus == CrossShardRules.NotPrepared)
        {
            // As in ChainStatuses: nobody holds this event's legs; it passing now aborts without statuses.
            unprepared |= item.Events.Length == 1;
            return CreateTransferResult.LinkedEventFailed;
        }

        if (legStatus != (byte)CreateTransferResult.Created)
        {
            return (CreateTransferResult)legStatus; // The id's home found the id taken (exists*, id_already_failed).
        }

        var debit = item.Remote[i].Debit;
        var credit = item.Remote[i].Credit;
        if (home >= 0 && (legIndex.Legs[home].Sides & LegSides.Debit) != 0)
        {
            debit = CheckSide(legIndex, home, BalanceSide.Debit);
        }

        if (home >= 0 && (legIndex.Legs[home].Sides & LegSides.Credit) != 0)
        {
            credit = CheckSide(legIndex, home, BalanceSide.Credit);
        }

        if (debit.Outcome == LegOutcome.StaleClamp || credit.Outcome == LegOutcome.StaleClamp)
        {
            // A balancing side's headroom changed since the coordinator's snapshot: abort without statuses, retry.
            unprepared = true;
            return CreateTransferResult.LinkedEventFailed;
        }

        return CrossShardRules.Combine(item.Events[i], debit, credit);
    }

    /// <summary>Writes the transfers and posts the home sides reserved by <see cref="InlineStatuses"/> (a pending transfer keeps its reservation, now committed pending).</summary>
    private void CommitInline(DecideItem item, Leg[] homeLegs, ulong firstTimestamp)
    {
        for (var i = 0; i < item.Events.Length; i++)
        {
            var created = item.Events[i];
            created.Timestamp = firstTimestamp + (ulong)i;
            batch.CreateForeignTransfer(created, AccountsHereOf(item.HomeSides[i]));
            SetTwoPhaseStatus(created, expiresHere: !item.ExpiresElsewhereAt(i));
        }

        foreach (var leg in homeLegs)
        {
            var stayPending = (leg.Transfer.Flags & TransferFlags.Pending) != 0;
            foreach (var side in SidesOf(leg.Sides))
            {
                var slot = batch.LoadAccount(side == BalanceSide.Debit ? leg.Transfer.DebitAccountId : leg.Transfer.CreditAccountId);
                Invariant.Check(batch.Account(slot).Exists, "a home side that passed its checks has its account");
                ref var account = ref batch.Modify(slot);
                if (!stayPending)
                {
                    BalanceSteps.Post(ref account, side, leg.Transfer.Amount, leg.Transfer.Amount);
                }

                if ((account.Flags & AccountFlags.History) != 0)
                {
                    batch.Writes.AddAccountBalance(new AccountBalanceEntry(account.Id, HistoryBalanceOf(account, firstTimestamp + leg.EventIndex)));
                }
            }
        }
    }
}
