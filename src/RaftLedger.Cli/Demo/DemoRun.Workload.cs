using System.Diagnostics;
using RaftLedger.Ledger;

namespace RaftLedger.Cli.Demo;

public sealed partial class DemoRun
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(500);
    private readonly object consoleGate = new();
    private string phase = "paying";
    private int progressWidth;

    /// <summary>Payments throughout; per kill: leader killed, failover measured, node restarted and caught up.</summary>
    private async Task RunWorkloadWithFaultsAsync(PaymentWorkload workload, DemoAccounts accounts, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var probe = new ClusterProbe(client);
        var running = workload.RunAsync(stop.Token);
        var progress = ProgressAsync(workload, stop.Token);
        try
        {
            await Task.Delay(options.WarmUp, cancellationToken);
            for (var kill = 0; kill < options.Kills; kill++)
            {
                await KillAndRecoverAsync((uint)(kill % options.ShardCount), accounts, workload, probe, cancellationToken);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await running;
            await progress;
            ClearProgress();
        }

        var median = LatencyWindow.Percentile(failoverSeconds, 0.5);
        var max = failoverSeconds.Count == 0 ? 0 : failoverSeconds.Max();
        var notLeader = options.Kills - failoverSeconds.Count;
        checks.Add(new DemoCheck("writes resumed after each leader kill", failoverSeconds.Count + notLeader == options.Kills && failoverSeconds.Count > 0,
            $"{failoverSeconds.Count} leader kill(s): failover median {median:0.00} s, max {max:0.00} s (bar: median ≤ 1.0 s, max ≤ 1.5 s)" +
            (notLeader > 0 ? $"; {notLeader} kill(s) not counted: leadership had moved before the kill" : "")));
        if (failoverSeconds.Count > 1)
        {
            Say($"  failover per kill (s): {string.Join(" ", failoverSeconds.Select(s => s.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)))}");
        }

        var (p50, p99, worst) = workload.Latency.Overall();
        Say($"  workload: {Number(workload.AcknowledgedCount)} transfers acknowledged, {Number(workload.Rejected)} refused by the ledger, " +
            $"retries after 503: {workload.Unavailable}, 504/timeouts: {workload.Unknown}, unreachable: {workload.Unreachable}; " +
            $"request latency p50 {p50:0} ms, p99 {p99:0} ms, max {worst:0} ms");
    }

    private async Task KillAndRecoverAsync(uint shard, DemoAccounts accounts, PaymentWorkload workload, ClusterProbe probe, CancellationToken cancellationToken)
    {
        var (victim, term) = await probe.StableLeaderAsync(shard, LiveNodes, options.FailoverTimeout, cancellationToken);
        phase = $"node {victim} (leader of shard {shard}) killed";
        lock (down)
        {
            down.Add(victim);
        }

        var killed = Stopwatch.GetTimestamp();
        await Cluster.KillAsync(victim);
        // The clock runs from the kill to the first write created after it: a payment with a fresh id, sent only
        // once the victim has exited, so no write the old leader committed can stop it.
        var resumed = await FirstWriteAsync(shard, accounts, workload, cancellationToken);
        var failover = Stopwatch.GetElapsedTime(killed, resumed).TotalSeconds;
        var (leader, newTerm) = await probe.StableLeaderAsync(shard, LiveNodes, options.FailoverTimeout, cancellationToken);
        if (leader != victim && newTerm > term)
        {
            failoverSeconds.Add(failover);
            Say($"  killed node {victim} (leader of shard {shard}, term {term}) with SIGKILL: writes to shard {shard} resumed after {failover:0.00} s (node {leader} leads, term {newTerm})");
        }
        else
        {
            // A leadership transfer moved the shard away between the probe and the kill: nothing failed over.
            Say($"  killed node {victim}, but shard {shard} kept its leader in term {term}: not counted as a failover");
        }

        await Task.Delay(options.Degraded, cancellationToken);
        phase = $"node {victim} restarting";
        var restarted = Stopwatch.GetTimestamp();
        Cluster.Start(victim);
        await Cluster.WaitReadyAsync([victim], options.ReadyTimeout, cancellationToken);
        lock (down)
        {
            down.Remove(victim);
        }

        phase = $"node {victim} catching up";
        await probe.CaughtUpAsync(victim, AllNodes, options.ConvergeTimeout, cancellationToken);
        var catchUp = Stopwatch.GetElapsedTime(restarted).TotalSeconds;
        Say($"  restarted node {victim}: ready and caught up after {catchUp:0.00} s");
        checks.Add(new DemoCheck($"node {victim} restarted and caught up", true, $"{catchUp:0.00} s from start to caught up"));
        phase = "paying";
        await Task.Delay(options.Recovered, cancellationToken);
    }

    /// <summary>Sends one small payment on <paramref name="shard"/> until it is created; returns when (Stopwatch timestamp).</summary>
    private async Task<long> FirstWriteAsync(uint shard, DemoAccounts accounts, PaymentWorkload workload, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.FailoverTimeout);
        var transfer = new Transfer
        {
            Id = workload.NewTransferId(accounts.Banks[shard]),
            DebitAccountId = accounts.Banks[shard],
            CreditAccountId = accounts.Customers[shard][0],
            Amount = 1,
            Ledger = DemoAccounts.Ledger,
            Code = DemoAccounts.Code,
        };
        var results = await workload.SendUntilAnsweredAsync([transfer], 0, deadline.Token);
        if (results is null || !(results[0].IsCreated || results[0].Status == "exists"))
        {
            throw new DemoException(results is null
                ? $"writes to shard {shard} did not resume within {options.FailoverTimeout.TotalSeconds:0} s."
                : $"the failover probe payment answered '{results[0].Status}'.");
        }

        return Stopwatch.GetTimestamp();
    }

    private async Task ProgressAsync(PaymentWorkload workload, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(ProgressInterval);
        var last = Stopwatch.GetTimestamp();
        var lines = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var (transfers, p99) = workload.Latency.TakeWindow();
                var seconds = Stopwatch.GetElapsedTime(last).TotalSeconds;
                last = Stopwatch.GetTimestamp();
                var line = $"  {Number(transfers / seconds),7} transfers/s   p99 {p99,5:0} ms   acknowledged {Number(workload.AcknowledgedCount),8}   [{phase}]";
                // Redirected output gets a plain line every few seconds instead of a rewritten one.
                if (output == Console.Out && !Console.IsOutputRedirected)
                {
                    WriteProgress(line);
                }
                else if (lines++ % 4 == 0)
                {
                    Say(line);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The workload stopped.
        }
    }

    private void WriteProgress(string line)
    {
        lock (consoleGate)
        {
            output.Write('\r' + line.PadRight(progressWidth));
            progressWidth = line.Length;
        }
    }

    private void ClearProgress()
    {
        lock (consoleGate)
        {
            if (progressWidth > 0)
            {
                output.Write('\r' + new string(' ', progressWidth) + '\r');
                progressWidth = 0;
            }
        }
    }

    /// <summary>Prints a line of its own, above the progress line.</summary>
    private void Say(string line)
    {
        lock (consoleGate)
        {
            if (progressWidth > 0)
            {
                output.Write('\r' + new string(' ', progressWidth) + '\r');
                progressWidth = 0;
            }

            output.WriteLine(line);
        }
    }
}
