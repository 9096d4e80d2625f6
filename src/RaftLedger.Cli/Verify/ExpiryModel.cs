using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Cli.Verify;

/// <summary>
/// A timed pending transfer present at the end that no post or void present resolves: the cluster must expire it,
/// releasing its reservation on <see cref="Account"/> somewhere inside [<see cref="EarliestMicros"/>,
/// <see cref="CertainMicros"/>) of the history's clock. <see cref="Position"/> is the first prefix of the account's
/// transfers that holds the pending transfer (its index + 1).
/// </summary>
public readonly record struct Expiry(UInt128 PendingId, UInt128 Account, bool Debit, UInt128 Amount, int Position, long EarliestMicros, long CertainMicros);

/// <summary>
/// What the checker may assume about the expiry of timed pending transfers (TigerBeetle: expired from
/// <c>timestamp + timeout × 10⁹</c> of cluster time on, by the pending transfer's id home) without knowing the
/// cluster's clock exactly. Pure.
/// </summary>
public static class ExpiryModel
{
    /// <summary>
    /// Cluster time is the nodes' clock (verify runs every node on this machine), raised only by a nanosecond per event
    /// above the last timestamp; the history's clock is this process's monotonic one. The two may drift apart by a
    /// little over a run (clock slewing, when each side reads its clock), so "not before the timeout" gets this slack.
    /// </summary>
    public const long ClockSlackMicros = 250_000;

    /// <summary>
    /// How far a command's last timestamp can be above its first: one nanosecond per event, and no command holds more than
    /// a few thousand. A transfer stamped this far past an expiry time was applied in a command that swept it first.
    /// </summary>
    public const ulong CommandTimestampSpanNsMax = 1_000_000;

    private const long MicrosPerSecond = 1_000_000;

    public static bool IsTimedPending(in Transfer t) => (t.Flags & TransferFlags.Pending) != 0 && t.TimeoutSeconds != 0;

    public static bool IsResolution(in Transfer t) => (t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0;

    /// <summary>The cluster time from which the pending transfer is expired (its record's timestamp is its id home's).</summary>
    public static ulong ExpiresAtNs(in Transfer pending) => pending.Timestamp + (pending.TimeoutSeconds * LedgerLimits.NanosecondsPerSecond);

    /// <summary>No expiry can be decided before the pending transfer was first sent plus its timeout (history clock).</summary>
    public static long EarliestMicros(TransferFact pending) =>
        pending.InvokeMicros + (pending.Sent.TimeoutSeconds * MicrosPerSecond) - ClockSlackMicros;

    /// <summary>The posts and voids present, by the pending transfer they resolve.</summary>
    public static Dictionary<UInt128, List<Transfer>> Resolutions(IEnumerable<Transfer> present)
    {
        var byPending = new Dictionary<UInt128, List<Transfer>>();
        foreach (var t in present.Where(t => IsResolution(t)))
        {
            if (!byPending.TryGetValue(t.PendingId, out var list))
            {
                byPending[t.PendingId] = list = [];
            }

            list.Add(t);
        }

        return byPending;
    }

    /// <summary>The timed pending transfers present that no post or void present resolves: each must have expired.</summary>
    public static List<Transfer> Unresolved(IEnumerable<Transfer> present)
    {
        var all = present.ToList();
        var resolutions = Resolutions(all);
        return all.Where(t => IsTimedPending(t) && !resolutions.ContainsKey(t.Id)).ToList();
    }

    /// <summary>
    /// The pending balances every account must end with once all timeouts passed: the pending transfers without a
    /// timeout that no post or void resolves (posted, voided and expired ones hold nothing). Absent accounts hold none.
    /// </summary>
    public static Dictionary<UInt128, (UInt128 DebitsPending, UInt128 CreditsPending)> OpenUntimedPending(IEnumerable<Transfer> present)
    {
        var all = present.ToList();
        var resolutions = Resolutions(all);
        var open = new Dictionary<UInt128, (UInt128 DebitsPending, UInt128 CreditsPending)>();
        foreach (var p in all.Where(t => (t.Flags & TransferFlags.Pending) != 0 && t.TimeoutSeconds == 0 && !resolutions.ContainsKey(t.Id)))
        {
            var debit = open.GetValueOrDefault(p.DebitAccountId);
            open[p.DebitAccountId] = debit with { DebitsPending = debit.DebitsPending + p.Amount };
            var credit = open.GetValueOrDefault(p.CreditAccountId);
            open[p.CreditAccountId] = credit with { CreditsPending = credit.CreditsPending + p.Amount };
        }

        return open;
    }

    /// <summary>
    /// The expiries on one account, given its transfers in its shard's order and their timestamps there. The upper
    /// bound is known only for a pending transfer whose accounts and id share one shard: the ledger sweeps it before
    /// the first command stamped at or after its expiry time, so a transfer on the account stamped later and
    /// acknowledged by then proves the release. Across shards the release comes with the expiry transaction's Finish on
    /// the account's shard, which no answer shows; it is bounded only by the end state.
    /// </summary>
    public static List<Expiry> OnAccount(UInt128 account, IReadOnlyList<Transfer> ordered, Func<Transfer, ulong> timestampHere, ExpiryContext context)
    {
        var expiries = new List<Expiry>();
        for (var i = 0; i < ordered.Count; i++)
        {
            var p = ordered[i];
            if (!context.Unresolved.Contains(p.Id))
            {
                continue;
            }

            var earliest = context.Facts.TryGetValue(p.Id, out var fact) ? EarliestMicros(fact) : 0;
            var certain = context.IsLocal(p) ? CertainMicros(p, ordered, i, timestampHere, context.Facts) : long.MaxValue;
            expiries.Add(new Expiry(p.Id, account, p.DebitAccountId == account, p.Amount, i + 1, earliest, certain));
        }

        return expiries;
    }

    private static long CertainMicros(in Transfer p, IReadOnlyList<Transfer> ordered, int from, Func<Transfer, ulong> timestampHere, IReadOnlyDictionary<UInt128, TransferFact> facts)
    {
        var sweptBy = ExpiresAtNs(p) + CommandTimestampSpanNsMax;
        var certain = long.MaxValue;
        for (var k = from + 1; k < ordered.Count; k++)
        {
            if (timestampHere(ordered[k]) >= sweptBy && facts.TryGetValue(ordered[k].Id, out var later))
            {
                certain = Math.Min(certain, later.AckMicros);
            }
        }

        return certain;
    }
}

/// <summary>What <see cref="ExpiryModel.OnAccount"/> needs from the whole history.</summary>
public sealed class ExpiryContext
{
    public ExpiryContext(IEnumerable<Transfer> present, IReadOnlyDictionary<UInt128, TransferFact> facts, int shardCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shardCount);
        Unresolved = ExpiryModel.Unresolved(present).Select(t => t.Id).ToHashSet();
        Facts = facts;
        ShardCount = shardCount;
    }

    /// <summary>Timed pending transfers present with no post or void present.</summary>
    public HashSet<UInt128> Unresolved { get; }

    public IReadOnlyDictionary<UInt128, TransferFact> Facts { get; }

    /// <summary>The cluster's shard count; 0 = unknown, so no pending transfer is known to be on one shard.</summary>
    public int ShardCount { get; }

    /// <summary>Its accounts and its id on one shard: the ledger's own expiry index sweeps it, not a transaction.</summary>
    public bool IsLocal(in Transfer p)
    {
        if (ShardCount == 0)
        {
            return false;
        }

        var home = ShardRouter.ShardOf(p.Id, ShardCount);
        return ShardRouter.ShardOf(p.DebitAccountId, ShardCount) == home && ShardRouter.ShardOf(p.CreditAccountId, ShardCount) == home;
    }
}
