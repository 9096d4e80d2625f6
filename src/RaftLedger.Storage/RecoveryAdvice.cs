namespace RaftLedger.Storage;

/// <summary>What the errors about an unusable data folder tell the operator to do, in one place.</summary>
public static class RecoveryAdvice
{
    /// <summary>
    /// Wiping is the only recovery until membership changes exist, and it is not free: a node that comes back empty
    /// forgot its log and its votes, so it must rejoin without voting (<c>--rejoin</c>, <c>RaftConfig.Rejoining</c>;
    /// docs/RELIABILITY.md, "A wiped replica rejoining").
    /// </summary>
    public const string WipeAndRejoin =
        "Recover by wiping this node's data folder and restarting it with --rejoin: it catches up from the other replicas " +
        "and votes again once it has. Do that only while every other replica is up and caught up " +
        "(docs/RELIABILITY.md, \"A wiped replica rejoining\").";
}
