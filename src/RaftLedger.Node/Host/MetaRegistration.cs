using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Host;

/// <summary>
/// When a node registers its own addresses in the meta map: at once when they differ from the map's, and, after a
/// registration of the same addresses succeeded, only every <see cref="NodeHost.MetaRegisterRetryTicks"/> ticks (the
/// node's copy of the map should show them by then; if it does not, the other nodes cannot reach this node).
/// </summary>
internal sealed class MetaRegistration
{
    private ClusterNode? last;
    private long lastRound;

    /// <summary>Whether <paramref name="desired"/> should be proposed in tick <paramref name="round"/>.</summary>
    public bool IsDue(ClusterNode desired, long round) =>
        last != desired || round - lastRound >= NodeHost.MetaRegisterRetryTicks;

    /// <summary>Records a committed registration; true when the same addresses had been registered before.</summary>
    public bool Succeeded(ClusterNode desired, long round)
    {
        var again = last == desired;
        last = desired;
        lastRound = round;
        return again;
    }
}
