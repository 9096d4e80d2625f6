namespace RaftLedger.Cli.Bench;

/// <summary>
/// Spaces one caller's requests for <c>--rate</c>: their starts are an interval apart, the first offset by the caller's
/// share of an interval so that callers do not start together. A caller that fell behind (its request took longer than
/// the interval) starts the next one at once and the schedule goes on from there, without a burst to catch up. Pure: the
/// caller passes the time, in <see cref="System.Diagnostics.Stopwatch"/> ticks.
/// </summary>
public sealed class Pacer
{
    private readonly long intervalTicks;
    private readonly long offsetTicks;
    private long nextStartTicks = -1;

    public Pacer(long intervalTicks, int caller, int callers)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(intervalTicks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(callers);
        this.intervalTicks = intervalTicks;
        offsetTicks = intervalTicks / callers * (caller % callers);
    }

    /// <summary>
    /// For <paramref name="callers"/> callers sending <paramref name="paymentsPerRequest"/> payments a request, together
    /// <paramref name="paymentsPerSecond"/> (0: unpaced).
    /// </summary>
    public static Pacer ForRate(double paymentsPerSecond, int paymentsPerRequest, int caller, int callers, long ticksPerSecond)
    {
        var interval = paymentsPerSecond <= 0 ? 0 : (long)Math.Round((double)callers * paymentsPerRequest / paymentsPerSecond * ticksPerSecond);
        return new Pacer(interval, caller, callers);
    }

    /// <summary>Ticks to wait at <paramref name="nowTicks"/> before the next request starts: zero when unpaced or late.</summary>
    public long WaitTicks(long nowTicks)
    {
        if (intervalTicks == 0)
        {
            return 0;
        }

        nextStartTicks = nextStartTicks < 0 ? nowTicks + offsetTicks : Math.Max(nextStartTicks, nowTicks);
        var wait = nextStartTicks - nowTicks;
        nextStartTicks += intervalTicks;
        return wait;
    }
}
