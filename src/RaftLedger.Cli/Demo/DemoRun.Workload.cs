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
        checks.Add(new DemoCheck("writes resumed after each leader kill", failoverSeconds.Count == options.Kills,
            $"{failoverSeconds.Count} kill(s): failover median {median:0.00} s, max {max:0.00} s (bar: median ≤ 1.0 s, max ≤ 1.5 s)"));
        var (p50, p99, worst) = workload.Latency.Overall();
        Say($"  workload: {Number(workload.AcknowledgedCount)} transfers acknowledged, {Number(workload.Rejected)} refused by the ledger, " +
            $"retries after 503: {workload.Unavailable}, 504/timeouts: {workload.Unknown}, unreachable: {workload.Unreachable}; " +
            $"request latency p50 {p50:0} ms, p99 {p99:0} ms, max {worst:0} ms");
    }

    private async Task KillAndRecoverAsync(uint shard, DemoAccounts accounts, PaymentWorkload workload, ClusterProbe probe, CancellationToken cancellationToken)
    {
        var victim = await probe.LeaderAsync(shard, LiveNodes, TimeSpan.FromSeconds(10), cancellationToken);
        phase = $"node {victim} (leader of shard {shard}) killed";
        lock (down)
        {
            down.Add(victim);
        }

        var killed = Stopwatch.GetTimestamp();
        await Cluster.KillAsync(victim);
        var resumed = await FirstWriteAsync(shard, accounts, workload, cancellationToken);
        var failover = Stopwatch.GetElapsedTime(killed, resumed).TotalSeconds;
        failoverSeconds.Add(failover);
        Say($"  killed node {victim} (leader of shard {shard}) with SIGKILL: writes to shard {shard} resumed after {failover:0.00} s");

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
