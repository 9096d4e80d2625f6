namespace RaftLedger.Simulation;

/// <summary>The simulator's limits, in one place (a test checks how they relate).</summary>
public static class SimLimits
{
    /// <summary>Most nodes in one simulated cluster.</summary>
    public const int NodesMax = 9;

    /// <summary>Most operations the linearizability checker accepts for one key.</summary>
    public const int OperationsPerKeyMax = 4_096;

    /// <summary>Search steps after which the linearizability checker gives up (answers "unknown").</summary>
    public const long CheckerStepsMax = 20_000_000;
}
