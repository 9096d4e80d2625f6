using RaftLedger.Ledger;

namespace RaftLedger.Cli.Verify;

/// <summary>What happened to the timed pending transfers of a run (for the summary).</summary>
public readonly record struct TimedPendingCounts(int Created, int ResolvedBeforeExpiry, int Expired, int AnsweredExpired);

/// <summary>
/// The checks of timed pending transfers, pure: a post or void that committed found its pending transfer still
/// pending and unexpired, nothing is resolved twice, <c>pending_transfer_expired</c> answers only for a pending
/// transfer with a timeout and not before the timeout could have passed, and at the end no timed pending transfer
/// still holds a reservation.
/// </summary>
public static class ExpiryChecker
{
    private const string ExpiredStatus = "pending_transfer_expired";

    /// <summary>Timed pending transfers named per violation at most.</summary>
    private const int IdsNamedMax = 10;

    public static TimedPendingCounts Count(IReadOnlyList<OpRecord> operations, Dictionary<UInt128, Transfer> found)
    {
        var resolutions = ExpiryModel.Resolutions(found.Values);
        var timed = found.Values.Where(t => ExpiryModel.IsTimedPending(t)).ToList();
        var resolved = timed.Count(p => resolutions.ContainsKey(p.Id));
        return new TimedPendingCounts(timed.Count, resolved, timed.Count - resolved, ExpiredAnswers(operations).Count());
    }

    /// <summary>Posts and voids that committed, and the answers <c>pending_transfer_expired</c>, against the pending transfers.</summary>
    public static (List<string> Problems, string Summary) CheckResolutions(
        IReadOnlyList<OpRecord> operations, Dictionary<UInt128, TransferFact> sent, Dictionary<UInt128, Transfer> found)
    {
        var problems = new List<string>();
        var resolutions = ExpiryModel.Resolutions(found.Values);
        foreach (var (pendingId, resolvedBy) in resolutions)
        {
            if (resolvedBy.Count > 1)
            {
                problems.Add($"resolved twice: pending transfer {pendingId} is posted/voided by {string.Join(" and ", resolvedBy.Select(r => r.Id))}");
            }

            if (found.TryGetValue(pendingId, out var p) && ExpiryModel.IsTimedPending(p))
            {
                var expiresAt = ExpiryModel.ExpiresAtNs(p);
                foreach (var late in resolvedBy.Where(r => r.Timestamp >= expiresAt))
                {
                    problems.Add($"resolved after expiry: {Kind(late)} {late.Id} was created at cluster time {late.Timestamp}, but pending transfer {pendingId} expired at {expiresAt} (timeout {p.TimeoutSeconds} s)");
                }
            }
        }

        foreach (var (op, finish) in ExpiredAnswers(operations))
        {
            CheckExpiredAnswer(op, finish, sent, resolutions, problems);
        }

        return (problems, $"{resolutions.Count} pending transfers posted/voided once each, before any expiry; every {ExpiredStatus} answer for a timed one after its timeout");
    }

    private static void CheckExpiredAnswer(OpRecord op, in Transfer finish, Dictionary<UInt128, TransferFact> sent, Dictionary<UInt128, List<Transfer>> resolutions, List<string> problems)
    {
        var where = $"{Kind(finish)} {finish.Id} (op {op.Id}, node {op.Node}, answered at {Checker.Seconds(op.CompleteMicros)})";
        if (!sent.TryGetValue(finish.PendingId, out var pending))
        {
            return; // A pending transfer the workload never sent: the post/void's own fate is checked elsewhere.
        }

        if (pending.Sent.TimeoutSeconds == 0)
        {
            problems.Add($"{where} was answered {ExpiredStatus}, but pending transfer {finish.PendingId} has no timeout");
            return;
        }

        if (op.CompleteMicros < ExpiryModel.EarliestMicros(pending))
        {
            problems.Add($"{where} was answered {ExpiredStatus} before the {pending.Sent.TimeoutSeconds} s timeout of pending transfer {finish.PendingId} (first sent at {Checker.Seconds(pending.InvokeMicros)}) could have passed");
        }

        if (resolutions.TryGetValue(finish.PendingId, out var resolvedBy))
        {
            problems.Add($"resolved twice: {where} was answered {ExpiredStatus}, but pending transfer {finish.PendingId} is posted/voided by {resolvedBy[0].Id}");
        }
    }

    /// <summary>
    /// Once every timeout passed, every account's pending balances are exactly those of the pending transfers without a
    /// timeout still open. On a mismatch the timed ones on the account that nothing proved released are named: no later
    /// transfer on the account was stamped past their expiry time (so no command of a single shard swept them there), or
    /// they cross shards (released by an expiry transaction no answer shows).
    /// </summary>
    public static (List<string> Problems, string Summary) CheckReleased(
        IReadOnlyList<Account> finalAccounts, Dictionary<UInt128, Transfer> found, Dictionary<UInt128, AccountHistory> histories)
    {
        var problems = new List<string>();
        var open = ExpiryModel.OpenUntimedPending(found.Values);
        foreach (var account in finalAccounts)
        {
            var expected = open.GetValueOrDefault(account.Id);
            if (account.DebitsPending == expected.DebitsPending && account.CreditsPending == expected.CreditsPending)
            {
                continue;
            }

            problems.Add($"still reserved: account {account.Id} ends with debits pending {account.DebitsPending}, credits pending {account.CreditsPending}; " +
                $"the open pending transfers without timeout give {expected.DebitsPending} and {expected.CreditsPending}. {Suspects(histories.GetValueOrDefault(account.Id), found)}");
        }

        var expiring = histories.Values.Sum(h => h.Expiries.Count) / 2; // Each pending transfer expires on two accounts.
        return (problems, $"{expiring} timed pending transfers never posted or voided all released; every account's pending balances = its open pending transfers without timeout");
    }

    private static string Suspects(AccountHistory? history, Dictionary<UInt128, Transfer> found)
    {
        var expiries = history?.Expiries ?? [];
        var unproven = expiries.Where(e => e.CertainMicros == long.MaxValue).ToList();
        if (expiries.Count == 0)
        {
            return "No timed pending transfer on it should have expired (an effect without one).";
        }

        var lastStamp = history!.Transfers.Count == 0 ? 0 : history.Transfers.Max(t => t.Timestamp);
        var named = string.Join(", ", unproven.Take(IdsNamedMax).Select(e => $"{e.PendingId} ({(e.Debit ? "debit" : "credit")} {e.Amount}, expires at {ExpiryModel.ExpiresAtNs(found[e.PendingId])})"));
        return $"Of its {expiries.Count} timed pending transfers that should have expired, {unproven.Count} were not proven released by a later transfer " +
            $"(the account's last transfer is stamped {lastStamp}): {named}{(unproven.Count > IdsNamedMax ? $" and {unproven.Count - IdsNamedMax} more" : "")}";
    }

    private static IEnumerable<(OpRecord Op, Transfer Finish)> ExpiredAnswers(IReadOnlyList<OpRecord> operations) =>
        operations
            .Where(o => o.Kind == OpKind.Transfers && o.Outcome == OpOutcome.Ok)
            .SelectMany(o => o.Transfers.Select((t, i) => (Op: o, Finish: t, Status: o.Statuses[i])))
            .Where(x => x.Status == ExpiredStatus)
            .Select(x => (x.Op, x.Finish));

    private static string Kind(in Transfer t) => (t.Flags & TransferFlags.PostPendingTransfer) != 0 ? "post" : "void";
}
