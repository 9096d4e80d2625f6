using RaftLedger.Ledger;
using RaftLedger.Node.Api;

namespace RaftLedger.Cli.Demo;

public sealed partial class DemoRun
{
    /// <summary>The checks after the run: acknowledged transfers present, money conserved, replicas identical.</summary>
    private async Task CheckAsync(PaymentWorkload workload, DemoAccounts accounts, CancellationToken cancellationToken)
    {
        Say("  checking ...");
        var node = LiveNodes[0].Url;
        var acknowledged = workload.Acknowledged();
        var found = 0;
        foreach (var chunk in acknowledged.Chunk(ApiLimits.EventsPerBatchMax))
        {
            var answer = await client.LookupTransfersAsync(node, chunk, cancellationToken);
            found += answer.IsOk ? answer.Value!.Length : throw new DemoException($"transfer lookup failed: {answer.Problem}");
        }

        checks.Add(new DemoCheck("every acknowledged transfer present", acknowledged.Length > 0 && found == acknowledged.Length,
            $"{Number(found)} of {Number(acknowledged.Length)} found"));

        var all = accounts.All.ToArray();
        var lookup = await client.LookupAccountsAsync(node, all, cancellationToken);
        if (!lookup.IsOk)
        {
            throw new DemoException($"account lookup failed: {lookup.Problem}");
        }

        CheckMoney(lookup.Value!, all.Length);
        await CheckReplicasAsync(cancellationToken);
    }

    private void CheckMoney(Account[] accounts, int expected)
    {
        UInt128 debitsPosted = 0, creditsPosted = 0, debitsPending = 0, creditsPending = 0;
        var overdrawn = 0;
        foreach (var account in accounts)
        {
            debitsPosted += account.DebitsPosted;
            creditsPosted += account.CreditsPosted;
            debitsPending += account.DebitsPending;
            creditsPending += account.CreditsPending;
            var guarded = (account.Flags & AccountFlags.DebitsMustNotExceedCredits) != 0;
            overdrawn += guarded && account.DebitsPosted + account.DebitsPending > account.CreditsPosted ? 1 : 0;
        }

        var conserved = accounts.Length == expected && debitsPosted == creditsPosted && debitsPending == creditsPending && debitsPosted > 0;
        checks.Add(new DemoCheck("money conserved", conserved,
            $"{accounts.Length} of {expected} accounts; debits posted {debitsPosted} = credits posted {creditsPosted}; pending {debitsPending} = {creditsPending}"));
        checks.Add(new DemoCheck("no guarded account overdrawn", overdrawn == 0, $"{overdrawn} overdrawn"));
    }

    private async Task CheckReplicasAsync(CancellationToken cancellationToken)
    {
        var replication = Math.Min(3, options.NodeCount);
        var (converged, views) = await new ClusterProbe(client).ConvergedAsync(AllNodes, replication, options.ConvergeTimeout, cancellationToken);
        var shards = views.GroupBy(v => v.Replica.ShardId).ToList();
        var differing = shards.Where(shard => shard.Select(v => v.Replica.Fingerprint).Distinct().Count() != 1).Select(shard => shard.Key).ToList();
        var passed = converged && shards.Count == options.ShardCount && differing.Count == 0;
        var detail = !converged
            ? $"replicas did not reach the same applied index within {options.ConvergeTimeout.TotalSeconds:0} s"
            : differing.Count > 0
                ? $"fingerprints differ on shard(s) {string.Join(", ", differing)}"
                : $"{shards.Count} shards × {replication} replicas: same applied index, same fingerprint";
        checks.Add(new DemoCheck("replicas' ledger fingerprints identical", passed, detail));
    }

    private void PrintChecks()
    {
        ClearProgress();
        var table = new TextTable("check", "result", "detail");
        foreach (var check in checks)
        {
            table.Add(check.Name, check.Passed ? "PASS" : "FAIL", check.Detail);
        }

        output.WriteLine();
        output.Write(table.Render());
        output.WriteLine();
        output.WriteLine(checks.Count > 0 && checks.All(c => c.Passed) ? "All checks passed." : "Some checks FAILED.");
        if (cluster is not null && checks.Any(c => !c.Passed))
        {
            foreach (var node in cluster.Nodes)
            {
                output.WriteLine(cluster.LogTail(node.Id, 8));
            }
        }
    }
}
