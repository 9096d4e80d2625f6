using Microsoft.Extensions.Logging;
using RaftLedger.Node.Host;
using RaftLedger.Node.Tests.Transport;

namespace RaftLedger.Node.Tests.Host;

public sealed class StartupTimelineTests
{
    [Fact]
    public void Each_phase_is_logged_once_with_the_time_since_the_previous_phase()
    {
        var log = new LineLog();
        var time = new SteppedTimestamps();
        var timeline = new StartupTimeline(log, time);

        time.Advance(TimeSpan.FromMilliseconds(250));
        timeline.Mark("WAL recovered", "1 segments");
        time.Advance(TimeSpan.FromMilliseconds(1500));
        timeline.Mark("RocksDB opened");
        timeline.Mark("WAL recovered");

        Assert.Equal(2, log.Lines.Count);
        Assert.Contains("startup: WAL recovered", log.Lines[0], StringComparison.Ordinal);
        Assert.Contains("(+250 ms); 1 segments", log.Lines[0], StringComparison.Ordinal);
        Assert.Contains("startup: RocksDB opened", log.Lines[1], StringComparison.Ordinal);
        Assert.Contains("(+1500 ms)", log.Lines[1], StringComparison.Ordinal);
    }

    private sealed class LineLog : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
