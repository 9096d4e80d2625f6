using RaftLedger.Common;

namespace RaftLedger.Simulation;

/// <summary>What one chaos seed runs: everything else is drawn from the seed.</summary>
public sealed record ChaosOptions
{
    /// <summary>The default length of the fault phase, tuned so CI runs 1,000+ seeds in well under 3 minutes.</summary>
    public const int ChaosTicksDefault = 600;

    /// <summary>3, 5 or 7; 0 lets the seed choose 3 or 5.</summary>
    public int Nodes { get; init; }

    /// <summary>Ticks of faults before the network heals and every node restarts.</summary>
    public int ChaosTicks { get; init; } = ChaosTicksDefault;

    /// <summary>Leader must be elected within this many election timeouts after healing (issue 3: 10).</summary>
    public int LeaderWithinElectionTimeouts { get; init; } = 10;

    /// <summary>Ticks after the leader appears by which every pending client operation must have completed.</summary>
    public int PendingCommitTicksMax { get; init; } = 500;

    /// <summary>Receives the message-level trace of the run when set (replaying one seed).</summary>
    public Action<string>? Trace { get; init; }

    /// <summary>A deliberate host bug, for tests that prove the checkers catch it.</summary>
    public SimHostBug HostBug { get; init; }
}

/// <summary>The outcome of one seed.</summary>
public sealed record SimRunResult(
    ulong Seed,
    int Nodes,
    int ChaosTicks,
    string? Failure,
    long Ticks,
    ulong CommittedIndex,
    int Operations,
    long Crashes,
    long MessagesSent,
    long SnapshotsInstalled)
{
    public bool Passed => Failure is null;

    /// <summary>The one command that replays this run.</summary>
    public string ReplayCommand =>
        $"dotnet run --project src/RaftLedger.Cli -c Release -- sim --seed {Seed} --nodes {Nodes}" +
        (ChaosTicks == ChaosOptions.ChaosTicksDefault ? "" : $" --ticks {ChaosTicks}");

    public override string ToString() => Passed
        ? $"seed {Seed} ({Nodes} nodes): ok, {Ticks} ticks, commit index {CommittedIndex}, {Operations} client ops, {Crashes} crashes, {SnapshotsInstalled} snapshots installed, {MessagesSent} messages"
        : $"seed {Seed} ({Nodes} nodes) FAILED after {Ticks} ticks: {Failure}\n  replay: {ReplayCommand}";
}

/// <summary>
/// One randomized chaos run: a cluster under a seed-drawn mix of message loss, duplication, reordering,
/// partitions (symmetric, one-way, leader isolation), crashes (also in the middle of persisting) and
/// restarts, with clients running throughout; then the network heals and every node restarts, and the run
/// must elect a leader, finish every pending operation, and pass every safety check and the
/// linearizability check. Any exception (including a core invariant) fails the seed.
/// </summary>
public static class ChaosRun
{
    public static SimRunResult Execute(ulong seed, ChaosOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var plan = new SimRandom(seed ^ 0x5EED_C4A0_5000_0001UL);
        var nodes = options.Nodes != 0 ? options.Nodes : (plan.Chance(0.5) ? 3 : 5);
        SimCluster? cluster = null;
        string? failure = null;
        try
        {
            cluster = new SimCluster(ClusterOptions(seed, nodes, plan) with { HostBug = options.HostBug });
            cluster.Trace = options.Trace;
            RunChaos(cluster, plan, options.ChaosTicks);
            RecoverAndCheck(cluster, options);
        }
        catch (SimulationFailureException e)
        {
            failure = cluster is null ? e.Message : $"{e.Message}\n{cluster.Describe()}";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failure = $"{e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }

        return new SimRunResult(
            seed, nodes, options.ChaosTicks, failure, cluster?.NowTicks ?? 0, cluster?.Checker.CommittedIndexMax ?? 0,
            cluster?.History.Operations.Count ?? 0, cluster?.CrashCount ?? 0, cluster?.Network.SentCount ?? 0,
            cluster?.SnapshotsInstalled ?? 0);
    }

    private static SimClusterOptions ClusterOptions(ulong seed, int nodes, SimRandom plan) => new()
    {
        NodeCount = nodes,
        Seed = seed,
        ClientCount = plan.Between(2, 6),
        KeyCount = plan.Between(1, 4),
        SnapshotEveryEntries = plan.Pick([0, 0, 20, 60]),
        TornWriteProbability = plan.NextDouble() * 0.5,
        SendBeforePersistWhenAllowed = plan.Chance(0.5),
        ReadIndexReads = plan.Chance(0.5),
    };

    private static void RunChaos(SimCluster cluster, SimRandom plan, int chaosTicks)
    {
        cluster.Network.Faults = RandomFaults(plan);
        var actionProbability = 0.01 + (plan.NextDouble() * 0.04);
        for (var tick = 0; tick < chaosTicks; tick++)
        {
            if (plan.Chance(actionProbability))
            {
                InjectFault(cluster, plan);
            }

            cluster.RunTick();
        }
    }

    private static NetworkFaults RandomFaults(SimRandom plan) => new()
    {
        DropProbability = plan.Pick([0.0, 0.01, 0.05, 0.1, 0.2]),
        DuplicateProbability = plan.Pick([0.0, 0.01, 0.05, 0.1]),
        DelayTicksMin = 1,
        DelayTicksMax = plan.Pick([1, 2, 3, 5, 8]),
    };

    private static void InjectFault(SimCluster cluster, SimRandom plan)
    {
        var n = cluster.Nodes.Count;
        var any = plan.Between(1, n + 1);
        var leader = cluster.Leader();
        switch (plan.Next(100))
        {
            case < 20:
                cluster.Crash(any);
                break;
            case < 30:
                cluster.Crash(leader != 0 ? leader : any);
                break;
            case < 38:
                cluster.Node(leader != 0 && plan.Chance(0.5) ? leader : any).CrashDuringNextPersist = true;
                break;
            case < 60:
                cluster.Restart(any);
                break;
            case < 70:
                cluster.Network.Partition(RandomSide(plan, n));
                break;
            case < 75:
                cluster.Network.BlockOneWay(any, any % n + 1);
                break;
            case < 82:
                cluster.Network.Isolate(leader != 0 ? leader : any);
                break;
            case < 90:
                cluster.Network.Heal();
                break;
            case < 95:
                cluster.TransferLeadership(leader != 0 ? leader : any, any);
                break;
            default:
                cluster.Network.Faults = RandomFaults(plan);
                break;
        }
    }

    private static int[] RandomSide(SimRandom plan, int n)
    {
        var ids = Enumerable.Range(1, n).ToArray();
        plan.Shuffle(ids);
        return ids[..plan.Between(1, n)];
    }

    private static void RecoverAndCheck(SimCluster cluster, ChaosOptions options)
    {
        cluster.Network.Heal();
        cluster.Network.Faults = NetworkFaults.Reliable;
        foreach (var node in cluster.Nodes)
        {
            node.CrashDuringNextPersist = false;
            cluster.Restart(node.Id);
        }

        var electionTicks = cluster.Options.RaftConfig(1).ElectionTimeoutTicks;
        var leaderTicksMax = options.LeaderWithinElectionTimeouts * electionTicks;
        if (!cluster.RunUntil(() => cluster.Leader() != 0, leaderTicksMax))
        {
            throw new SimulationFailureException($"liveness: no leader within {leaderTicksMax} ticks ({options.LeaderWithinElectionTimeouts} election timeouts) after healing");
        }

        cluster.ClientsEnabled = false;
        if (!cluster.RunUntil(() => cluster.History.PendingCount == 0, options.PendingCommitTicksMax))
        {
            throw new SimulationFailureException($"liveness: {cluster.History.PendingCount} client operations still pending {options.PendingCommitTicksMax} ticks after a leader was elected");
        }

        // Let every node catch up, then compare them.
        cluster.RunUntil(() => AllApplied(cluster), options.PendingCommitTicksMax);
        cluster.Checker.CheckLogs();
        cluster.CheckReplicasAgree();
        cluster.CheckLinearizable();
    }

    private static bool AllApplied(SimCluster cluster)
    {
        ulong commit = 0;
        foreach (var node in cluster.Nodes)
        {
            commit = Math.Max(commit, node.Core?.CommitIndex ?? 0);
        }

        foreach (var node in cluster.Nodes)
        {
            if (node.StateMachine?.AppliedIndex != commit)
            {
                return false;
            }
        }

        return true;
    }
}
