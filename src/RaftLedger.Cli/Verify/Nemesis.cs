using RaftLedger.Cli.Client;
using RaftLedger.Cli.Demo;
using RaftLedger.Cli.Processes;
using RaftLedger.Cli.Verify.Proxy;
using RaftLedger.Node.Host;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Cli.Verify;

/// <summary>
/// Runs the fault schedule against a live cluster: kills and restarts processes, pauses and resumes them, and
/// cuts links in the proxy mesh. It records each fault in the history and waits (bounded) for the cluster to
/// be ready again before the quiet period that follows each fault.
/// </summary>
public sealed class Nemesis(LocalCluster cluster, ProxyMesh mesh, ClusterProbe probe, LedgerHttpClient client, HistoryRecorder history, VerifyOptions options, TextWriter output)
{
    private readonly Dictionary<FaultKind, int> injected = [];
    private readonly List<long> faultStartsMicros = [];
    private readonly List<string> recoveryProblems = [];

    /// <summary>Faults injected, by kind.</summary>
    public IReadOnlyDictionary<FaultKind, int> Injected => injected;

    /// <summary>When each fault began (history microseconds), for the failover gaps.</summary>
    public IReadOnlyList<long> FaultStartsMicros => faultStartsMicros;

    /// <summary>Times the cluster was not ready again within the timeout after a fault (liveness, reported, not a safety violation).</summary>
    public IReadOnlyList<string> RecoveryProblems => recoveryProblems;

    private IReadOnlyList<(ulong Id, Uri Url)> Nodes => cluster.Nodes.Select(n => (n.Id, n.ApiUrl)).ToList();

    /// <summary>
    /// Runs faults from the plan until <paramref name="until"/>: the first <paramref name="mandatory"/> always (one
    /// per fault family, so a short run on a slow machine still covers a kill, a pause and a partition), the rest
    /// only if they can end in time.
    /// </summary>
    public async Task RunAsync(IReadOnlyList<PlannedFault> plan, int mandatory, DateTime until, CancellationToken cancellationToken)
    {
        for (var i = 0; i < plan.Count; i++)
        {
            var fault = plan[i];
            if (i >= mandatory && DateTime.UtcNow + fault.Duration > until)
            {
                return;
            }

            await InjectAsync(fault, cancellationToken);
            await WaitReadyAsync($"after {FaultSchedule.Name(fault.Kind)}", cancellationToken);
            var quietEnd = DateTime.UtcNow + fault.Quiet;
            await Task.Delay(i + 1 < mandatory ? fault.Quiet : Min(fault.Quiet, until - DateTime.UtcNow), cancellationToken);
            if (i + 1 >= mandatory && quietEnd > until)
            {
                return;
            }
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? (a < TimeSpan.Zero ? TimeSpan.Zero : a) : (b < TimeSpan.Zero ? TimeSpan.Zero : b);

    private async Task InjectAsync(PlannedFault fault, CancellationToken cancellationToken)
    {
        injected[fault.Kind] = injected.GetValueOrDefault(fault.Kind) + 1;
        var ids = cluster.Nodes.Select(n => n.Id).ToArray();
        var random = new Random(fault.Pick);
        switch (fault.Kind)
        {
            case FaultKind.Kill or FaultKind.KillLeader:
                var victim = fault.Kind == FaultKind.Kill ? ids[random.Next(ids.Length)] : await LeaderAsync(random, ids, cancellationToken);
                await KillAndRestartAsync([victim], fault, cancellationToken);
                break;
            case FaultKind.KillAll:
                await KillAndRestartAsync(ids, fault, cancellationToken);
                break;
            case FaultKind.PowerCut:
                await PowerCutAsync(ids, fault, cancellationToken);
                break;
            case FaultKind.KillMetaLeader:
                await KillAndRestartAsync([await MetaLeaderAsync(random, ids, cancellationToken)], fault, cancellationToken);
                break;
            case FaultKind.Pause or FaultKind.PauseLeader:
                var paused = fault.Kind == FaultKind.Pause ? ids[random.Next(ids.Length)] : await LeaderAsync(random, ids, cancellationToken);
                await PauseAsync(paused, fault, cancellationToken);
                break;
            default:
                var leader = fault.Kind == FaultKind.IsolateLeader ? await LeaderAsync(random, ids, cancellationToken) : 0;
                await PartitionAsync(Topology.Cut(fault.Kind, ids, random, leader), fault, cancellationToken);
                break;
        }
    }

    /// <summary>The leader of a random shard; a random node if no leader is known within a few seconds.</summary>
    private async Task<ulong> LeaderAsync(Random random, ulong[] ids, CancellationToken cancellationToken)
    {
        var shard = (uint)random.Next(options.ShardCount);
        try
        {
            return await probe.LeaderAsync(shard, Nodes, TimeSpan.FromSeconds(5), cancellationToken);
        }
        catch (TimeoutException)
        {
            return ids[random.Next(ids.Length)];
        }
    }

    /// <summary>
    /// The meta group's leader in the highest term any node reports on /v1/cluster (polled up to 5 s); a random node
    /// if none is known by then.
    /// </summary>
    private async Task<ulong> MetaLeaderAsync(Random random, ulong[] ids, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            (ulong Leader, ulong Term) best = (0, 0);
            foreach (var (_, url) in Nodes)
            {
                try
                {
                    var answer = await client.GetClusterAsync(url, cancellationToken);
                    if (answer.IsOk && answer.Value!.Meta is { Leader: not 0 } meta && meta.Term >= best.Term)
                    {
                        best = (meta.Leader, meta.Term);
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    // A node that is down has nothing to report.
                }
            }

            if (best.Leader != 0 && ids.Contains(best.Leader))
            {
                return best.Leader;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
        }

        return ids[random.Next(ids.Length)];
    }

    private async Task KillAndRestartAsync(IReadOnlyList<ulong> victims, PlannedFault fault, CancellationToken cancellationToken)
    {
        Begin($"SIGKILL node(s) {string.Join(",", victims)} for {fault.Duration.TotalSeconds:0.0} s ({FaultSchedule.Name(fault.Kind)})");
        if (victims.Count == cluster.Nodes.Count)
        {
            await cluster.KillAllAsync();
        }
        else
        {
            await cluster.KillAsync(victims[0]);
        }

        await Task.Delay(fault.Duration, cancellationToken);
        foreach (var id in victims)
        {
            cluster.Start(id);
        }

        End($"restarted node(s) {string.Join(",", victims)}");
    }

    /// <summary>
    /// A power cut: SIGKILL every node at once, make each node's WAL look as a power cut would have left it (every
    /// byte its synced mark does not cover reads as never written: WalPowerCut), then restart them all. Only the Raft
    /// WAL loses bytes; RocksDB, which runs without its own WAL and syncs its files, keeps what the kill left.
    /// </summary>
    private async Task PowerCutAsync(ulong[] ids, PlannedFault fault, CancellationToken cancellationToken)
    {
        Begin($"power cut: SIGKILL node(s) {string.Join(",", ids)} for {fault.Duration.TotalSeconds:0.0} s and drop every WAL byte not fdatasync'd ({FaultSchedule.Name(fault.Kind)})");
        await cluster.KillAllAsync();
        var dropped = new List<string>();
        foreach (var id in ids)
        {
            if (cluster.IsRunning(id))
            {
                throw new VerifyException($"node {id} still runs after SIGKILL; its WAL cannot be cut");
            }

            var data = cluster.Node(id).DataDirectory;
            var markPath = DurableNodeStorage.SyncedMarkPath(data);
            var mark = WalSyncedMark.Read(markPath) ?? throw new VerifyException(
                $"node {id} wrote no synced mark ({markPath}); power-cut needs nodes started with {VerifyRun.SyncedMarkVariable}=on");
            var cut = WalPowerCut.Apply(DurableNodeStorage.WalDirectory(data), mark);
            dropped.Add($"node {id}: {cut.BytesDropped} bytes after segment {mark.Segment} offset {mark.OffsetBytes}");
        }

        Log($"power cut dropped {string.Join("; ", dropped)}");
        await Task.Delay(fault.Duration, cancellationToken);
        foreach (var id in ids)
        {
            cluster.Start(id);
        }

        End($"restarted node(s) {string.Join(",", ids)}");
    }

    private async Task PauseAsync(ulong node, PlannedFault fault, CancellationToken cancellationToken)
    {
        Begin($"SIGSTOP node {node} for {fault.Duration.TotalSeconds:0.0} s ({FaultSchedule.Name(fault.Kind)})");
        cluster.Pause(node);
        try
        {
            await Task.Delay(fault.Duration, cancellationToken);
        }
        finally
        {
            cluster.Resume(node);
        }

        End($"SIGCONT node {node}");
    }

    private async Task PartitionAsync(IReadOnlyList<(ulong From, ulong To)> cut, PlannedFault fault, CancellationToken cancellationToken)
    {
        Begin($"{FaultSchedule.Name(fault.Kind)} for {fault.Duration.TotalSeconds:0.0} s: drop {string.Join(" ", cut.Select(l => $"{l.From}→{l.To}"))}");
        mesh.SetCut(cut);
        try
        {
            await Task.Delay(fault.Duration, cancellationToken);
        }
        finally
        {
            mesh.HealAll();
        }

        End("healed the network");
    }

    /// <summary>The final phase: every link healed, every paused node resumed, every stopped node started; then ready.</summary>
    public async Task HealEverythingAsync(CancellationToken cancellationToken)
    {
        mesh.HealAll();
        foreach (var node in cluster.Nodes)
        {
            cluster.Resume(node.Id);
            if (!cluster.IsRunning(node.Id))
            {
                cluster.Start(node.Id);
            }
        }

        End("final heal: network healed, all nodes running");
        await WaitReadyAsync("after the final heal", cancellationToken);
    }

    private async Task WaitReadyAsync(string when, CancellationToken cancellationToken)
    {
        try
        {
            await cluster.WaitAllReadyAsync(options.ReadyTimeout, cancellationToken);
        }
        catch (LocalClusterException exception)
        {
            var problem = $"cluster not ready {options.ReadyTimeout.TotalSeconds:0} s {when}: {exception.Message.Split('\n')[0]}";
            recoveryProblems.Add(problem);
            output.WriteLine($"  ! {problem}");
            foreach (var node in cluster.Nodes.Where(n => !cluster.IsRunning(n.Id)))
            {
                cluster.Start(node.Id);
            }
        }
    }

    private void Begin(string description)
    {
        faultStartsMicros.Add(history.NowMicros);
        Log(description);
    }

    private void End(string description) => Log(description);

    private void Log(string description)
    {
        history.Fault(description);
        output.WriteLine($"  [{history.NowMicros / 1e6,7:0.0} s] {description}");
    }
}

/// <summary>Which directed links a partition drops (pure, from the seeded choice).</summary>
public static class Topology
{
    public static List<(ulong From, ulong To)> Cut(FaultKind kind, IReadOnlyList<ulong> ids, Random random, ulong leader)
    {
        var shuffled = ids.OrderBy(_ => random.Next()).ToList();
        return kind switch
        {
            FaultKind.Partition => BothWays(shuffled.Take(Math.Max(1, (ids.Count - 1) / 2)).ToList(), shuffled.Skip(Math.Max(1, (ids.Count - 1) / 2)).ToList()),
            FaultKind.IsolateLeader => BothWays([leader == 0 ? shuffled[0] : leader], ids.Where(id => id != (leader == 0 ? shuffled[0] : leader)).ToList()),
            FaultKind.Bridge => Bridge(shuffled),
            FaultKind.OneWay => OneWay(shuffled, random.Next(2) == 0),
            _ => throw new ArgumentException($"{kind} is not a partition", nameof(kind)),
        };
    }

    /// <summary>Every link between <paramref name="a"/> and <paramref name="b"/>, in both directions.</summary>
    public static List<(ulong From, ulong To)> BothWays(IReadOnlyList<ulong> a, IReadOnlyList<ulong> b) =>
        a.SelectMany(x => b.SelectMany(y => new[] { (x, y), (y, x) })).ToList();

    /// <summary>The first node bridges two halves of the rest that cannot reach each other.</summary>
    private static List<(ulong, ulong)> Bridge(List<ulong> shuffled)
    {
        var rest = shuffled.Skip(1).ToList();
        var half = Math.Max(1, rest.Count / 2);
        return BothWays(rest.Take(half).ToList(), rest.Skip(half).ToList());
    }

    /// <summary>The first node's outgoing links (it hears everyone, nobody hears it) or its incoming ones.</summary>
    private static List<(ulong, ulong)> OneWay(List<ulong> shuffled, bool outgoing)
    {
        var node = shuffled[0];
        return shuffled.Skip(1).Select(other => outgoing ? (node, other) : (other, node)).ToList();
    }
}
