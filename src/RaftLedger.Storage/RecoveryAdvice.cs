namespace RaftLedger.Storage;

/// <summary>What the errors about an unusable data folder tell the operator to do, in one place.</summary>
public static class RecoveryAdvice
{
    /// <summary>
    /// Wiping is the only recovery until membership changes exist, and it is not free: a node that comes back empty
    /// forgot its log and its votes (docs/RELIABILITY.md, "A wiped replica rejoining").
    /// </summary>
    public const string WipeAndRejoin =
        "Recover by wiping this node's data folder and restarting it: it catches up from the other replicas. " +
        "Do that only while every other replica is up and caught up (docs/RELIABILITY.md, \"A wiped replica rejoining\").";
}
