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

    // A post/void of a pending transfer created by an earlier event of the same chain (not stored anywhere yet).
    private static bool CreatedEarlierInChain(ReadOnlySpan<Transfer> events, int index)
    {
        for (var j = 0; j < index; j++)
        {
            if (events[j].Id == events[index].PendingId)
            {
                return true;
            }
        }

        return false;
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
