using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

/// <summary>
/// Which events of a linked chain post or void a pending transfer created by an earlier event of the same chain
/// (docs/design/cross-shard.md, "A pending transfer posted or voided by its own chain"). Pure; used by the coordinator
/// and by every replica's Decide, so both see the same pairs.
/// </summary>
public static class CrossShardSameChain
{
    /// <summary>
    /// The index of the first earlier event whose id is event <paramref name="index"/>'s pending id, when that event
    /// is a post/void; -1 otherwise (its pending transfer must already be stored somewhere).
    /// </summary>
    public static int PendingIndexOf(ReadOnlySpan<Transfer> events, int index)
    {
        Invariant.Check(index >= 0 && index < events.Length);
        ref readonly var t = ref events[index];
        if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) == 0)
        {
            return -1;
        }

        for (var j = 0; j < index; j++)
        {
            if (events[j].Id == t.PendingId)
            {
                return j;
            }
        }

        return -1;
    }

    /// <summary>
    /// True when a later event of the chain posts or voids the pending transfer event <paramref name="index"/> creates;
    /// <paramref name="posted"/> says whether the first such event is a post (in a committed chain it is the only one).
    /// </summary>
    public static bool ResolvedLater(ReadOnlySpan<Transfer> events, int index, out bool posted)
    {
        posted = false;
        for (var k = index + 1; k < events.Length; k++)
        {
            if ((events[k].Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0 &&
                events[k].PendingId == events[index].Id && PendingIndexOf(events, k) == index)
            {
                posted = (events[k].Flags & TransferFlags.PostPendingTransfer) != 0;
                return true;
            }
        }

        return false;
    }
}
