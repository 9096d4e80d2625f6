using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace RaftLedger.Node.Host;

/// <summary>
/// Logs each phase of a node's start as one Information line with the time since the process started and since the
/// previous phase, so that a slow restart shows where its seconds went (runtime start, WAL recovery, RocksDB open,
/// re-applying the log, hearing from the leaders, catching up). Each phase is logged at most once; thread-safe.
/// </summary>
public sealed class StartupTimeline
{
    private readonly ILogger logger;
    private readonly TimeProvider time;
    private readonly long created; // Timestamp (of `time`) when this timeline was created.
    private readonly TimeSpan processAgeAtCreation; // How long the process had run when this timeline was created.
    private readonly HashSet<string> logged = [];
    private readonly Lock gate = new();
    private long previous;

    public StartupTimeline(ILogger logger, TimeProvider time)
    {
        this.logger = logger;
        this.time = time;
        created = time.GetTimestamp();
        previous = created;
        processAgeAtCreation = ProcessAge();
    }

    /// <summary>A timeline that logs nothing (hosts started without a logger, tests).</summary>
    public static StartupTimeline None { get; } = new(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, TimeProvider.System);

    /// <summary>Time since the process started (as the OS recorded it).</summary>
    public TimeSpan SinceProcessStart => processAgeAtCreation + time.GetElapsedTime(created);

    /// <summary>Logs <paramref name="phase"/> done now, unless it was logged before.</summary>
    public void Mark(string phase, string detail = "")
    {
        long sincePrevious;
        lock (gate)
        {
            if (!logged.Add(phase))
            {
                return;
            }

            var now = time.GetTimestamp();
            sincePrevious = now - previous;
            previous = now;
        }

        if (logger.IsEnabled(LogLevel.Information))
        {
            logger.LogInformation("startup: {Phase} at {SinceStart:0} ms after process start (+{Step:0} ms){Detail}",
                phase, SinceProcessStart.TotalMilliseconds, sincePrevious * 1000.0 / time.TimestampFrequency,
                detail.Length > 0 ? "; " + detail : "");
        }
    }

    private static TimeSpan ProcessAge()
    {
        try
        {
            using var process = Process.GetCurrentProcess();
            var age = DateTime.Now - process.StartTime;
            return age > TimeSpan.Zero ? age : TimeSpan.Zero;
        }
        catch (InvalidOperationException)
        {
            return TimeSpan.Zero;
        }
    }
}
