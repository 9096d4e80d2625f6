namespace RaftLedger.Cli.Verify;

/// <summary>Knobs of <c>raftledger verify</c>; every choice of the run derives from <see cref="Seed"/>.</summary>
public sealed record VerifyOptions
{
    public int NodeCount { get; init; } = 3;

    public int ShardCount { get; init; } = 8;

    /// <summary>Guarded (customer) accounts, spread evenly over the shards; each shard also has an operator account.</summary>
    public int AccountCount { get; init; } = 16;

    /// <summary>Concurrent clients.</summary>
    public int Clients { get; init; } = 8;

    /// <summary>Money each customer starts with, from its shard's operator account.</summary>
    public ulong OpeningBalance { get; init; } = 100;

    /// <summary>Workload time with faults (the final heal and recovery come after it).</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(60);

    public int Seed { get; init; } = 1;

    /// <summary>Pay between accounts of different shards too (atomic cross-shard transfers).</summary>
    public bool CrossShard { get; init; }

    /// <summary>The fault kinds the nemesis may use.</summary>
    public IReadOnlySet<FaultKind> Faults { get; init; } = FaultSchedule.AllKinds;

    /// <summary>Workload after the final heal at least, so the history shows the cluster recovered.</summary>
    public TimeSpan RecoveryTail { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest wait after the final heal for every shard to acknowledge a write (then the liveness check fails).</summary>
    public TimeSpan RecoveryTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Longest wait, once the clients stopped, for every replica to report no unfinished cross-shard work (transfers
    /// whose clients gave up are finished by the coordinator timeout, 2.5 s, and the abandonment timeout, 5 s). Work
    /// left after it is a stuck transaction: the check fails.
    /// </summary>
    public TimeSpan CrossShardSettleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Longest wait, once cross-shard work finished, for every timed pending transfer never posted or voided to be
    /// released (timeouts are at most 3 s; a cross-shard one is expired by its home's leader, which scans every half
    /// abandonment timeout, 2.5 s). A reservation left after it fails the check that names it.
    /// </summary>
    public TimeSpan ExpirySettleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Where the history goes (JSON lines); null = a file named after the seed in the current folder.</summary>
    public string? HistoryPath { get; init; }

    /// <summary>Keep the data folder and node logs (they are kept anyway when a violation is found).</summary>
    public bool KeepData { get; init; }

    /// <summary>Test only: a deliberately broken node (see RaftLedger.Node UnsafeTestFaults), to show the checker can fail.</summary>
    public string? UnsafeTestFault { get; init; }

    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(120);

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(8);

    public TimeSpan ConvergeTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public string ResolvedHistoryPath => HistoryPath ?? Path.GetFullPath($"verify-seed{Seed}.history.jsonl");

    /// <summary>The command that reruns this schedule.</summary>
    public string RerunCommand()
    {
        var command = $"raftledger verify --nodes {NodeCount} --shards {ShardCount} --accounts {AccountCount} --clients {Clients} --duration {Duration.TotalSeconds:0} --seed {Seed}";
        if (CrossShard)
        {
            command += " --cross-shard";
        }

        if (!Faults.SetEquals(FaultSchedule.AllKinds))
        {
            command += " --faults " + (Faults.Count == 0 ? "none" : string.Join(',', Faults.Order().Select(FaultSchedule.Name)));
        }

        return UnsafeTestFault is null ? command : command + $" --unsafe-test-faults {UnsafeTestFault}";
    }
}

/// <summary>The run cannot go on (the message says why).</summary>
public sealed class VerifyException(string message) : Exception(message);
