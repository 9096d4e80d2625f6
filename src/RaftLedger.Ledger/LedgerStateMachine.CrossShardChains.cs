using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger;

// Posts and voids inside cross-shard linked chains (coordinated by their pending transfer's home, which is the
// chain's coordinator): how later legs of the chain see them, and a pending transfer resolved twice in one chain.
public sealed partial class LedgerStateMachine
{
    /// <summary>
    /// True when an earlier event of the chain posts or voids the same pending transfer as event
    /// <paramref name="index"/> does (so that one only appears to be resolvable: its Decide-time status is the earlier
    /// one's result). <paramref name="earlierPosted"/> says whether the earlier one was a post.
    /// </summary>
    private static bool ResolvedEarlierInChain(Transfer[] events, CrossShardChainIndex chain, int index, out bool earlierPosted)
    {
        earlierPosted = false;
        ref readonly var t = ref events[index];
        if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) == 0 ||
            chain.EarlierResolverOf(t.PendingId, index) is not (var j and >= 0))
        {
            return false;
        }

        earlierPosted = (events[j].Flags & TransferFlags.PostPendingTransfer) != 0;
        return true;
    }

    /// <summary>
    /// Within a chain, a later leg on the same account sees an earlier post (void) of a pending transfer as done:
    /// that transfer's pending amount leaves the account's pending balance, and a post's amount is posted, as the
    /// local ledger's chain would have it. Nothing changes when this shard's copy of the pending transfer is
    /// missing, already expired or no longer reserved here, or when an earlier leg of the chain resolved it
    /// already (the chain's Decide then refuses it).
    /// </summary>
    private void ResolveInView(ref Account view, BalanceSide side, CrossShardLegIndex chain, int earlierIndex)
    {
        var resolved = chain.Legs[earlierIndex].Transfer;
        if (chain.EarlierResolveLegOf(resolved.PendingId, earlierIndex) >= 0)
        {
            return;
        }

        // The pending transfer as stored here, or created by an earlier event of this chain (reserved by its leg).
        if (!TryGetResolvedPending(chain, earlierIndex, out var p) || batch.GetPendingStatus(p.Id) == PendingStatus.Expired)
        {
            return;
        }

        var pending = side == BalanceSide.Debit ? view.DebitsPending : view.CreditsPending;
        var post = (resolved.Flags & TransferFlags.PostPendingTransfer) != 0;
        if (pending < p.Amount || (post && (resolved.Amount > p.Amount || BalanceSteps.PostedOverflows(view, side, resolved.Amount))))
        {
            return;
        }

        if (post)
        {
            BalanceSteps.Post(ref view, side, p.Amount, resolved.Amount);
        }
        else
        {
            BalanceSteps.Release(ref view, side, p.Amount);
            if ((p.Flags & (side == BalanceSide.Debit ? TransferFlags.ClosingDebit : TransferFlags.ClosingCredit)) != 0)
            {
                view.Flags &= ~AccountFlags.Closed; // Voiding the closing transfer reopens the account (as Reopen does locally).
            }
        }
    }
}
