using RaftLedger.Common;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger;

// A post/void inside a cross-shard linked chain of a pending transfer P created by an earlier event of the same chain
// (docs/design/cross-shard.md, "A pending transfer posted or voided by its own chain"). P is stored nowhere before the
// chain's Decide, so nothing reads it from the store: the coordinator checks the post/void against P's event, each
// participant's Prepare finds P among the transaction's own earlier legs (P's leg reserved its amount there, the
// post/void's Resolve leg reserves nothing, as usual), Decide checks it against P's event at P's Decide timestamp and
// writes P's status posted/voided at once (no expiry is ever scheduled), and Finish posts or releases the
// reservation P's leg made right after storing P's copy, in the same write.
public sealed partial class LedgerStateMachine
{
    /// <summary>
    /// A post/void (event <paramref name="t"/>) of the pending transfer <paramref name="p"/> created by an earlier
    /// event of the same chain and passing its own checks: every check the ledger makes before the accounts, as for a
    /// pending transfer read from its home, with P just created (pending, not expired: a chain's events share one
    /// commit point). Reads committed state; not to be called while a command is being applied.
    /// </summary>
    public CreateTransferResult CrossShardSameChainPostOrVoidStatus(in Transfer t, in Transfer p, out Transfer resolved)
    {
        Invariant.Check(p.Id == t.PendingId, "the chain's event is the pending transfer the post/void names");
        var created = p;
        created.Timestamp = store.LastTimestamp + 1; // P's Decide timestamp is at least this (and the post's later).
        return CrossShardForeignPostOrVoidStatus(t, new ForeignPending(p.Id, true, PendingStatus.Pending, created), out resolved);
    }

    /// <summary>
    /// Decide's check, in log order, of event <paramref name="i"/> (a resolved post/void) against event
    /// <paramref name="j"/> of the same chain that creates its pending transfer: the request checks, P's fields, then
    /// P's status at this event's timestamp (pending, created at <paramref name="firstTimestamp"/> + j).
    /// </summary>
    private CreateTransferResult SameChainDecideStatus(DecideItem item, int i, int j, ulong firstTimestamp)
    {
        Invariant.Check(j < i, "the pending transfer is created before its post/void");
        ref readonly var t = ref item.Events[i];
        var status = ForeignPreamble(t, firstTimestamp + (ulong)i);
        if (status != CreateTransferResult.Created)
        {
            return status;
        }

        var p = item.Events[j];
        p.Timestamp = firstTimestamp + (ulong)j;
        var fields = ValidatePendingFields(t, p, out _);
        return fields != CreateTransferResult.Created ? fields : CheckPendingStatus(p, firstTimestamp + (ulong)i, PendingStatus.Pending);
    }

    /// <summary>
    /// The pending status a committed chain's event <paramref name="i"/> writes here: a pending transfer that a later
    /// event of the chain posts or voids is written with that final status (never pending, so no expiry is scheduled:
    /// it never was pending for anyone outside the chain); that later post/void then writes nothing. Everything else as
    /// <see cref="SetTwoPhaseStatus"/>.
    /// </summary>
    private void SetChainTwoPhaseStatus(DecideItem item, CrossShardChainIndex chain, int i, in Transfer created)
    {
        var expiresHere = !item.ExpiresElsewhereAt(i);
        if (chain.PendingIndexOf(i) >= 0)
        {
            return; // Its pending transfer's final status was written with it (or is kept on that transfer's id home).
        }

        if ((created.Flags & TransferFlags.Pending) != 0 && chain.ResolvedLater(i, out var posted))
        {
            if (expiresHere)
            {
                batch.SetPendingStatus(created.Id, posted ? PendingStatus.Posted : PendingStatus.Voided);
            }

            return;
        }

        SetTwoPhaseStatus(created, expiresHere);
    }

    /// <summary>
    /// The pending transfer a Resolve leg (<paramref name="legs"/>[<paramref name="index"/>]) posts or voids: this
    /// shard's copy, or else the transaction's own earlier leg that creates it (a pending transfer of the same chain,
    /// reserved here by that leg). False when neither exists.
    /// </summary>
    private bool TryGetResolvedPending(CrossShardLegIndex chain, int index, out Transfer p)
    {
        var pendingId = chain.Legs[index].Transfer.PendingId;
        if (batch.TryGetTransfer(pendingId, out p))
        {
            return (p.Flags & TransferFlags.Pending) != 0;
        }

        var k = chain.EarlierPendingLegOf(pendingId, index);
        if (k < 0)
        {
            return false;
        }

        p = chain.Legs[k].Transfer;
        return true;
    }

    /// <summary>The pending status an id home's Finish(commit) writes for a pending transfer's leg (see <see cref="LegSides.PostedInChain"/>).</summary>
    private static PendingStatus IdLegPendingStatus(LegSides sides) =>
        (sides & LegSides.PostedInChain) != 0 ? PendingStatus.Posted
        : (sides & LegSides.VoidedInChain) != 0 ? PendingStatus.Voided
        : PendingStatus.Pending;
}
