using RaftLedger.Common;
using RaftLedger.Ledger;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>What one multi-shard chaos seed runs: everything else is drawn from the seed.</summary>
public sealed record MultiShardChaosOptions
{
    /// <summary>The default length of the fault phase, tuned so CI runs 500+ seeds in well under a minute of test time.</summary>
    public const int ChaosTicksDefault = 400;

    /// <summary>Simulated nodes, 3..5; 0 lets the seed choose.</summary>
    public int Nodes { get; init; }

    /// <summary>Shards, 2..8; 0 lets the seed choose.</summary>
    public int Shards { get; init; }

    /// <summary>Ticks of faults before the network heals and every node restarts.</summary>
    public int ChaosTicks { get; init; } = ChaosTicksDefault;

    /// <summary>Share of client requests that cross shards; a negative value lets the seed choose.</summary>
    public double CrossShardFraction { get; init; } = -1;

    /// <summary>
    /// Customers start with <see cref="RichBalance"/> instead of 1,000, so no transfer is refused for lack of funds:
    /// every cross-shard transaction then commits unless a fault aborts it.
    /// </summary>
    public bool RichCustomers { get; init; }

    /// <summary>A customer's starting balance with <see cref="RichCustomers"/>.</summary>
    public const ulong RichBalance = 1_000_000_000;

    /// <summary>
    /// When not 0: a tenth of the plain cross-shard requests are one linked chain of 65..this many transfers (at most
    /// <see cref="LedgerLimits.BatchEventsMax"/>; <see cref="BankWorkload.LongChainRequest"/>). 0: none, as before.
    /// </summary>
    public int LongChainEventsMax { get; init; }

    /// <summary>Share of plain cross-shard requests that are long chains when <see cref="LongChainEventsMax"/> is set.</summary>
    public const double LongChainShare = 0.1;

    /// <summary>Every shard must have a leader within this many election timeouts after healing.</summary>
    public int LeaderWithinElectionTimeouts { get; init; } = 10;

    /// <summary>Ticks after all shards have leaders by which every client request must be answered.</summary>
    public int PendingAnsweredTicksMax { get; init; } = 1_500;

    /// <summary>Receives the run's trace when set (replaying one seed).</summary>
    public Action<string>? Trace { get; init; }

    /// <summary>Called with the cluster at the end of the run, passed or failed (replay tooling and tests that inspect a run).</summary>
    public Action<MultiShardCluster>? Inspect { get; init; }
}

/// <summary>The outcome of one multi-shard seed.</summary>
public sealed record MultiShardRunResult(
    ulong Seed,
    int Nodes,
    int Shards,
    MultiShardChaosOptions Options,
    string? Failure,
    long Ticks,
    int Transfers,
    int Acknowledged,
    long Crashes,
    long MessagesSent,
    long SnapshotsInstalled,
    IReadOnlyDictionary<(LedgerOperation Operation, TrapMoment Moment), int> TrapsFired)
{
    public bool Passed => Failure is null;

    /// <summary>Acknowledged balancing or closing transfers (all across shards).</summary>
    public int BalancingOrClosingAcknowledged { get; init; }

    /// <summary>Fast-path chains a leader handed to its driver after the ledger refused them (the post/void race).</summary>
    public long ReroutedChains { get; init; }

    /// <summary>The one command that replays this run.</summary>
    public string ReplayCommand =>
        $"dotnet run --project src/RaftLedger.Cli -c Release -- sim --multishard --seed {Seed}" +
        (Options.Nodes == 0 ? "" : $" --nodes {Options.Nodes}") +
        (Options.Shards == 0 ? "" : $" --shards {Options.Shards}") +
        (Options.ChaosTicks == MultiShardChaosOptions.ChaosTicksDefault ? "" : $" --ticks {Options.ChaosTicks}") +
        (Options.RichCustomers ? " --rich-customers" : "") +
        (Options.LongChainEventsMax == 0 ? "" : $" --long-chains {Options.LongChainEventsMax}") +
        (Options.CrossShardFraction < 0 ? "" : $" --cross-shard {Options.CrossShardFraction.ToString(System.Globalization.CultureInfo.InvariantCulture)}");

    public override string ToString() => Passed
        ? $"multishard seed {Seed} ({Nodes} nodes, {Shards} shards): ok, {Ticks} ticks, {Transfers} transfers ({Acknowledged} acknowledged), {Crashes} crashes, {SnapshotsInstalled} snapshots installed, {MessagesSent} messages, traps fired {TrapsFired.Count}"
        : $"multishard seed {Seed} ({Nodes} nodes, {Shards} shards) FAILED after {Ticks} ticks: {Failure}\n  replay: {ReplayCommand}";
}

/// <summary>
/// One randomized multi-shard chaos run: the bank is set up, then clients move money while the seed injects
/// crashes (any node, a shard leader's node, mid-persist, and traps that crash a leader right after it proposed
/// or applied a protocol step), restarts, partitions, one-way blocks, leader isolation, leadership transfers and
/// message loss, duplication and reordering. Then the network heals, every node restarts, every shard must elect
/// a leader and answer every request, replicas catch up, and every Raft and ledger check runs.
/// </summary>
public static class MultiShardChaos
{
    public static MultiShardRunResult Execute(ulong seed, MultiShardChaosOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var plan = new SimRandom(seed ^ 0x5EED_5A4D_0000_0002UL);
        var nodes = options.Nodes != 0 ? options.Nodes : plan.Between(MultiShardLimits.NodesMin, MultiShardLimits.NodesMax + 1);
        var shards = options.Shards != 0 ? options.Shards : plan.Pick([2, 2, 3, 3, 4, 5, 8]);
        MultiShardCluster? cluster = null;
        string? failure = null;
        try
        {
            cluster = new MultiShardCluster(ClusterOptions(seed, nodes, shards, plan, options)) { Trace = options.Trace };
            cluster.SetUp(ticksMax: 2_000);

            // Every fourth seed: some chains post or void the pending transfer they create (chosen by the seed, as above).
            cluster.Workload.SameChainShare = seed % 4 == 2 ? 0.15 : 0;
            if (options.LongChainEventsMax != 0)
            {
                cluster.Workload.LongChainShare = MultiShardChaosOptions.LongChainShare;
                cluster.Workload.LongChainEventsMax = options.LongChainEventsMax;
            }

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

        if (cluster is not null)
        {
            options.Inspect?.Invoke(cluster);
        }

        var acknowledged = 0;
        var balancingOrClosing = 0;
        const TransferFlags kinds = TransferFlags.BalancingDebit | TransferFlags.BalancingCredit | TransferFlags.ClosingDebit | TransferFlags.ClosingCredit;
        foreach (var fate in cluster?.Workload.Fates ?? [])
        {
            acknowledged += fate.Outcome == TransferOutcome.Created ? 1 : 0;
            balancingOrClosing += fate.Outcome == TransferOutcome.Created && (fate.Submitted.Flags & kinds) != 0 ? 1 : 0;
        }

        return new MultiShardRunResult(
            seed, nodes, shards, options, failure, cluster?.NowTicks ?? 0, cluster?.Workload.Fates.Count ?? 0, acknowledged,
            cluster?.CrashCount ?? 0, cluster?.Network.SentCount ?? 0, cluster?.SnapshotsInstalled ?? 0,
            cluster?.TrapsFired ?? new Dictionary<(LedgerOperation, TrapMoment), int>())
        {
            BalancingOrClosingAcknowledged = balancingOrClosing,
            ReroutedChains = cluster?.ReroutedChains ?? 0,
        };
    }

    /// <summary>The ledger operations a crash trap may target: create_transfers and every cross-shard protocol step.</summary>
    public static IReadOnlyList<LedgerOperation> TrappableOperations { get; } = TrappableOperationsOf();

    private static LedgerOperation[] TrappableOperationsOf()
    {
        var operations = new List<LedgerOperation>();
        foreach (var operation in Enum.GetValues<LedgerOperation>())
        {
            if (operation != LedgerOperation.CreateAccounts)
            {
                operations.Add(operation);
            }
        }

        return [.. operations];
    }

    private static MultiShardOptions ClusterOptions(ulong seed, int nodes, int shards, SimRandom plan, MultiShardChaosOptions options) => new()
    {
        Seed = seed,
        NodeCount = nodes,
        ShardCount = shards,
        ClientCount = plan.Between(2, 6),
        CustomersPerShard = plan.Between(2, 5),
        InitialBalance = options.RichCustomers ? MultiShardChaosOptions.RichBalance : 1_000,
        CrossShardFraction = options.CrossShardFraction >= 0 ? options.CrossShardFraction : plan.Pick([0.0, 0.3, 0.6, 1.0]),

        // Every other seed: some two-phase requests (chosen by the seed, not the plan, so that the plan's draws stay as they were).
        TwoPhaseFraction = seed % 2 == 0 ? 0.3 : 0,
        SnapshotEveryEntries = plan.Pick([0, 0, 15, 40]),
        TornWriteProbability = plan.NextDouble() * 0.5,
        SendBeforePersistWhenAllowed = plan.Chance(0.5),
    };

    private static void RunChaos(MultiShardCluster cluster, SimRandom plan, int chaosTicks)
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

    private static void InjectFault(MultiShardCluster cluster, SimRandom plan)
    {
        var n = cluster.Nodes.Count;
        var any = plan.Between(1, n + 1);
        var leaderNode = cluster.Leader(plan.Next(cluster.Options.ShardCount))?.NodeId ?? any;
        switch (plan.Next(100))
        {
            case < 10:
                cluster.Crash(any);
                break;
            case < 18:
                cluster.Crash(leaderNode);
                break;
            case < 24:
                cluster.Node(plan.Chance(0.5) ? leaderNode : any).CrashDuringNextPersist = true;
                break;
            case < 40:
                cluster.Trap ??= new CrashTrap(plan.Pick(TrappableOperations), plan.Chance(0.5) ? TrapMoment.Proposed : TrapMoment.Applied);
                break;
            case < 60:
                cluster.Restart(any);
                break;
            case < 68:
                cluster.Network.Partition(RandomSide(plan, n));
                break;
            case < 72:
                cluster.Network.BlockOneWay(any, (any % n) + 1);
                break;
            case < 78:
                cluster.Network.Isolate(leaderNode);
                break;
            case < 88:
                cluster.Network.Heal();
                break;
            case < 94:
                TransferSomeLeadership(cluster, plan);
                break;
            default:
                cluster.Network.Faults = RandomFaults(plan);
                break;
        }
    }

    private static void TransferSomeLeadership(MultiShardCluster cluster, SimRandom plan)
    {
        var shard = plan.Next(cluster.Options.ShardCount);
        if (cluster.Leader(shard) is { Core: { } core })
        {
            core.TransferLeadership((ulong)plan.Pick(cluster.ReplicasOf(shard)).NodeId);
        }
    }

    private static int[] RandomSide(SimRandom plan, int n)
    {
        var ids = new int[n];
        for (var i = 0; i < n; i++)
        {
            ids[i] = i + 1;
        }

        plan.Shuffle(ids);
        return ids[..plan.Between(1, n)];
    }

    private static void RecoverAndCheck(MultiShardCluster cluster, MultiShardChaosOptions options)
    {
        cluster.Trap = null;
        cluster.Network.Heal();
        cluster.Network.Faults = NetworkFaults.Reliable;
        foreach (var node in cluster.Nodes)
        {
            node.CrashDuringNextPersist = false;
            cluster.Restart(node.Id);
        }

        var electionTicks = cluster.Options.RaftConfig(1).ElectionTimeoutTicks;
        var leaderTicksMax = options.LeaderWithinElectionTimeouts * electionTicks;
        Require(cluster.RunUntil(cluster.AllShardsLed, leaderTicksMax),
            $"liveness: not every shard has a leader within {leaderTicksMax} ticks ({options.LeaderWithinElectionTimeouts} election timeouts) after healing");

        cluster.ClientsEnabled = false;
        Require(cluster.RunUntil(() => cluster.Clients.All(c => c.IsIdle), options.PendingAnsweredTicksMax),
            $"liveness: {cluster.Clients.Count(c => !c.IsIdle)} client requests still unanswered {options.PendingAnsweredTicksMax} ticks after healing");
        Require(cluster.RunUntil(cluster.CrossShardQuiet, options.PendingAnsweredTicksMax),
            $"liveness: cross-shard work still unfinished {options.PendingAnsweredTicksMax} ticks after every request was answered");
        if (cluster.Options.TwoPhaseFraction > 0)
        {
            // Every pending transfer's timeout passes: each must expire (CrossShardQuiet waits for the due ones).
            cluster.RunTicks((int)((ulong)BankWorkload.PendingTimeoutSecondsMax * LedgerLimits.NanosecondsPerSecond / MultiShardLimits.TickNs) + 1);
            Require(cluster.RunUntil(cluster.CrossShardQuiet, options.PendingAnsweredTicksMax),
                $"liveness: pending transfers still unexpired {options.PendingAnsweredTicksMax} ticks after their timeouts passed");
        }

        Require(cluster.RunUntil(cluster.AllApplied, options.PendingAnsweredTicksMax), "replicas did not catch up after healing");
        Require(cluster.RunUntil(() => cluster.ReadsOutstanding == 0, options.PendingAnsweredTicksMax), "account reads were not served after healing");
        cluster.CheckLogs();
        cluster.CheckReplicasAgree();
        cluster.CheckLegRecordsDerived();
        BankChecker.CheckQuiet(cluster);
        Invariant.Check(cluster.Workload.Fates.Count > 0, "a run moves money");
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new SimulationFailureException(message);
        }
    }
}
