using System.Diagnostics;
using RaftLedger.Cli.Client;
using RaftLedger.Cli.Demo;

namespace RaftLedger.Cli.Bench;

/// <summary>
/// One leader kill: when, which node, the shards it led, and (filled in by the report) the longest
/// stretch without a committed transfer on those shards around the kill.
/// </summary>
public sealed record FailoverEvent(double AtSeconds, ulong Node, IReadOnlyList<int> Shards)
{
    /// <summary>Wall-clock time of the kill, to find it in the node logs.</summary>
    public DateTime AtUtc { get; init; } = DateTime.UtcNow;

    /// <summary>Seconds from the kill until the restarted node was ready again (/readyz); null if not restarted.</summary>
    public double? RestartedReadySeconds { get; set; }

    /// <summary>
    /// Seconds from the kill until the restarted node had applied, on every shard, what the shard's leader had
    /// committed when the node became ready; null if not measured (the run ended first).
    /// </summary>
    public double? RestartedCaughtUpSeconds { get; set; }

    /// <summary>The longest commit gap of the victim's shards spanning the kill (see <see cref="BenchRecorder.GapAround"/>).</summary>
    public double GapSeconds { get; set; }

    /// <summary>Per victim shard, the commit gap spanning the kill (empty until the report fills it in).</summary>
    public IReadOnlyList<CommitGap> ShardGaps { get; set; } = [];
}

public sealed partial class BenchRun
{
    private volatile string phase = "";
    private ProgressSampler? sampler;

    /// <summary>Kills a shard leader every <paramref name="every"/> (shard k mod S at the k-th kill) and restarts it.</summary>
    private async Task KillLoopAsync(TimeSpan every, CancellationToken stopping, CancellationToken abort)
    {
        for (var kill = 0; ; kill++)
        {
            var due = Recorder.StartedTimestamp + (long)((kill + 1) * every.TotalSeconds * Stopwatch.Frequency);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
            try
            {
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, stopping);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }

            // A kill that fell due while the previous restart was still waiting is dropped once the run has ended.
            if (stopping.IsCancellationRequested)
            {
                return;
            }

            await KillOneAsync(kill % Ledger.ShardCount, every, stopping, abort);
        }
    }

    private async Task KillOneAsync(int shard, TimeSpan every, CancellationToken stopping, CancellationToken abort)
    {
        var local = cluster!;
        // Every node must be back before the next kill: two nodes down at once would cost shards their quorum.
        var down = local.Nodes.Where(node => !local.IsRunning(node.Id)).Select(node => node.Id).ToList();
        if (down.Count > 0)
        {
            Say($"  kill skipped: node(s) {string.Join(", ", down)} still down");
            return;
        }

        await Ledger.RefreshAsync(abort);
        var victim = Ledger.LeaderOf(shard);
        if (victim == 0)
        {
            Say($"  kill skipped: no leader known for shard {shard}");
            return;
        }

        var led = Enumerable.Range(0, Ledger.ShardCount).Where(s => Ledger.LeaderOf(s) == victim).ToList();
        var killed = Stopwatch.GetTimestamp();
        await local.KillAsync(victim);
        foreach (var s in led)
        {
            Ledger.MarkStale(s);
        }

        var failover = new FailoverEvent(Recorder.SecondsSinceStart(killed), victim, led);
        lock (failovers)
        {
            failovers.Add(failover);
        }

        phase = $"[node {victim} killed, led shard(s) {string.Join(",", led)}]";
        Say($"  {failover.AtSeconds,6:0.0} s  SIGKILL node {victim} (leader of shard(s) {string.Join(", ", led)})");
        await RestartAsync(victim, failover, every, killed, stopping);
    }

    private async Task RestartAsync(ulong victim, FailoverEvent failover, TimeSpan every, long killed, CancellationToken stopping)
    {
        // Down for 30 % of the period (at most 3 s), so the node is back and caught up before the next kill.
        var downtime = TimeSpan.FromSeconds(Math.Min(3, every.TotalSeconds * 0.3));
        try
        {
            await Task.Delay(downtime, stopping);
        }
        catch (OperationCanceledException)
        {
            phase = "";
            return;
        }

        phase = $"[node {victim} restarting]";
        cluster!.Start(victim);
        try
        {
            // The run may end first: then the wait is dropped (the node keeps starting and is stopped with the cluster).
            await cluster.WaitReadyAsync([victim], BenchLimits.ReadyTimeout, stopping);
            failover.RestartedReadySeconds = Stopwatch.GetElapsedTime(killed).TotalSeconds;
            // Back means caught up, not just answering /readyz: until the node has the entries it missed, it cannot
            // acknowledge new ones, so killing a leader then would leave its shards one up-to-date replica (a second
            // fault, not the one failure a 3-replica cluster is built to absorb). --kill-after ready keeps the older
            // rule, to measure the leaders' catch-up stall that then falls inside the next kill's gap.
            if (options.KillAfter == KillAfter.CaughtUp)
            {
                phase = $"[node {victim} catching up]";
                await WaitCaughtUpAsync(victim, failover, killed, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }

        phase = "";
    }

    /// <summary>Waits until <paramref name="victim"/> has applied what the leaders had committed when it became ready.</summary>
    private async Task WaitCaughtUpAsync(ulong victim, FailoverEvent failover, long killed, CancellationToken stopping)
    {
        using var client = new LedgerHttpClient(TimeSpan.FromSeconds(2));
        var nodes = cluster!.Nodes.Select(node => (node.Id, node.ApiUrl)).ToList();
        try
        {
            await new ClusterProbe(client).CaughtUpAsync(victim, nodes, BenchLimits.ReadyTimeout, stopping);
            failover.RestartedCaughtUpSeconds = Stopwatch.GetElapsedTime(killed).TotalSeconds;
        }
        catch (TimeoutException e)
        {
            Say($"  node {victim} {e.Message}");
        }
    }

    private void Say(string line)
    {
        if (sampler is { } live)
        {
            live.Say(line);
        }
        else
        {
            output.WriteLine(line);
        }
    }
}
