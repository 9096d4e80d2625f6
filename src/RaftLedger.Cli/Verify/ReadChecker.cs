namespace RaftLedger.Cli.Verify;

/// <summary>
/// The real-time check of single-account reads. The ledger applies an account's transfers in one order (its
/// shard's log), so a linearizable read returns the balances after some prefix k of that order. The prefix must
/// contain every transfer acknowledged before the read began, must not contain one first sent after the read
/// ended, and cannot be shorter than a prefix an earlier, already finished read of the account returned.
/// A read whose balances match no prefix shows an effect that was lost or never committed (a failed transfer).
/// A timed pending transfer that expired is released at a time no record shows: within its window (not before its
/// timeout, and for one on a single shard by the time a later transfer on the account proves its shard swept it) a
/// read may show it reserved or released (<see cref="AccountHistory.PrefixesMatching"/>).
/// </summary>
public static class ReadChecker
{
    public static (List<string> Problems, string Summary) Check(
        IReadOnlyList<OpRecord> operations, Dictionary<UInt128, AccountHistory> histories, Dictionary<UInt128, TransferFact> facts)
    {
        var problems = new List<string>();
        var reads = operations
            .Where(o => o.Outcome == OpOutcome.Ok && o.Kind != OpKind.Transfers)
            .SelectMany(o => o.ReadAccounts.Select(account => (Op: o, Account: account)))
            .GroupBy(r => r.Account.Id);
        var checkedReads = 0;
        foreach (var account in reads)
        {
            if (!histories.TryGetValue(account.Key, out var history))
            {
                continue; // Not a workload account.
            }

            var ordered = account.OrderBy(r => r.Op.InvokeMicros).ToList();
            var finished = new List<(long CompleteMicros, int Prefix)>();
            foreach (var (op, value) in ordered)
            {
                checkedReads++;
                var floor = finished.Where(f => f.CompleteMicros < op.InvokeMicros).Select(f => f.Prefix).DefaultIfEmpty(0).Max();
                if (CheckOne(history, facts, op, Balances.Of(value), floor, problems) is { } prefix)
                {
                    finished.Add((op.CompleteMicros, prefix));
                }
            }
        }

        return (problems, $"{checkedReads} account reads each match a prefix allowed by real-time order");
    }

    /// <summary>Checks one read; returns the smallest prefix it can be, or null (and a problem) if none fits.</summary>
    private static int? CheckOne(AccountHistory history, Dictionary<UInt128, TransferFact> facts, OpRecord op, Balances value, int floor, List<string> problems)
    {
        var (mustInclude, mustIncludeId) = (0, UInt128.Zero);
        var mayInclude = history.Transfers.Count;
        for (var k = 0; k < history.Transfers.Count; k++)
        {
            var id = history.Transfers[k].Id;
            if (!facts.TryGetValue(id, out var fact))
            {
                continue; // A phantom: reported by the transfer check.
            }

            if (fact.AckMicros < op.InvokeMicros)
            {
                (mustInclude, mustIncludeId) = (k + 1, id);
            }

            if (fact.InvokeMicros > op.CompleteMicros && mayInclude == history.Transfers.Count)
            {
                mayInclude = k;
            }
        }

        var matching = history.PrefixesMatching(value, op.InvokeMicros, op.CompleteMicros);
        var where = $"read op {op.Id} of account {history.Id} (node {op.Node}, {Checker.Seconds(op.InvokeMicros)}–{Checker.Seconds(op.CompleteMicros)})";
        if (matching.Count == 0)
        {
            problems.Add($"{where} shows {value}, which no prefix of the account's committed transfers gives (a lost effect, an uncommitted/failed transfer visible, or a timed pending transfer's reservation released before its timeout or still held after its shard swept it)");
            return null;
        }

        var lowest = Math.Max(mustInclude, floor);
        var fits = matching.Where(k => k >= lowest && k <= mayInclude).ToList();
        if (fits.Count > 0)
        {
            return fits[0];
        }

        if (matching.Max() < mustInclude)
        {
            problems.Add($"stale read: {where} misses transfer {mustIncludeId}, acknowledged before the read began (it shows the state after {matching.Max()} of the account's transfers, needs ≥ {mustInclude})");
        }
        else if (matching.Min() > mayInclude)
        {
            problems.Add($"read from the future: {where} includes transfer {history.Transfers[mayInclude].Id}, first sent after the read completed");
        }
        else
        {
            problems.Add($"non-monotonic read: {where} shows the state after ≤ {matching.Where(k => k <= mayInclude).Max()} transfers, but an earlier read that finished before it began saw {floor}");
        }

        return null;
    }
}
