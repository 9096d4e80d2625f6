using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// Posts and voids inside cross-shard linked chains: coordinated here when their pending transfer's home is this
// (the chain's coordinating) shard, like a single post/void; Decide re-checks each in log order.
public sealed partial class CrossShardDriver
{
    /// <summary>
    /// An event's status from this shard's committed state alone; a post/void (its pending transfer lives here) is
    /// checked against it and replaced by its resolved form (the pending transfer's accounts, ledger, code, amount).
    /// </summary>
    private CreateTransferResult ChainEventStatus(ref Transfer t)
    {
        if (!IsPostOrVoid(t))
        {
            return ledger.CrossShardLocalStatus(t);
        }

        var status = ledger.CrossShardPostOrVoidStatus(t, out var resolved);
        if (status == CreateTransferResult.Created)
        {
            t = resolved;
        }

        return status;
    }

    /// <summary>
    /// A post/void (<paramref name="unit"/>[<paramref name="i"/>]) of the pending transfer created by the chain's earlier
    /// event <paramref name="j"/> (stored nowhere yet: see "A pending transfer posted or voided by its own chain" in
    /// docs/design/cross-shard.md): checked against that event and replaced by its resolved form. No lookup, no status
    /// leg: the chain's own Decide creates the pending transfer and resolves it in one commit.
    /// </summary>
    private CreateTransferResult SameChainEventStatus(Transfer[] unit, int i, int j)
    {
        Invariant.Check(j < i && unit[j].Id == unit[i].PendingId, "the earlier event creates the pending transfer");
        var status = ledger.CrossShardSameChainPostOrVoidStatus(unit[i], unit[j], out var resolved);
        if (status == CreateTransferResult.Created)
        {
            unit[i] = resolved;
        }

        return status;
    }

    /// <summary>
    /// The sides of event <paramref name="i"/>'s leg on its id home (not this shard): the id, and for a pending transfer
    /// that a later event of the chain posts or voids, which (so that home stores it posted/voided, never pending).
    /// </summary>
    private static LegSides IdSidesOf(Transaction transaction, CrossShardChainIndex chain, int i)
    {
        ref readonly var t = ref transaction.Events[i];
        Invariant.Check(chain.Count == transaction.PrepareCount, "the chain index covers the prepared events");
        if ((t.Flags & TransferFlags.Pending) == 0 || !chain.ResolvedLater(i, out var posted))
        {
            return LegSides.Id;
        }

        return LegSides.Id | (posted ? LegSides.PostedInChain : LegSides.VoidedInChain);
    }

    /// <summary>The unit's event ids, and the pending ids of its posts/voids (a concurrent post/void of one waits).</summary>
    private static UInt128[] UnitIdsOf(Transfer[] events)
    {
        var ids = new List<UInt128>(events.Length);
        foreach (ref readonly var t in events.AsSpan())
        {
            ids.Add(t.Id);
            if (IsPostOrVoid(t))
            {
                ids.Add(t.PendingId);
            }
        }

        return ids.ToArray();
    }
}
