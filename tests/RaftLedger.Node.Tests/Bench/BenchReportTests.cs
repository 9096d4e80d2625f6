using System.Text.Json;
using System.Text.RegularExpressions;
using RaftLedger.Cli;
using RaftLedger.Cli.Bench;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Bench;

public sealed class BenchReportTests
{
    private static BenchReport Report()
    {
        var latency = new LatencyHistogram();
        latency.Record(800, 90);
        latency.Record(2_500, 9);
        latency.Record(40_000, 1);
        return new BenchReport
        {
            Options = new BenchOptions { Accounts = 1_000, Batch = 100, Concurrency = 4, CrossShard = 0.2, Rate = 250, Seed = 5, KillLeaderEvery = TimeSpan.FromSeconds(10) },
            Cluster = "local",
            Nodes = 3,
            Shards = 8,
            Mode = "concurrency",
            StartedUtc = new DateTime(2026, 11, 26, 8, 0, 0, DateTimeKind.Utc),
            Seconds = 2,
            Payments = 120,
            Events = 120,
            Committed = 100,
            Requests = 2,
            CrossShardPayments = 20,
            PendingPayments = 0,
            Posts = 0,
            Voids = 0,
            Latency = LatencySummary.From(latency),
            RequestLatency = LatencySummary.From(latency),
            Failovers =
            [
                new FailoverEvent(1.0, 2, [0, 3])
                {
                    GapSeconds = 1.25,
                    RestartedReadySeconds = 4,
                    RestartedCaughtUpSeconds = 5.5,
                    ShardGaps = [new CommitGap(0, 0.5, 1.75), new CommitGap(3, 0.9, 1.3)],
                },
            ],
            LongestGapAnyShardSeconds = 0.5,
            Gaps = [new CommitGap(0, 0.5, 1.75), new CommitGap(3, 0.9, 1.3)],
            Errors = new Dictionary<string, long> { ["exceeds_credits"] = 20 },
            Retries = new Dictionary<string, long> { ["unavailable"] = 3 },
            Timeline = [new TimelineSample(1, 40, 2.5), new TimelineSample(2, 60, 3)],
            Histogram = [.. latency.Buckets().Select(b => new HistogramBucket(b.Low / 1000.0, b.High / 1000.0, b.Count))],
            LoadAverageBefore = "1.00 1.00 1.00",
            LoadAverageAfter = "2.00 1.00 1.00",
        };
    }

    [Fact]
    public void Cpu_line_shows_node_time_for_a_local_cluster_and_says_it_is_not_measured_for_an_api_cluster()
    {
        var cpu = new CpuUsage(BenchSeconds: 1, NodesSeconds: 3, MachineBusySeconds: 5, MachineSeconds: 8);

        var local = (Report() with { Cpu = cpu }).ToText();
        Assert.Contains("CPU while measuring: nodes 3.0 s, bench 1.0 s, other programs 1.0 s, idle 3.0 s of 8.0 s", local, StringComparison.Ordinal);

        // With --api the nodes are not the bench's children: their time is in "other programs", never "nodes 0.0 s".
        var api = (Report() with { Cluster = "api", Cpu = cpu with { NodesSeconds = 0 } }).ToText();
        Assert.DoesNotContain("nodes 0.0", api, StringComparison.Ordinal);
        Assert.Contains("other programs (the nodes too, if on this machine) 4.0 s", api, StringComparison.Ordinal);
        Assert.Contains("nodes not measured", api, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_has_the_top_level_figures_errors_and_options()
    {
        using var document = JsonDocument.Parse(BenchJson.Write(Report()));
        var root = document.RootElement;

        Assert.Equal(50, root.GetProperty("transfers_per_second").GetDouble());
        var latency = root.GetProperty("latency_ms");
        foreach (var key in new[] { "p50", "p90", "p99", "p999", "max" })
        {
            Assert.True(latency.GetProperty(key).GetDouble() > 0, key);
        }

        Assert.Equal(40.0, latency.GetProperty("max").GetDouble());
        Assert.Equal(20, root.GetProperty("errors").GetProperty("exceeds_credits").GetInt64());
        Assert.Equal(3, root.GetProperty("retries").GetProperty("unavailable").GetInt64());
        Assert.Equal(1.25, root.GetProperty("failover").GetProperty("max_gap_seconds").GetDouble());
        var options = root.GetProperty("options");
        Assert.Equal(100, options.GetProperty("batch").GetInt32());
        Assert.Equal(0.2, options.GetProperty("cross_shard").GetDouble());
        Assert.Equal(250, options.GetProperty("rate").GetDouble());
        Assert.Equal(10, options.GetProperty("kill_leader_every_seconds").GetDouble());
        Assert.Equal(2, root.GetProperty("timeline").GetArrayLength());
    }

    [Fact]
    public void Json_kill_detail_has_per_shard_gaps_and_restart_figures()
    {
        using var document = JsonDocument.Parse(BenchJson.Write(Report()));
        var kill = document.RootElement.GetProperty("failover").GetProperty("kills")[0];

        Assert.Equal(5.5, kill.GetProperty("restarted_caught_up_seconds").GetDouble());
        Assert.True(kill.TryGetProperty("at_utc", out _));
        var gaps = kill.GetProperty("shard_gaps");
        Assert.Equal(2, gaps.GetArrayLength());
        Assert.Equal(3, gaps[1].GetProperty("shard").GetInt32());
        Assert.Equal(0.5, gaps[0].GetProperty("from_seconds").GetDouble());
        Assert.Equal(1.75, gaps[0].GetProperty("to_seconds").GetDouble());

        var listed = document.RootElement.GetProperty("gaps");
        Assert.Equal(2, listed.GetArrayLength());
        var longest = document.RootElement.GetProperty("longest_shard_gap");
        Assert.Equal(0, longest.GetProperty("shard").GetInt32());
        Assert.Equal(1.25, longest.GetProperty("seconds").GetDouble());
    }

    /// <summary>One transfer of <paramref name="shard"/> answered <paramref name="seconds"/> after the recorder's start.</summary>
    private static void CommitAt(BenchRecorder recorder, int shard, double seconds) =>
        recorder.Commit(shard, 1, recorder.StartedTimestamp + (long)(seconds * System.Diagnostics.Stopwatch.Frequency));

    [Fact]
    public void Recorder_finds_the_gap_spanning_a_kill_with_its_start_and_end()
    {
        var recorder = new BenchRecorder(2, System.Diagnostics.Stopwatch.GetTimestamp());
        CommitAt(recorder, 0, 1.0);
        CommitAt(recorder, 0, 2.5); // the gap 1.0 → 2.5 spans a kill at 2.0
        CommitAt(recorder, 0, 2.52); // too short to be recorded
        CommitAt(recorder, 1, 1.5); // shard 1 commits nothing after the kill

        var spanning = recorder.GapSpanning(0, 2.0, 10);
        Assert.Equal(1.0, spanning.StartSeconds, 3);
        Assert.Equal(2.5, spanning.EndSeconds, 3);
        Assert.Equal(1.5, recorder.GapAround(0, 2.0, 10), 3);
        Assert.Equal(8.5, recorder.GapAround(1, 2.0, 10), 3);
        Assert.Equal(0, recorder.GapAround(0, 2.51, 10), 3);
    }

    [Fact]
    public void Recorder_gives_a_kill_the_gap_that_starts_just_after_it()
    {
        var recorder = new BenchRecorder(1, System.Diagnostics.Stopwatch.GetTimestamp());
        CommitAt(recorder, 0, 1.9);
        CommitAt(recorder, 0, 2.05); // answered by the victim before it died, recorded after the kill at 2.0
        CommitAt(recorder, 0, 2.9); // the first commit after the failover

        var spanning = recorder.GapSpanning(0, 2.0, 10);
        Assert.Equal(2.05, spanning.StartSeconds, 3);
        Assert.Equal(2.9, spanning.EndSeconds, 3);
        // A kill at 1.94: the next gap starts 0.11 s later, beyond the slack, so only the short one spanning it counts.
        Assert.Equal(0.15, recorder.GapAround(0, 1.94, 10), 3);
    }

    [Fact]
    public void Recorder_lists_every_long_gap_and_each_shard_s_silent_tail()
    {
        var recorder = new BenchRecorder(2, System.Diagnostics.Stopwatch.GetTimestamp());
        CommitAt(recorder, 0, 1.0); // 1 s from the start: listed
        CommitAt(recorder, 0, 1.1); // 0.1 s: recorded, but below the listing threshold
        CommitAt(recorder, 0, 3.0); // 1.9 s: listed
        CommitAt(recorder, 0, 9.9); // 6.9 s: listed
        CommitAt(recorder, 1, 4.0); // shard 1: 4 s from the start, then silent until the end at 10 s

        var gaps = recorder.GapsAtLeast(0.2, 10);

        Assert.Equal([(0, 0.0, 1.0), (1, 0.0, 4.0), (0, 1.1, 3.0), (0, 3.0, 9.9), (1, 4.0, 10.0)],
            gaps.Select(gap => (gap.Shard, Math.Round(gap.StartSeconds, 3), Math.Round(gap.EndSeconds, 3))));
    }

    [Fact]
    public void Html_is_self_contained_with_a_throughput_and_a_latency_svg()
    {
        var html = BenchHtml.Write(Report());

        Assert.Equal(2, Regex.Count(html, "<svg "));
        Assert.Contains("<svg id=\"throughput\"", html, StringComparison.Ordinal);
        Assert.Contains("<svg id=\"latency\"", html, StringComparison.Ordinal);
        Assert.Contains("<polyline", html, StringComparison.Ordinal);
        Assert.Contains("<rect class=\"bar\"", html, StringComparison.Ordinal);
        Assert.Contains("kill node 2", html, StringComparison.Ordinal);
        Assert.Contains("2 of 0.2 s or more on one shard, longest 1.250 s (shard 0 at 0.5 s)", html, StringComparison.Ordinal);
        Assert.DoesNotMatch("(?i)https?:|src=|href=|@import|<script|<link", html);
    }

    [Fact]
    public void Text_report_names_every_figure()
    {
        var text = Report().ToText();

        Assert.Contains("50 transfers/s", text, StringComparison.Ordinal);
        Assert.Contains("p99.9", text, StringComparison.Ordinal);
        Assert.Contains("exceeds_credits 20", text, StringComparison.Ordinal);
        Assert.Contains("commit gap 1.250 s", text, StringComparison.Ordinal);
        Assert.Contains("commit gaps: 2 of 0.2 s or more on one shard; longest 1.250 s on shard 0", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Limits_fit_the_api_and_each_other()
    {
        Assert.Equal(ApiLimits.EventsPerBatchMax, BenchLimits.BatchEventsMax);
        Assert.True(BenchLimits.RetryDelay < BenchLimits.RequestDeadline);
        Assert.True(BenchLimits.DrainTimeout >= BenchLimits.RequestDeadline, "requests in flight at the end get their whole deadline");
        Assert.True(BenchLimits.SampleInterval >= TimeSpan.FromSeconds(1), "the progress line changes at most every second");
        Assert.True(BenchLimits.AccountsPerShardMin >= 2, "a same-shard payment needs two accounts");
    }

    [Fact]
    public void Options_are_refused_with_what_to_fix()
    {
        Assert.Null(new BenchOptions().Validate());
        Assert.Contains("--batch", new BenchOptions { Batch = 8190 }.Validate(), StringComparison.Ordinal);
        Assert.Contains("--cross-shard", new BenchOptions { CrossShard = 1.5 }.Validate(), StringComparison.Ordinal);
        Assert.Contains("--warmup", new BenchOptions { Warmup = TimeSpan.FromSeconds(-1) }.Validate(), StringComparison.Ordinal);
        Assert.Contains("--rate", new BenchOptions { Rate = -1 }.Validate(), StringComparison.Ordinal);
        Assert.Contains("--rate", new BenchOptions { Rate = double.NaN }.Validate(), StringComparison.Ordinal);
        Assert.Null(new BenchOptions { Rate = 500 }.Validate());
        Assert.Contains("drop --api", new BenchOptions
        {
            Api = [new BenchNode(1, new Uri("http://127.0.0.1:9101"))],
            KillLeaderEvery = TimeSpan.FromSeconds(10),
        }.Validate(), StringComparison.Ordinal);
    }

    [Fact]
    public void Api_addresses_parse_with_and_without_node_ids()
    {
        Assert.True(BenchCommand.TryParseApi("1=127.0.0.1:9101, 2=http://127.0.0.1:9102", out var nodes, out _));
        Assert.Equal([new BenchNode(1, new Uri("http://127.0.0.1:9101")), new BenchNode(2, new Uri("http://127.0.0.1:9102"))], nodes);
        Assert.True(BenchCommand.TryParseApi("http://10.0.0.5:9101", out var bare, out _));
        Assert.Equal(0UL, Assert.Single(bare).Id);
        Assert.False(BenchCommand.TryParseApi("x=127.0.0.1:9101", out _, out var error));
        Assert.Contains("id=url", error, StringComparison.Ordinal);
    }
}
