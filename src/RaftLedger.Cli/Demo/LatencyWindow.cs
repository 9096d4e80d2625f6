namespace RaftLedger.Cli.Demo;

/// <summary>Request latencies and created transfers of the current progress window, thread-safe.</summary>
public sealed class LatencyWindow
{
    private readonly object gate = new();
    private readonly List<double> windowMilliseconds = [];
    private readonly List<double> allMilliseconds = [];
    private long windowTransfers;

    public void Record(double milliseconds, int createdTransfers)
    {
        lock (gate)
        {
            windowMilliseconds.Add(milliseconds);
            allMilliseconds.Add(milliseconds);
            windowTransfers += createdTransfers;
        }
    }

    /// <summary>Created transfers and the 99th-percentile latency since the last call; starts a new window.</summary>
    public (long Transfers, double P99Milliseconds) TakeWindow()
    {
        lock (gate)
        {
            var p99 = Percentile(windowMilliseconds, 0.99);
            var transfers = windowTransfers;
            windowMilliseconds.Clear();
            windowTransfers = 0;
            return (transfers, p99);
        }
    }

    /// <summary>Percentiles over the whole run.</summary>
    public (double P50, double P99, double Max) Overall()
    {
        lock (gate)
        {
            return (Percentile(allMilliseconds, 0.50), Percentile(allMilliseconds, 0.99), Percentile(allMilliseconds, 1.0));
        }
    }

    public static double Percentile(List<double> samples, double quantile)
    {
        if (samples.Count == 0)
        {
            return 0;
        }

        var sorted = samples.ToArray();
        Array.Sort(sorted);
        var rank = (int)Math.Ceiling(quantile * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }
}
