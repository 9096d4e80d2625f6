using RaftLedger.Common;

namespace RaftLedger.Ledger;

/// <summary>Which side of an account a transfer leg touches.</summary>
public enum BalanceSide : byte
{
    /// <summary>The account is the transfer's debit account: debits_pending / debits_posted change.</summary>
    Debit = 0,

    /// <summary>The account is the transfer's credit account: credits_pending / credits_posted change.</summary>
    Credit = 1,
}

/// <summary>
/// The balance steps on ONE account, separate from any routine that needs both accounts of a
/// transfer: checks (overflow, limit, balancing headroom) and changes (reserve, post, release).
/// A transfer applies them to its debit account with <see cref="BalanceSide.Debit"/> and to its
/// credit account with <see cref="BalanceSide.Credit"/>; a cross-shard leg applies one side on the
/// shard that holds that account.
/// </summary>
public static class BalanceSteps
{
    /// <summary>True when the side's pending balance plus <paramref name="amount"/> does not fit in u128.</summary>
    public static bool PendingOverflows(in Account account, BalanceSide side, UInt128 amount) =>
        Overflows(Pending(account, side), amount);

    /// <summary>True when the side's posted balance plus <paramref name="amount"/> does not fit in u128.</summary>
    public static bool PostedOverflows(in Account account, BalanceSide side, UInt128 amount) =>
        Overflows(Posted(account, side), amount);

    /// <summary>True when pending + posted + <paramref name="amount"/> of the side does not fit in u128.</summary>
    public static bool TotalOverflows(in Account account, BalanceSide side, UInt128 amount) =>
        Overflows(Pending(account, side), Posted(account, side)) ||
        Overflows(Pending(account, side) + Posted(account, side), amount);

    /// <summary>
    /// True when adding <paramref name="amount"/> to the side would break the account's limit flag:
    /// debits_must_not_exceed_credits (debit side) or credits_must_not_exceed_debits (credit side).
    /// Callers check <see cref="TotalOverflows"/> first.
    /// </summary>
    public static bool ExceedsLimit(in Account account, BalanceSide side, UInt128 amount)
    {
        var limited = side == BalanceSide.Debit
            ? (account.Flags & AccountFlags.DebitsMustNotExceedCredits) != 0
            : (account.Flags & AccountFlags.CreditsMustNotExceedDebits) != 0;
        if (!limited)
        {
            return false;
        }

        Invariant.Check(!TotalOverflows(account, side, amount));
        return Pending(account, side) + Posted(account, side) + amount > OppositePosted(account, side);
    }

    /// <summary>
    /// How much the side can still take before reaching the opposite posted balance (0 when already
    /// at or past it). Balancing transfers clamp their amount to this, whatever the account's flags.
    /// </summary>
    public static UInt128 Headroom(in Account account, BalanceSide side)
    {
        var used = Pending(account, side) + Posted(account, side);
        var limit = OppositePosted(account, side);
        return limit > used ? limit - used : UInt128.Zero;
    }

    /// <summary>Reserves <paramref name="amount"/> on the side (a pending transfer). The caller checked for overflow.</summary>
    public static void Reserve(ref Account account, BalanceSide side, UInt128 amount)
    {
        Invariant.Check(!TotalOverflows(account, side, amount));
        if (side == BalanceSide.Debit)
        {
            account.DebitsPending += amount;
        }
        else
        {
            account.CreditsPending += amount;
        }
    }

    /// <summary>
    /// Releases <paramref name="reservedAmount"/> from the side's pending balance and posts
    /// <paramref name="postedAmount"/> (at most the reserved amount; the rest returns). A
    /// single-phase transfer posts with reservedAmount 0 after its overflow checks.
    /// </summary>
    public static void Post(ref Account account, BalanceSide side, UInt128 reservedAmount, UInt128 postedAmount)
    {
        Invariant.Check(reservedAmount == UInt128.Zero || postedAmount <= reservedAmount);
        Invariant.Check(Pending(account, side) >= reservedAmount);
        Invariant.Check(!Overflows(Posted(account, side), postedAmount));
        if (side == BalanceSide.Debit)
        {
            account.DebitsPending -= reservedAmount;
            account.DebitsPosted += postedAmount;
        }
        else
        {
            account.CreditsPending -= reservedAmount;
            account.CreditsPosted += postedAmount;
        }
    }

    /// <summary>Releases a reservation: the side's pending balance drops by <paramref name="amount"/> (void or expiry).</summary>
    public static void Release(ref Account account, BalanceSide side, UInt128 amount)
    {
        Invariant.Check(Pending(account, side) >= amount);
        if (side == BalanceSide.Debit)
        {
            account.DebitsPending -= amount;
        }
        else
        {
            account.CreditsPending -= amount;
        }
    }

    private static UInt128 Pending(in Account account, BalanceSide side) =>
        side == BalanceSide.Debit ? account.DebitsPending : account.CreditsPending;

    private static UInt128 Posted(in Account account, BalanceSide side) =>
        side == BalanceSide.Debit ? account.DebitsPosted : account.CreditsPosted;

    private static UInt128 OppositePosted(in Account account, BalanceSide side) =>
        side == BalanceSide.Debit ? account.CreditsPosted : account.DebitsPosted;

    private static bool Overflows(UInt128 a, UInt128 b) => a > UInt128.MaxValue - b;
}
