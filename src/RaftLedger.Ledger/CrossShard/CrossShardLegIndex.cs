using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

/// <summary>
/// One transaction's legs on one shard, indexed for the checks that look back over the earlier legs of the chain
/// (a participant's Prepare, the home's inline Decide), so a chain of <see cref="CrossShardLimits.TransactionEventsMax"/>
/// events is checked in time linear in its length: per account and side the amount the earlier plain (not pending)
/// legs move from pending to posted in the view, which accounts an earlier post/void touches (their view is built by
/// the legs of that account in order, as before), and the ids of the earlier pending legs and posts/voids. Legs are
/// folded in as the checks advance; they never go back. Pure.
/// </summary>
internal sealed class CrossShardLegIndex
{
    private readonly Dictionary<(UInt128 Account, BalanceSide Side), UInt128> postedInView = [];
    private readonly HashSet<UInt128> resolveAccounts = [];
    private readonly Dictionary<UInt128, List<int>> legsOfAccount = [];
    private readonly Dictionary<UInt128, int> firstPendingLeg = [];
    private readonly Dictionary<UInt128, int> firstResolveLeg = [];

    // Invariant: the maps above describe exactly legs[0..folded).
    private int folded;

    public CrossShardLegIndex(Leg[] legs)
    {
        ArgumentNullException.ThrowIfNull(legs);
        Legs = legs;
    }

    public Leg[] Legs { get; }

    /// <summary>Folds in the legs before <paramref name="index"/> (the checks go forward only).</summary>
    public void FoldTo(int index)
    {
        Invariant.Check(index >= folded, "a chain's legs are checked in order");
        Invariant.Check(index <= Legs.Length);
        for (; folded < index; folded++)
        {
            Fold(folded);
        }
    }

    /// <summary>True when a folded leg posts or voids a pending transfer on <paramref name="accountId"/>.</summary>
    public bool ResolvesOn(UInt128 accountId) => resolveAccounts.Contains(accountId);

    /// <summary>What the folded plain legs on this account and side move from pending to posted in the view.</summary>
    public UInt128 PostedInView(UInt128 accountId, BalanceSide side) => postedInView.GetValueOrDefault((accountId, side));

    /// <summary>The folded legs with a side on <paramref name="accountId"/>, in order.</summary>
    public IReadOnlyList<int> LegsOn(UInt128 accountId) => legsOfAccount.TryGetValue(accountId, out var legs) ? legs : [];

    /// <summary>The first leg before <paramref name="before"/> that creates pending transfer <paramref name="id"/> here (a Debit or Credit side, not a post/void); -1 if none.</summary>
    public int EarlierPendingLegOf(UInt128 id, int before)
    {
        FoldTo(Math.Max(folded, before));
        return firstPendingLeg.TryGetValue(id, out var k) && k < before ? k : -1;
    }

    /// <summary>The first post/void leg before <paramref name="before"/> naming <paramref name="pendingId"/>; -1 if none.</summary>
    public int EarlierResolveLegOf(UInt128 pendingId, int before)
    {
        FoldTo(Math.Max(folded, before));
        return firstResolveLeg.TryGetValue(pendingId, out var k) && k < before ? k : -1;
    }

    private void Fold(int k)
    {
        ref readonly var leg = ref Legs[k];
        var t = leg.Transfer;
        var resolve = (leg.Sides & LegSides.Resolve) != 0;
        if (resolve)
        {
            firstResolveLeg.TryAdd(t.PendingId, k);
        }
        else if ((t.Flags & TransferFlags.Pending) != 0 && (leg.Sides & (LegSides.Debit | LegSides.Credit)) != 0)
        {
            firstPendingLeg.TryAdd(t.Id, k);
        }

        if ((leg.Sides & LegSides.Debit) != 0)
        {
            FoldSide(k, t.DebitAccountId, BalanceSide.Debit, resolve, t);
        }

        if ((leg.Sides & LegSides.Credit) != 0 && ((leg.Sides & LegSides.Debit) == 0 || t.CreditAccountId != t.DebitAccountId))
        {
            FoldSide(k, t.CreditAccountId, BalanceSide.Credit, resolve, t);
        }
        else if ((leg.Sides & LegSides.Credit) != 0)
        {
            FoldSide(k, t.CreditAccountId, BalanceSide.Credit, resolve, t, listed: true);
        }
    }

    private void FoldSide(int k, UInt128 accountId, BalanceSide side, bool resolve, in Transfer t, bool listed = false)
    {
        if (!listed)
        {
            if (!legsOfAccount.TryGetValue(accountId, out var list))
            {
                legsOfAccount.Add(accountId, list = []);
            }

            list.Add(k);
        }

        if (resolve)
        {
            resolveAccounts.Add(accountId);
        }
        else if ((t.Flags & TransferFlags.Pending) == 0)
        {
            var key = (accountId, side);
            postedInView[key] = postedInView.GetValueOrDefault(key) + t.Amount;
        }
    }
}
