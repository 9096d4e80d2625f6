namespace RaftLedger.Cli.Demo;

/// <summary>Knobs of <c>raftledger demo</c>; the defaults run in about half a minute on a laptop.</summary>
public sealed record DemoOptions
{
    public int NodeCount { get; init; } = 3;

    public int ShardCount { get; init; } = 8;

    /// <summary>Customer accounts per shard (each shard also has one bank account that funds them).</summary>
    public int CustomersPerShard { get; init; } = 16;

    /// <summary>Money each customer starts with.</summary>
    public ulong OpeningBalance { get; init; } = 1_000_000;

    /// <summary>Concurrent clients of the payment workload.</summary>
    public int Workers { get; init; } = 8;

    /// <summary>Transfers per request.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Share of payments (0–100 %) whose credit account is on another shard than the debit account.</summary>
    public int CrossShardPercent { get; init; }

    /// <summary>Payments before the first leader is killed.</summary>
    public TimeSpan WarmUp { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>Payments while the killed node is down (after writes resumed).</summary>
    public TimeSpan Degraded { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Payments after the killed node is back.</summary>
    public TimeSpan Recovered { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Leader kills (each followed by a restart); more than one measures failover as a benchmark.</summary>
    public int Kills { get; init; } = 1;

    /// <summary>Seed of the account ids and the payment choices.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Keep the temporary data folder (for inspecting logs) instead of deleting it.</summary>
    public bool KeepData { get; init; }

    /// <summary>Time allowed for the cluster (or a restarted node) to become ready.</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Time allowed for writes to resume after a kill before the demo gives up on that kill.</summary>
    public TimeSpan FailoverTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time allowed for every replica to reach the same applied index at the end.</summary>
    public TimeSpan ConvergeTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
