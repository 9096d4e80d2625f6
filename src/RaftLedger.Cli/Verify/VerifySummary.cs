using System.Globalization;

namespace RaftLedger.Cli.Verify;

/// <summary>The end-of-run tables: operations by outcome, event statuses, faults, failover gaps, checks, violations.</summary>
public sealed class VerifySummary(HistoryRecorder history, CheckerReport report, Nemesis? nemesis, BankWorkload? workload, TimeSpan elapsed)
{
    public void Print(TextWriter output)
    {
        var operations = history.Operations;
        output.WriteLine();
        var ops = new TextTable("operation", "ok", "fail", "unknown", "attempts");
        foreach (var kind in operations.GroupBy(o => o.Kind).OrderBy(g => g.Key))
        {
            ops.Add(Name(kind.Key), Count(kind, OpOutcome.Ok), Count(kind, OpOutcome.Fail), Count(kind, OpOutcome.Unknown), N(kind.Sum(o => o.Attempts)));
        }

        output.Write(ops.Render());
        output.WriteLine();
        var statuses = new TextTable("transfer event status", "events");
        foreach (var status in operations.Where(o => o.Outcome == OpOutcome.Ok).SelectMany(o => o.Statuses).GroupBy(s => s).OrderByDescending(g => g.Count()))
        {
            statuses.Add(status.Key, N(status.Count()));
        }

        output.Write(statuses.Render());
        var timed = report.TimedPendings;
        output.WriteLine($"timed pending transfers: {N(timed.Created)} created, {N(timed.ResolvedBeforeExpiry)} posted/voided before expiry, " +
            $"{N(timed.Expired)} expired (never posted or voided), {N(timed.AnsweredExpired)} posts/voids answered pending_transfer_expired");
        if (nemesis is not null)
        {
            output.WriteLine();
            var faults = new TextTable("fault", "injected");
            foreach (var (kind, count) in nemesis.Injected.OrderBy(f => f.Key))
            {
                faults.Add(FaultSchedule.Name(kind), N(count));
            }

            output.Write(faults.Render());
            var gaps = FailoverGapsSeconds();
            output.WriteLine(gaps.Count == 0
                ? "failover gaps: no fault measured"
                : $"failover gaps (fault → first write that then succeeded on every shard), {gaps.Count} faults: p50 {Percentile(gaps, 0.5):0.00} s, max {gaps.Max():0.00} s");
        }

        output.WriteLine();
        var checks = new TextTable("check", "result", "detail");
        foreach (var (check, detail) in report.Passed)
        {
            checks.Add(check, "PASS", detail);
        }

        foreach (var failed in report.Violations.GroupBy(v => v.Check))
        {
            checks.Add(failed.Key, "FAIL", $"{failed.Count()} violation(s)");
        }

        output.Write(checks.Render());
        foreach (var violation in report.Violations)
        {
            output.WriteLine($"  VIOLATION [{violation.Check}] {violation.Detail}");
        }

        output.WriteLine($"violations: {report.Violations.Count}; run took {elapsed.TotalSeconds:0} s");
    }

    /// <summary>Per fault: the longest time, over shards, from the fault to the first write sent after it that succeeded.</summary>
    public List<double> FailoverGapsSeconds()
    {
        var gaps = new List<double>();
        if (nemesis is null || workload is null)
        {
            return gaps;
        }

        var byShard = history.Operations
            .Where(o => o.Kind == OpKind.Transfers && o.Outcome == OpOutcome.Ok && o.Client >= 0)
            .GroupBy(workload.ShardOf)
            .Select(g => g.OrderBy(o => o.InvokeMicros).ToList())
            .ToList();
        foreach (var start in nemesis.FaultStartsMicros)
        {
            var worst = 0L;
            foreach (var shardOps in byShard)
            {
                var first = shardOps.FirstOrDefault(o => o.InvokeMicros >= start);
                worst = first is null ? worst : Math.Max(worst, first.CompleteMicros - start);
            }

            gaps.Add(worst / 1e6);
        }

        return gaps;
    }

    private static double Percentile(List<double> values, double quantile)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    private static string Count(IEnumerable<OpRecord> ops, OpOutcome outcome) => N(ops.Count(o => o.Outcome == outcome));

    private static string N(int value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Name(OpKind kind) => kind switch
    {
        OpKind.Transfers => "create_transfers",
        OpKind.ReadAccount => "read account",
        _ => "read all accounts",
    };
}
