using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace RaftLedger.Node.Tests.Transport;

/// <summary>Keeps every log line (level and formatted message) of the components given it, as a logger or a logger factory.</summary>
internal sealed class CapturedLog : ILogger, ILoggerFactory
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();

    /// <summary>The messages logged at <paramref name="level"/> that contain <paramref name="text"/>.</summary>
    public List<string> At(LogLevel level, string text) =>
        [.. Lines.Where(l => l.Level == level && l.Message.Contains(text, StringComparison.Ordinal)).Select(l => l.Message)];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Lines.Enqueue((logLevel, formatter(state, exception)));

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }
}
