using System.Diagnostics;
using System.Globalization;

namespace RaftLedger.Cli.Bench;

/// <summary>One point of the throughput-over-time chart: the window ending at <see cref="Seconds"/>.</summary>
public readonly record struct TimelineSample(double Seconds, double TransfersPerSecond, double P99Milliseconds);

/// <summary>
/// Every <see cref="BenchLimits.SampleInterval"/>: committed transfers per second and the p99
/// per-transfer latency of the window (the difference of two histogram snapshots, so recording
/// never pauses), printed as a live line and kept for the report's chart.
/// </summary>
public sealed class ProgressSampler(BenchRecorder recorder, TextWriter output)
{
    private readonly List<TimelineSample> samples = [];
    private readonly Lock console = new();
    private long[] previousBuckets = new long[LatencyHistogram.BucketCount];
    private long previousCommitted;
    private long previousTimestamp = recorder.StartedTimestamp;
    private int lineWidth;

    public List<TimelineSample> Samples => samples;

    public async Task RunAsync(Func<string> phase, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(BenchLimits.SampleInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var sample = Take();
                Print(sample, phase());
            }
        }
        catch (OperationCanceledException)
        {
            // The run ended.
        }
    }

    /// <summary>Takes the last (partial) window and clears the live line.</summary>
    public void Finish()
    {
        if (Stopwatch.GetElapsedTime(previousTimestamp) > TimeSpan.FromMilliseconds(100))
        {
            Take();
        }

        lock (console)
        {
            ClearLine();
        }
    }

    private TimelineSample Take()
    {
        var now = Stopwatch.GetTimestamp();
        var buckets = recorder.TransferLatency.Snapshot();
        var window = new long[buckets.Length];
        var any = false;
        for (var i = 0; i < buckets.Length; i++)
        {
            window[i] = buckets[i] - previousBuckets[i];
            any |= window[i] > 0;
        }

        var committed = recorder.Committed;
        var seconds = Stopwatch.GetElapsedTime(previousTimestamp, now).TotalSeconds;
        var sample = new TimelineSample(
            recorder.SecondsSinceStart(now),
            (committed - previousCommitted) / seconds,
            any ? LatencyHistogram.Percentile(window, 0.99) / 1000.0 : 0);
        previousBuckets = buckets;
        previousCommitted = committed;
        previousTimestamp = now;
        samples.Add(sample);
        return sample;
    }

    private void Print(TimelineSample sample, string phase)
    {
        var line = string.Create(CultureInfo.InvariantCulture,
            $"  {sample.Seconds,6:0.0} s  {sample.TransfersPerSecond,10:N0} transfers/s  p99 {sample.P99Milliseconds,8:0.00} ms  committed {recorder.Committed,12:N0}  errors {ErrorCount(),8:N0}  {phase}");
        lock (console)
        {
            // A terminal gets one line rewritten in place; a file or pipe gets a line per sample.
            if (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected)
            {
                output.Write('\r' + line.PadRight(lineWidth));
                lineWidth = line.Length;
            }
            else
            {
                output.WriteLine(line);
            }
        }
    }

    private long ErrorCount()
    {
        long sum = 0;
        foreach (var (_, count) in recorder.Errors)
        {
            sum += count;
        }

        return sum;
    }

    /// <summary>Prints a line of its own above the live line.</summary>
    public void Say(string line)
    {
        lock (console)
        {
            ClearLine();
            output.WriteLine(line);
        }
    }

    private void ClearLine()
    {
        if (lineWidth > 0)
        {
            output.Write('\r' + new string(' ', lineWidth) + '\r');
            lineWidth = 0;
        }
    }
}
