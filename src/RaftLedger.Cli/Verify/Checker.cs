using System.Globalization;
using RaftLedger.Ledger;

namespace RaftLedger.Cli.Verify;

/// <summary>One broken guarantee found by the checker.</summary>
public readonly record struct Violation(string Check, string Detail);

/// <summary>One replica's final state, as its node reports it.</summary>
public readonly record struct ReplicaFinal(uint Shard, ulong Node, ulong AppliedIndex, UInt128 Fingerprint);

/// <summary>Everything the checker needs: the history and the cluster's state after the final heal.</summary>
public sealed record CheckerInput
{
    public required IReadOnlyList<OpRecord> Operations { get; init; }

    /// <summary>The workload's accounts (setup included) as created: ids and flags.</summary>
    public required IReadOnlyList<Account> Accounts { get; init; }

    /// <summary>Every account read back at the end (a linearizable lookup through the healed cluster).</summary>
    public required IReadOnlyList<Account> FinalAccounts { get; init; }

    /// <summary>Every transfer id the history ever sent, looked up at the end: those found.</summary>
    public required IReadOnlyList<Transfer> FinalTransfers { get; init; }

    /// <summary>
    /// Per account, the timestamps its own shard gave the transfers touching it (get_account_transfers at the end).
    /// A cross-shard transfer is applied on a participant's account when its Finish is, with that shard's
    /// timestamp, not the home's: an account's history is in this order. Missing accounts: the home timestamps.
    /// </summary>
    public IReadOnlyDictionary<UInt128, IReadOnlyDictionary<UInt128, ulong>> AccountTimestamps { get; init; } =
        new Dictionary<UInt128, IReadOnlyDictionary<UInt128, ulong>>();

    /// <summary>Replicas at the end; empty skips the replica check (unit tests of the history checks).</summary>
    public IReadOnlyList<ReplicaFinal> Replicas { get; init; } = [];

    /// <summary>True when every shard's replicas reached the same applied index before the deadline.</summary>
    public bool ReplicasConverged { get; init; } = true;

    /// <summary>Replicas each shard must have (0 skips the count check).</summary>
    public int Replication { get; init; }

    /// <summary>
    /// The cluster's shard count: a timed pending transfer with its accounts and id on one shard is swept by that
    /// shard's ledger, so its release is bounded in time by later transfers there. 0 (unknown) bounds no expiry above
    /// during the run; the end state still checks every one.
    /// </summary>
    public int ShardCount { get; init; }
}

/// <summary>What the checker found, by check.</summary>
public sealed record CheckerReport(IReadOnlyList<Violation> Violations, IReadOnlyDictionary<string, string> Passed)
{
    public bool Ok => Violations.Count == 0;

    /// <summary>The run's timed pending transfers by fate (none when the checker did not run).</summary>
    public TimedPendingCounts TimedPendings { get; init; }
}

/// <summary>
/// The audit of issue 8 §3, pure: from the recorded history and the final state it proves that every
/// acknowledged transfer is present exactly once with its fields, every failed one is absent, unknown ones are
/// all-or-nothing, balances equal the history's effects, money is conserved, no guarded account was ever seen
/// overdrawn, single-account reads are linearizable (real-time order), pending transfers are resolved once (posted,
/// voided or expired after their timeout) and none with a timeout is reserved at the end, and replicas are identical.
/// </summary>
public static class Checker
{
    /// <summary>Violations reported per check at most; the count says how many there were in all.</summary>
    public const int ViolationsPerCheckMax = 20;

    public static CheckerReport Check(CheckerInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var violations = new List<Violation>();
        var passed = new Dictionary<string, string>();
        var sent = TransferFacts.Build(input.Operations);
        var found = new Dictionary<UInt128, Transfer>();
        foreach (var transfer in input.FinalTransfers)
        {
            found[transfer.Id] = transfer;
        }

        Run("acknowledged transfers present, failed absent", violations, passed, () => CheckTransfers(sent, found));
        Run("linked chains all-or-nothing", violations, passed, () => CheckChains(input.Operations, found));
        var expiry = new ExpiryContext(found.Values, sent, input.ShardCount);
        var histories = AccountHistory.Build(input.Accounts, found.Values, input.AccountTimestamps, expiry);
        Run("balances equal the history's effects", violations, passed, () => CheckBalances(input, histories));
        Run("posts, voids and expiries of pending transfers consistent", violations, passed, () => ExpiryChecker.CheckResolutions(input.Operations, sent, found));
        Run("no timed pending transfer reserved after its timeout", violations, passed, () => ExpiryChecker.CheckReleased(input.FinalAccounts, found, histories));
        Run("money conserved per ledger", violations, passed, () => CheckConservation(input.FinalAccounts));
        Run("no guarded account overdrawn in any read", violations, passed, () => CheckOverdrafts(input));
        Run("single-account reads linearizable", violations, passed, () => ReadChecker.Check(input.Operations, histories, sent));
        if (input.Replicas.Count > 0 || input.Replication > 0)
        {
            Run("replicas identical per shard", violations, passed, () => CheckReplicas(input));
        }

        return new CheckerReport(violations, passed) { TimedPendings = ExpiryChecker.Count(input.Operations, found) };
    }

    private static void Run(string check, List<Violation> violations, Dictionary<string, string> passed, Func<(List<string> Problems, string Summary)> body)
    {
        var (problems, summary) = body();
        if (problems.Count == 0)
        {
            passed[check] = summary;
            return;
        }

        foreach (var problem in problems.Take(ViolationsPerCheckMax))
        {
            violations.Add(new Violation(check, problem));
        }

        if (problems.Count > ViolationsPerCheckMax)
        {
            violations.Add(new Violation(check, $"... and {problems.Count - ViolationsPerCheckMax} more"));
        }
    }

    private static (List<string>, string) CheckTransfers(Dictionary<UInt128, TransferFact> sent, Dictionary<UInt128, Transfer> found)
    {
        var problems = new List<string>();
        int acked = 0, failed = 0, unknownPresent = 0, unknownAbsent = 0;
        foreach (var fact in sent.Values)
        {
            var present = found.TryGetValue(fact.Sent.Id, out var stored);
            switch (fact.Fate)
            {
                case TransferFate.Acknowledged:
                    acked++;
                    if (!present)
                    {
                        problems.Add($"lost: transfer {fact.Sent.Id} was acknowledged ({fact.Status}) by node {fact.Node} at {Seconds(fact.AckMicros)} (op {fact.OpId}) but is missing from the final state");
                    }

                    break;
                case TransferFate.Failed:
                    failed++;
                    if (present)
                    {
                        problems.Add($"failed transfer applied: transfer {fact.Sent.Id} was answered '{fact.Status}' (op {fact.OpId}) but is present in the final state");
                    }

                    break;
                default:
                    _ = present ? unknownPresent++ : unknownAbsent++;
                    break;
            }

            if (present && FieldDifference(fact.Sent, stored) is { } difference)
            {
                problems.Add($"transfer {fact.Sent.Id} is stored with a different {difference} than was sent (op {fact.OpId})");
            }
        }

        foreach (var id in found.Keys.Where(id => !sent.ContainsKey(id)))
        {
            problems.Add($"phantom: transfer {id} is present but the workload never sent it");
        }

        return (problems, $"{acked} acknowledged all present, {failed} failed all absent, unknown: {unknownPresent} present + {unknownAbsent} absent");
    }

    private static string? FieldDifference(in Transfer sent, in Transfer stored) =>
        sent.DebitAccountId != stored.DebitAccountId ? "debit account" :
        sent.CreditAccountId != stored.CreditAccountId ? "credit account" :
        AmountDiffers(sent, stored) ? $"amount ({stored.Amount}, sent {sent.Amount})" :
        sent.PendingId != stored.PendingId ? "pending id" :
        sent.Flags != stored.Flags ? "flags" :
        sent.TimeoutSeconds != stored.TimeoutSeconds ? "timeout" :
        sent.Ledger != stored.Ledger ? "ledger" :
        sent.Code != stored.Code ? "code" :
        sent.UserData128 != stored.UserData128 || sent.UserData64 != stored.UserData64 || sent.UserData32 != stored.UserData32 ? "user data" :
        null;

    // A balancing transfer is stored with the amount the ledger clamped it to: at most the amount sent.
    private static bool AmountDiffers(in Transfer sent, in Transfer stored) =>
        (sent.Flags & (TransferFlags.BalancingDebit | TransferFlags.BalancingCredit)) != 0
            ? stored.Amount > sent.Amount
            : stored.Amount != sent.Amount;

    private static (List<string>, string) CheckChains(IReadOnlyList<OpRecord> operations, Dictionary<UInt128, Transfer> found)
    {
        var problems = new List<string>();
        var chains = 0;
        foreach (var op in operations.Where(o => o.Kind == OpKind.Transfers))
        {
            foreach (var (start, length) in TransferFacts.Chains(op.Transfers))
            {
                if (length < 2)
                {
                    continue;
                }

                chains++;
                var present = 0;
                for (var i = start; i < start + length; i++)
                {
                    present += found.ContainsKey(op.Transfers[i].Id) ? 1 : 0;
                }

                if (present != 0 && present != length)
                {
                    problems.Add($"torn chain: {present} of {length} linked transfers of op {op.Id} (first {op.Transfers[start].Id}) are present");
                }
            }
        }

        return (problems, $"{chains} linked chains, none torn");
    }

    private static (List<string>, string) CheckBalances(CheckerInput input, Dictionary<UInt128, AccountHistory> histories)
    {
        var problems = new List<string>();
        var finals = input.FinalAccounts.ToDictionary(a => a.Id);
        foreach (var account in input.Accounts)
        {
            if (!finals.TryGetValue(account.Id, out var final))
            {
                problems.Add($"account {account.Id} is missing from the final state");
                continue;
            }

            var expected = histories[account.Id].Final;
            var actual = Balances.Of(final);
            if (expected != actual)
            {
                problems.Add($"account {account.Id}: the cluster has {actual}, the transfers present give {expected} (with every timed pending transfer never posted or voided released: a lost, doubled or phantom effect, or an expiry missing)");
            }
        }

        return (problems, $"{input.Accounts.Count} accounts match the transfers present");
    }

    private static (List<string>, string) CheckConservation(IReadOnlyList<Account> accounts)
    {
        var problems = new List<string>();
        foreach (var ledger in accounts.GroupBy(a => a.Ledger))
        {
            UInt128 debitsPosted = 0, creditsPosted = 0, debitsPending = 0, creditsPending = 0;
            foreach (var a in ledger)
            {
                debitsPosted += a.DebitsPosted;
                creditsPosted += a.CreditsPosted;
                debitsPending += a.DebitsPending;
                creditsPending += a.CreditsPending;
            }

            if (debitsPosted != creditsPosted || debitsPending != creditsPending)
            {
                problems.Add($"ledger {ledger.Key}: debits posted {debitsPosted} vs credits posted {creditsPosted}, debits pending {debitsPending} vs credits pending {creditsPending}");
            }
        }

        return (problems, $"{accounts.Select(a => a.Ledger).Distinct().Count()} ledger(s): total debits = total credits (posted and pending)");
    }

    private static (List<string>, string) CheckOverdrafts(CheckerInput input)
    {
        var problems = new List<string>();
        var guarded = input.Accounts.Where(a => (a.Flags & AccountFlags.DebitsMustNotExceedCredits) != 0).Select(a => a.Id).ToHashSet();
        var reads = 0;
        foreach (var op in input.Operations.Where(o => o.Outcome == OpOutcome.Ok && o.Kind != OpKind.Transfers))
        {
            foreach (var account in op.ReadAccounts)
            {
                reads++;
                if (guarded.Contains(account.Id) && account.DebitsPosted + account.DebitsPending > account.CreditsPosted)
                {
                    problems.Add($"overdraft: read op {op.Id} (node {op.Node}, at {Seconds(op.CompleteMicros)}) shows guarded account {account.Id} with debits {account.DebitsPosted}+{account.DebitsPending} pending > credits {account.CreditsPosted}");
                }
            }
        }

        foreach (var account in input.FinalAccounts.Where(a => guarded.Contains(a.Id)))
        {
            if (account.DebitsPosted + account.DebitsPending > account.CreditsPosted)
            {
                problems.Add($"overdraft: guarded account {account.Id} ends with debits {account.DebitsPosted}+{account.DebitsPending} pending > credits {account.CreditsPosted}");
            }
        }

        return (problems, $"{reads} account reads and the final state");
    }

    private static (List<string>, string) CheckReplicas(CheckerInput input)
    {
        var problems = new List<string>();
        if (!input.ReplicasConverged)
        {
            problems.Add("the replicas did not reach the same applied index per shard before the deadline");
        }

        var shards = input.Replicas.GroupBy(r => r.Shard).OrderBy(g => g.Key).ToList();
        foreach (var shard in shards)
        {
            if (input.Replication > 0 && shard.Count() != input.Replication)
            {
                problems.Add($"shard {shard.Key}: {shard.Count()} replicas reported, expected {input.Replication}");
            }

            if (shard.Select(r => r.AppliedIndex).Distinct().Count() == 1 && shard.Select(r => r.Fingerprint).Distinct().Count() > 1)
            {
                var detail = string.Join(", ", shard.Select(r => $"node {r.Node}: {r.Fingerprint:x32}"));
                problems.Add($"shard {shard.Key}: replicas at applied index {shard.First().AppliedIndex} have different ledger fingerprints ({detail})");
            }
        }

        return (problems, $"{shards.Count} shards: same applied index and fingerprint on every replica");
    }

    public static string Seconds(long micros) => (micros / 1e6).ToString("0.000", CultureInfo.InvariantCulture) + " s";
}
