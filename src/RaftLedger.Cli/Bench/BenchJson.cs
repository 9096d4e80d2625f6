using System.Text.Json;

namespace RaftLedger.Cli.Bench;

/// <summary>
/// The report as JSON: top-level <c>transfers_per_second</c>, <c>latency_ms</c> (per transfer:
/// p50/p90/p99/p999/max), <c>request_latency_ms</c>, <c>errors</c> and <c>retries</c> by kind,
/// <c>failover</c>, <c>gaps</c> (every stretch of 0.2 s or more without a commit on one shard) and
/// <c>longest_shard_gap</c>, the run's <c>options</c>, the machine, the timeline and the histogram.
/// </summary>
public static class BenchJson
{
    public static byte[] Write(BenchReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("transfers_per_second", Math.Round(report.TransfersPerSecond, 1));
            WriteLatency(json, "latency_ms", report.Latency);
            if (report.RequestLatency.Count > 0)
            {
                WriteLatency(json, "request_latency_ms", report.RequestLatency);
            }
            else
            {
                json.WriteNull("request_latency_ms");
            }

            WriteCounts(json, "errors", report.Errors);
            WriteCounts(json, "retries", report.Retries);
            WriteTotals(json, report);
            WriteFailover(json, report);
            WriteOptions(json, report.Options);
            WriteEnvironment(json, report);
            WriteSeries(json, report);
            json.WriteEndObject();
        }

        return stream.ToArray();
    }

    private static void WriteLatency(Utf8JsonWriter json, string name, LatencySummary latency)
    {
        json.WriteStartObject(name);
        json.WriteNumber("count", latency.Count);
        json.WriteNumber("p50", latency.P50);
        json.WriteNumber("p90", latency.P90);
        json.WriteNumber("p99", latency.P99);
        json.WriteNumber("p999", latency.P999);
        json.WriteNumber("max", latency.Max);
        json.WriteEndObject();
    }

    private static void WriteCounts(Utf8JsonWriter json, string name, IReadOnlyDictionary<string, long> counts)
    {
        json.WriteStartObject(name);
        foreach (var (kind, count) in counts.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            json.WriteNumber(kind, count);
        }

        json.WriteEndObject();
    }

    private static void WriteTotals(Utf8JsonWriter json, BenchReport report)
    {
        json.WriteNumber("seconds", Math.Round(report.Seconds, 3));
        json.WriteNumber("committed", report.Committed);
        json.WriteNumber("warmup_committed", report.WarmupCommitted);
        json.WriteNumber("payments", report.Payments);
        json.WriteNumber("transfers_sent", report.Events);
        json.WriteNumber("requests", report.Requests);
        json.WriteNumber("cross_shard_payments", report.CrossShardPayments);
        json.WriteNumber("two_phase_payments", report.PendingPayments);
        json.WriteNumber("posts", report.Posts);
        json.WriteNumber("voids", report.Voids);
    }

    private static void WriteFailover(Utf8JsonWriter json, BenchReport report)
    {
        json.WriteStartObject("failover");
        json.WriteStartArray("kills");
        foreach (var kill in report.Failovers)
        {
            json.WriteStartObject();
            json.WriteNumber("at_seconds", Math.Round(kill.AtSeconds, 3));
            json.WriteNumber("node", kill.Node);
            json.WriteStartArray("shards");
            foreach (var shard in kill.Shards)
            {
                json.WriteNumberValue(shard);
            }

            json.WriteEndArray();
            json.WriteNumber("gap_seconds", Math.Round(kill.GapSeconds, 3));
            json.WriteString("at_utc", kill.AtUtc.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteStartArray("shard_gaps");
            foreach (var gap in kill.ShardGaps)
            {
                WriteGap(json, gap);
            }

            json.WriteEndArray();
            if (kill.RestartedReadySeconds is { } ready)
            {
                json.WriteNumber("restarted_ready_seconds", Math.Round(ready, 3));
            }

            if (kill.RestartedCaughtUpSeconds is { } caughtUp)
            {
                json.WriteNumber("restarted_caught_up_seconds", Math.Round(caughtUp, 3));
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
        if (report.MaxFailoverGapSeconds is { } max)
        {
            json.WriteNumber("max_gap_seconds", Math.Round(max, 3));
        }
        else
        {
            json.WriteNull("max_gap_seconds");
        }

        json.WriteNumber("longest_gap_any_shard_seconds", Math.Round(report.LongestGapAnyShardSeconds, 3));
        json.WriteEndObject();
        WriteGaps(json, report);
    }

    /// <summary>Every listed commit gap of one shard (kills or not), and the longest.</summary>
    private static void WriteGaps(Utf8JsonWriter json, BenchReport report)
    {
        json.WriteStartArray("gaps");
        foreach (var gap in report.Gaps)
        {
            WriteGap(json, gap);
        }

        json.WriteEndArray();
        if (report.LongestShardGap is { } longest)
        {
            json.WritePropertyName("longest_shard_gap");
            WriteGap(json, longest);
        }
        else
        {
            json.WriteNull("longest_shard_gap");
        }
    }

    private static void WriteGap(Utf8JsonWriter json, CommitGap gap)
    {
        json.WriteStartObject();
        json.WriteNumber("shard", gap.Shard);
        json.WriteNumber("from_seconds", Math.Round(gap.StartSeconds, 3));
        json.WriteNumber("to_seconds", Math.Round(gap.EndSeconds, 3));
        json.WriteNumber("seconds", Math.Round(gap.Seconds, 3));
        json.WriteEndObject();
    }

    private static void WriteOptions(Utf8JsonWriter json, BenchOptions options)
    {
        json.WriteStartObject("options");
        json.WriteStartArray("api");
        foreach (var node in options.Api)
        {
            json.WriteStringValue(node.Id == 0 ? node.GrpcUrl.ToString() : $"{node.Id}={node.GrpcUrl}");
        }

        json.WriteEndArray();
        json.WriteNumber("accounts", options.Accounts);
        WriteOptional(json, "transfers", options.Transfers);
        WriteOptional(json, "duration_seconds", options.Transfers is null ? options.Duration.TotalSeconds : null);
        json.WriteNumber("warmup_seconds", options.Warmup.TotalSeconds);
        json.WriteNumber("batch", options.Batch);
        json.WriteNumber("concurrency", options.Concurrency);
        json.WriteNumber("clients", options.Clients);
        json.WriteNumber("zipf", options.Zipf);
        json.WriteNumber("rate", options.Rate);
        json.WriteNumber("cross_shard", options.CrossShard);
        json.WriteNumber("two_phase", options.TwoPhase);
        WriteOptional(json, "kill_leader_every_seconds", options.KillLeaderEvery?.TotalSeconds);
        if (options.KillLeaderEvery is not null)
        {
            json.WriteString("kill_after", options.KillAfter == KillAfter.Ready ? "ready" : "caught-up");
        }

        json.WriteNumber("seed", options.Seed);
        json.WriteEndObject();
    }

    private static void WriteOptional(Utf8JsonWriter json, string name, double? value)
    {
        if (value is { } number)
        {
            json.WriteNumber(name, number);
        }
        else
        {
            json.WriteNull(name);
        }
    }

    private static void WriteEnvironment(Utf8JsonWriter json, BenchReport report)
    {
        json.WriteStartObject("cluster");
        json.WriteString("kind", report.Cluster);
        json.WriteNumber("nodes", report.Nodes);
        json.WriteNumber("shards", report.Shards);
        json.WriteString("mode", report.Mode);
        json.WriteEndObject();
        json.WriteStartObject("machine");
        json.WriteNumber("processors", report.ProcessorCount);
        json.WriteStartObject("cpu_seconds");
        json.WriteNumber("nodes", Math.Round(report.Cpu.NodesSeconds, 2));
        json.WriteNumber("bench", Math.Round(report.Cpu.BenchSeconds, 2));
        json.WriteNumber("other_programs", Math.Round(report.Cpu.OthersSeconds, 2));
        json.WriteNumber("machine_busy", Math.Round(report.Cpu.MachineBusySeconds, 2));
        json.WriteNumber("machine_total", Math.Round(report.Cpu.MachineSeconds, 2));
        json.WriteEndObject();
        json.WriteString("load_average_before", report.LoadAverageBefore);
        json.WriteString("load_average_after", report.LoadAverageAfter);
        json.WriteString("started_utc", report.StartedUtc.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        json.WriteEndObject();
    }

    private static void WriteSeries(Utf8JsonWriter json, BenchReport report)
    {
        json.WriteStartArray("timeline");
        foreach (var sample in report.Timeline)
        {
            json.WriteStartObject();
            json.WriteNumber("seconds", Math.Round(sample.Seconds, 3));
            json.WriteNumber("transfers_per_second", Math.Round(sample.TransfersPerSecond, 1));
            json.WriteNumber("p99_ms", sample.P99Milliseconds);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("latency_histogram_ms");
        foreach (var bucket in report.Histogram)
        {
            json.WriteStartObject();
            json.WriteNumber("low", bucket.LowMilliseconds);
            json.WriteNumber("high", bucket.HighMilliseconds);
            json.WriteNumber("count", bucket.Count);
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }
}
