using RaftLedger.Cli.Bench;

namespace RaftLedger.Node.Tests.Bench;

/// <summary>The schedule behind <c>raftledger bench --rate</c>, on logical ticks.</summary>
public sealed class PacerTests
{
    [Fact]
    public void Unpaced_callers_never_wait()
    {
        var pacer = Pacer.ForRate(0, paymentsPerRequest: 1, caller: 0, callers: 4, ticksPerSecond: 1_000);
        Assert.Equal(0, pacer.WaitTicks(5));
        Assert.Equal(0, pacer.WaitTicks(5));
    }

    [Fact]
    public void Callers_share_the_rate_and_start_spread_over_one_interval()
    {
        // 4 callers of 10-payment requests at 400 payments/s: each starts a request every 100 ms.
        var first = Pacer.ForRate(400, paymentsPerRequest: 10, caller: 0, callers: 4, ticksPerSecond: 1_000);
        var third = Pacer.ForRate(400, paymentsPerRequest: 10, caller: 2, callers: 4, ticksPerSecond: 1_000);
        Assert.Equal(0, first.WaitTicks(1_000));
        Assert.Equal(50, third.WaitTicks(1_000));

        // A request that took 30 ms: the next start is 70 ms later, on the schedule.
        Assert.Equal(70, first.WaitTicks(1_030));
        Assert.Equal(100, first.WaitTicks(1_100));
    }

    [Fact]
    public void A_late_caller_starts_at_once_and_does_not_burst_to_catch_up()
    {
        var pacer = new Pacer(intervalTicks: 100, caller: 0, callers: 1);
        Assert.Equal(0, pacer.WaitTicks(0));

        // Its request took three intervals: it starts the next at once, then keeps the interval from there.
        Assert.Equal(0, pacer.WaitTicks(350));
        Assert.Equal(100, pacer.WaitTicks(350));
    }
}
