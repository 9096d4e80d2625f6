namespace RaftLedger.Node.Tests.Transport;

/// <summary>
/// A clock whose timestamps move only when a test steps them; timers and Task.Delay still run on real time (the base
/// TimeProvider's), so code that measures elapsed time with timestamps sees exactly the time the test says.
/// </summary>
internal sealed class SteppedTimestamps : TimeProvider
{
    private long ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref ticks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref ticks, by.Ticks);
}
