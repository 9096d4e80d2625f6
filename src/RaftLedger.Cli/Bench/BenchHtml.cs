using System.Globalization;
using System.Net;
using System.Text;

namespace RaftLedger.Cli.Bench;

/// <summary>
/// The report as one self-contained HTML page: a summary table, an SVG chart of committed
/// transfers per second over time (leader kills marked) and an SVG histogram of per-transfer
/// latency on a logarithmic axis. Inline CSS and SVG only: no script, font, image or link to
/// anything outside the file.
/// </summary>
public static class BenchHtml
{
    private const int Width = 860;
    private const int Height = 300;
    private const int Left = 70;
    private const int Right = 20;
    private const int Top = 20;
    private const int Bottom = 40;

    public static string Write(BenchReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>RaftLedger bench</title>\n<style>")
            .Append("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}")
            .Append("td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}svg{background:#fafafa;border:1px solid #ddd}")
            .Append(".axis{stroke:#888}.grid{stroke:#e3e3e3}.line{fill:none;stroke:#1f6feb;stroke-width:2}")
            .Append(".bar{fill:#1f6feb}.kill{stroke:#d1242f;stroke-dasharray:4 3}.mark{stroke:#8250df;stroke-dasharray:2 2}text{font-size:11px;fill:#444}")
            .Append("</style></head><body>\n");
        html.Append("<h1>RaftLedger bench</h1>\n");
        Summary(html, report);
        html.Append("<h2>Committed transfers per second</h2>\n");
        ThroughputChart(html, report);
        html.Append("<h2>Per-transfer latency</h2>\n");
        LatencyChart(html, report);
        html.Append("</body></html>\n");
        return html.ToString();
    }

    private static void Summary(StringBuilder html, BenchReport report)
    {
        var options = report.Options;
        var rows = new List<(string, string)>
        {
            ("cluster", $"{report.Cluster}, {report.Nodes} nodes, {report.Shards} shards"),
            ("mode", report.Mode == "clients" ? $"{options.Clients} independent single-transfer clients" : $"batches of {options.Batch}, {options.Concurrency} outstanding"),
            ("workload", F($"{options.Accounts:N0} accounts, zipf {options.Zipf}, rate {(options.Rate > 0 ? $"{options.Rate:N0}/s" : "unpaced")}, cross-shard {options.CrossShard}, two-phase {options.TwoPhase}, seed {options.Seed}")),
            ("duration", F($"{report.Seconds:0.0} s, after {options.Warmup.TotalSeconds:0.#} s of unmeasured warm-up")),
            ("throughput", F($"{report.TransfersPerSecond:N0} transfers/s ({report.Committed:N0} committed of {report.Events:N0} sent)")),
            ("transfer latency", Latency(report.Latency)),
            ("request latency", report.RequestLatency.Count > 0 ? Latency(report.RequestLatency) : report.Mode == "clients" ? "not measured (SDK batching)" : "no request answered"),
            ("failover", report.MaxFailoverGapSeconds is { } gap ? F($"{report.Failovers.Count} kill(s), longest commit gap {gap:0.000} s") : "no kills"),
            ("commit gaps", report.LongestShardGap is { } longest
                ? F($"{report.Gaps.Count} of {BenchLimits.ReportedGapSecondsMin:0.0} s or more on one shard, longest {longest.Seconds:0.000} s (shard {longest.Shard} at {longest.StartSeconds:0.0} s)")
                : F($"none of {BenchLimits.ReportedGapSecondsMin:0.0} s or more")),
            ("errors", Counts(report.Errors)),
            ("retried attempts", Counts(report.Retries)),
            ("machine", $"{report.ProcessorCount} CPUs, load average {report.LoadAverageBefore} before, {report.LoadAverageAfter} after"),
            ("started", report.StartedUtc.ToString("u", CultureInfo.InvariantCulture)),
        };
        html.Append("<table>\n");
        foreach (var (name, value) in rows)
        {
            html.Append("<tr><th>").Append(Encode(name)).Append("</th><td>").Append(Encode(value)).Append("</td></tr>\n");
        }

        html.Append("</table>\n");
    }

    private static void ThroughputChart(StringBuilder html, BenchReport report)
    {
        var seconds = Math.Max(1, report.Seconds);
        var peak = Math.Max(1, report.Timeline.Count == 0 ? 0 : report.Timeline.Max(s => s.TransfersPerSecond));
        var top = NiceCeiling(peak);
        OpenSvg(html, "throughput");
        for (var i = 0; i <= 4; i++)
        {
            var y = Y(top * i / 4, top);
            html.Append(F($"<line class=\"grid\" x1=\"{Left}\" y1=\"{y:0.0}\" x2=\"{Width - Right}\" y2=\"{y:0.0}\"/>"));
            html.Append(F($"<text x=\"{Left - 6}\" y=\"{y + 4:0.0}\" text-anchor=\"end\">{top * i / 4:N0}</text>"));
        }

        for (var i = 0; i <= 5; i++)
        {
            var x = X(seconds * i / 5, seconds);
            html.Append(F($"<text x=\"{x:0.0}\" y=\"{Height - Bottom + 16}\" text-anchor=\"middle\">{seconds * i / 5:0.#} s</text>"));
        }

        var points = new StringBuilder();
        points.Append(F($"{X(0, seconds):0.0},{Y(0, top):0.0} "));
        foreach (var sample in report.Timeline)
        {
            points.Append(F($"{X(sample.Seconds, seconds):0.0},{Y(sample.TransfersPerSecond, top):0.0} "));
        }

        html.Append("<polyline class=\"line\" points=\"").Append(points.ToString().TrimEnd()).Append("\"/>");
        foreach (var kill in report.Failovers)
        {
            var x = X(kill.AtSeconds, seconds);
            html.Append(F($"<line class=\"kill\" x1=\"{x:0.0}\" y1=\"{Top}\" x2=\"{x:0.0}\" y2=\"{Height - Bottom}\"/>"));
            html.Append(F($"<text x=\"{x + 3:0.0}\" y=\"{Top + 10}\">kill node {kill.Node}</text>"));
        }

        Axes(html);
        html.Append("</svg>\n");
    }

    private static void LatencyChart(StringBuilder html, BenchReport report)
    {
        OpenSvg(html, "latency");
        var buckets = report.Histogram;
        var low = Math.Max(0.001, buckets.Count == 0 ? 0.001 : buckets.Min(b => Math.Max(b.LowMilliseconds, 0.001)));
        var high = Math.Max(low * 10, buckets.Count == 0 ? 1 : buckets.Max(b => b.HighMilliseconds + 0.001));
        var (logLow, logHigh) = (Math.Floor(Math.Log10(low)), Math.Ceiling(Math.Log10(high)));
        var total = Math.Max(1, buckets.Sum(b => b.Count));
        var tallest = buckets.Count == 0 ? 1 : buckets.Max(b => (double)b.Count / total);
        var top = NiceCeiling(tallest * 100);
        for (var decade = logLow; decade <= logHigh; decade++)
        {
            var x = LogX(Math.Pow(10, decade), logLow, logHigh);
            html.Append(F($"<line class=\"grid\" x1=\"{x:0.0}\" y1=\"{Top}\" x2=\"{x:0.0}\" y2=\"{Height - Bottom}\"/>"));
            html.Append(F($"<text x=\"{x:0.0}\" y=\"{Height - Bottom + 16}\" text-anchor=\"middle\">{Math.Pow(10, decade):0.###} ms</text>"));
        }

        html.Append(F($"<text x=\"{Left - 6}\" y=\"{Top + 4}\" text-anchor=\"end\">{top:0.#} %</text>"));
        foreach (var bucket in buckets)
        {
            var x1 = LogX(Math.Max(bucket.LowMilliseconds, Math.Pow(10, logLow)), logLow, logHigh);
            var x2 = Math.Max(x1 + 1, LogX(bucket.HighMilliseconds + 0.001, logLow, logHigh));
            var y = Y(100.0 * bucket.Count / total, top);
            html.Append(F($"<rect class=\"bar\" x=\"{x1:0.0}\" y=\"{y:0.0}\" width=\"{x2 - x1:0.0}\" height=\"{Height - Bottom - y:0.0}\"/>"));
        }

        foreach (var (name, value) in new[] { ("p50", report.Latency.P50), ("p99", report.Latency.P99), ("p99.9", report.Latency.P999) })
        {
            if (value > 0)
            {
                var x = LogX(value, logLow, logHigh);
                html.Append(F($"<line class=\"mark\" x1=\"{x:0.0}\" y1=\"{Top}\" x2=\"{x:0.0}\" y2=\"{Height - Bottom}\"/>"));
                html.Append(F($"<text x=\"{x + 3:0.0}\" y=\"{Top + 22}\">{name} {value:0.###} ms</text>"));
            }
        }

        Axes(html);
        html.Append("</svg>\n");
    }

    private static void OpenSvg(StringBuilder html, string id) =>
        html.Append(F($"<svg id=\"{id}\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" role=\"img\">"));

    private static void Axes(StringBuilder html) => html.Append(F(
        $"<line class=\"axis\" x1=\"{Left}\" y1=\"{Height - Bottom}\" x2=\"{Width - Right}\" y2=\"{Height - Bottom}\"/><line class=\"axis\" x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{Height - Bottom}\"/>"));

    private static double X(double seconds, double total) => Left + ((Width - Left - Right) * Math.Clamp(seconds / total, 0, 1));

    private static double Y(double value, double top) => Height - Bottom - ((Height - Top - Bottom) * Math.Clamp(value / top, 0, 1));

    private static double LogX(double milliseconds, double logLow, double logHigh) =>
        Left + ((Width - Left - Right) * Math.Clamp((Math.Log10(milliseconds) - logLow) / (logHigh - logLow), 0, 1));

    /// <summary>1, 2 or 5 times a power of ten, at least <paramref name="value"/>: a round top for an axis.</summary>
    private static double NiceCeiling(double value)
    {
        var power = Math.Pow(10, Math.Floor(Math.Log10(Math.Max(value, 1e-9))));
        foreach (var step in new[] { 1.0, 2.0, 5.0, 10.0 })
        {
            if (step * power >= value)
            {
                return step * power;
            }
        }

        return 10 * power;
    }

    private static string Latency(LatencySummary latency) =>
        F($"p50 {latency.P50:0.000} ms, p90 {latency.P90:0.000} ms, p99 {latency.P99:0.000} ms, p99.9 {latency.P999:0.000} ms, max {latency.Max:0.000} ms");

    private static string Counts(IReadOnlyDictionary<string, long> counts) =>
        counts.Count == 0 ? "none" : string.Join(", ", counts.OrderByDescending(c => c.Value).Select(c => F($"{c.Key}: {c.Value:N0}")));

    private static string Encode(string text) => WebUtility.HtmlEncode(text);

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
