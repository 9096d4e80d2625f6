using RaftLedger.Ledger;

namespace RaftLedger.Cli.Verify;

/// <summary>What the history says about one transfer id.</summary>
public enum TransferFate
{
    /// <summary>Answered created (or exists on a retry): it must be present.</summary>
    Acknowledged,

    /// <summary>Answered with a failure status: it must be absent.</summary>
    Failed,

    /// <summary>Never answered definitely: present or absent, but all of it or none.</summary>
    Unknown,
}

/// <summary>One transfer as sent, and its fate according to the answers.</summary>
public sealed record TransferFact(Transfer Sent, long OpId, ulong Node, TransferFate Fate, string Status, long InvokeMicros, long AckMicros);

/// <summary>Folds the history's transfer operations into one fact per transfer id.</summary>
public static class TransferFacts
{
    public static Dictionary<UInt128, TransferFact> Build(IReadOnlyList<OpRecord> operations)
    {
        var facts = new Dictionary<UInt128, TransferFact>();
        foreach (var op in operations.Where(o => o.Kind == OpKind.Transfers))
        {
            var fates = Fates(op);
            for (var i = 0; i < op.Transfers.Length; i++)
            {
                var status = op.Outcome == OpOutcome.Ok ? op.Statuses[i] : op.Outcome.ToString().ToLowerInvariant();
                var ack = fates[i] == TransferFate.Acknowledged ? op.CompleteMicros : long.MaxValue;
                facts[op.Transfers[i].Id] = new TransferFact(op.Transfers[i], op.Id, op.Node, fates[i], status, op.InvokeMicros, ack);
            }
        }

        return facts;
    }

    /// <summary>
    /// The fate of each event of an operation. A linked chain retried after an attempt that applied it answers
    /// `exists` for its first event and `linked_event_failed` for the rest (the existing id fails the chain), so a
    /// chain with any `exists` is acknowledged as a whole.
    /// </summary>
    private static TransferFate[] Fates(OpRecord op)
    {
        var fates = new TransferFate[op.Transfers.Length];
        if (op.Outcome != OpOutcome.Ok)
        {
            Array.Fill(fates, op.Outcome == OpOutcome.Fail ? TransferFate.Failed : TransferFate.Unknown);
            return fates;
        }

        foreach (var (start, length) in Chains(op.Transfers))
        {
            var chainExists = false;
            for (var i = start; i < start + length; i++)
            {
                chainExists |= op.Statuses[i] == "exists";
            }

            for (var i = start; i < start + length; i++)
            {
                var acked = op.Statuses[i] is "created" or "exists" || (chainExists && length > 1);
                fates[i] = acked ? TransferFate.Acknowledged : TransferFate.Failed;
            }
        }

        return fates;
    }

    /// <summary>The linked chains of a batch as (start, length); a lone event is a chain of one.</summary>
    public static List<(int Start, int Length)> Chains(Transfer[] transfers)
    {
        var chains = new List<(int, int)>();
        var start = 0;
        for (var i = 0; i < transfers.Length; i++)
        {
            if ((transfers[i].Flags & TransferFlags.Linked) == 0)
            {
                chains.Add((start, i - start + 1));
                start = i + 1;
            }
        }

        if (start < transfers.Length)
        {
            chains.Add((start, transfers.Length - start));
        }

        return chains;
    }
}

/// <summary>An account's four balances.</summary>
public readonly record struct Balances(UInt128 DebitsPending, UInt128 DebitsPosted, UInt128 CreditsPending, UInt128 CreditsPosted)
{
    public static Balances Of(in Account account) =>
        new(account.DebitsPending, account.DebitsPosted, account.CreditsPending, account.CreditsPosted);

    public override string ToString() =>
        $"debits {DebitsPosted} posted + {DebitsPending} pending, credits {CreditsPosted} posted + {CreditsPending} pending";
}

/// <summary>
/// One account's committed history: the transfers present at the end that touch it, in the order the ledger
/// applied them (cluster timestamps increase in log order), and the balances after each prefix of them.
/// </summary>
public sealed class AccountHistory
{
    private AccountHistory(UInt128 id, List<Transfer> transfers, List<Balances> states, List<Expiry> expiries)
    {
        Id = id;
        Transfers = transfers;
        States = states;
        Expiries = expiries;
        Final = expiries.Aggregate(states[^1], (state, e) => Release(state, e));
    }

    public UInt128 Id { get; }

    /// <summary>Transfers touching the account, by timestamp.</summary>
    public IReadOnlyList<Transfer> Transfers { get; }

    /// <summary>States[k] = balances after the first k transfers, before any expiry; States[0] is all zero.</summary>
    public IReadOnlyList<Balances> States { get; }

    /// <summary>The timed pending transfers on the account that must expire (no post or void of them is present).</summary>
    public IReadOnlyList<Expiry> Expiries { get; }

    /// <summary>The balances once every transfer applied and every timeout passed: each expiry released.</summary>
    public Balances Final { get; }

    /// <summary>
    /// Replays the transfers present (post/void amounts from their pending transfers), per account in the order of
    /// <paramref name="accountTimestamps"/> (the account's own shard's timestamps; a transfer missing there, or an
    /// account without them, is ordered by its record's timestamp). Expiries are not in that order (no record shows
    /// when a reservation was released): <see cref="Expiries"/> lists them, from <paramref name="expiry"/>.
    /// </summary>
    public static Dictionary<UInt128, AccountHistory> Build(
        IReadOnlyList<Account> accounts, IEnumerable<Transfer> present, IReadOnlyDictionary<UInt128, IReadOnlyDictionary<UInt128, ulong>>? accountTimestamps = null,
        ExpiryContext? expiry = null)
    {
        var byId = present.ToDictionary(t => t.Id);
        var ordered = byId.Values.OrderBy(t => t.Timestamp).ToList();
        var histories = new Dictionary<UInt128, AccountHistory>();
        foreach (var account in accounts)
        {
            var touching = ordered.Where(t => t.DebitAccountId == account.Id || t.CreditAccountId == account.Id).ToList();
            IReadOnlyDictionary<UInt128, ulong> local = accountTimestamps is not null && accountTimestamps.TryGetValue(account.Id, out var found)
                ? found
                : new Dictionary<UInt128, ulong>();
            ulong Here(Transfer t) => local.TryGetValue(t.Id, out var at) ? at : t.Timestamp;
            touching = touching.OrderBy(Here).ToList();
            var states = new List<Balances>(touching.Count + 1) { default };
            foreach (var transfer in touching)
            {
                states.Add(Step(states[^1], account.Id, transfer, byId));
            }

            var expiries = expiry is null ? [] : ExpiryModel.OnAccount(account.Id, touching, Here, expiry);
            histories[account.Id] = new AccountHistory(account.Id, touching, states, expiries);
        }

        return histories;
    }

    /// <summary>The balances after an expiry released its reservation.</summary>
    public static Balances Release(Balances state, in Expiry expiry) => expiry.Debit
        ? state with { DebitsPending = state.DebitsPending - expiry.Amount }
        : state with { CreditsPending = state.CreditsPending - expiry.Amount };

    /// <summary>
    /// The prefixes k whose balances a read returned <paramref name="value"/> can be, given when the read ran: after
    /// the first k transfers, with every expiry in them certainly released before the read began released, and any
    /// of those that could have been released before it ended (not earlier than their timeout allows) released or not.
    /// </summary>
    public List<int> PrefixesMatching(Balances value, long invokeMicros, long completeMicros)
    {
        var matching = new List<int>();
        var debits = new ReleaseSet();
        var credits = new ReleaseSet();
        var next = 0;
        for (var k = 0; k < States.Count; k++)
        {
            for (; next < Expiries.Count && Expiries[next].Position <= k; next++)
            {
                var e = Expiries[next];
                (e.Debit ? debits : credits).Add(e.Amount, forced: e.CertainMicros < invokeMicros, possible: e.EarliestMicros <= completeMicros);
            }

            var s = States[k];
            if (s.DebitsPosted == value.DebitsPosted && s.CreditsPosted == value.CreditsPosted &&
                debits.Explains(s.DebitsPending, value.DebitsPending) && credits.Explains(s.CreditsPending, value.CreditsPending))
            {
                matching.Add(k);
            }
        }

        return matching;
    }

    private static Balances Step(Balances before, UInt128 account, in Transfer transfer, Dictionary<UInt128, Transfer> byId)
    {
        var debit = transfer.DebitAccountId == account;
        var flags = transfer.Flags;
        if ((flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0)
        {
            // A post or void releases the whole reservation; a post then moves its own amount to posted.
            var reserved = byId.TryGetValue(transfer.PendingId, out var pending) ? pending.Amount : 0;
            var posted = (flags & TransferFlags.PostPendingTransfer) != 0 ? transfer.Amount : 0;
            return debit
                ? before with { DebitsPending = before.DebitsPending - reserved, DebitsPosted = before.DebitsPosted + posted }
                : before with { CreditsPending = before.CreditsPending - reserved, CreditsPosted = before.CreditsPosted + posted };
        }

        if ((flags & TransferFlags.Pending) != 0)
        {
            return debit
                ? before with { DebitsPending = before.DebitsPending + transfer.Amount }
                : before with { CreditsPending = before.CreditsPending + transfer.Amount };
        }

        return debit
            ? before with { DebitsPosted = before.DebitsPosted + transfer.Amount }
            : before with { CreditsPosted = before.CreditsPosted + transfer.Amount };
    }
}

/// <summary>The expiries on one side of an account within a prefix: those that must be released and those that may be.</summary>
internal sealed class ReleaseSet
{
    private readonly List<UInt128> optional = [];
    private UInt128 forcedSum;
    private UInt128 optionalSum;

    public void Add(UInt128 amount, bool forced, bool possible)
    {
        if (forced)
        {
            forcedSum += amount;
        }
        else if (possible)
        {
            optional.Add(amount);
            optionalSum += amount;
        }
    }

    /// <summary>True when <paramref name="seen"/> is <paramref name="replayed"/> less the forced releases and some of the optional ones.</summary>
    public bool Explains(UInt128 replayed, UInt128 seen)
    {
        if (seen > replayed || replayed - seen < forcedSum)
        {
            return false;
        }

        var rest = replayed - seen - forcedSum;
        return rest == 0 || (rest <= optionalSum && SubsetSums(rest));
    }

    // Subset sum over a handful of small amounts (the workload's are 1..5, and few expire on one account at once).
    private bool SubsetSums(UInt128 target)
    {
        var reachable = new HashSet<UInt128> { 0 };
        foreach (var amount in optional)
        {
            foreach (var sum in reachable.ToList())
            {
                if (sum + amount <= target)
                {
                    reachable.Add(sum + amount);
                }
            }

            if (reachable.Contains(target))
            {
                return true;
            }
        }

        return false;
    }
}
