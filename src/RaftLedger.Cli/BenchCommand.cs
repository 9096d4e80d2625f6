using System.CommandLine;
using System.Globalization;
using RaftLedger.Cli.Bench;
using RaftLedger.Cli.Processes;

namespace RaftLedger.Cli;

/// <summary><c>raftledger bench</c>: throughput and latency of a cluster under a payment workload (see <see cref="BenchRun"/>).</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var api = new Option<string?>("--api") { Description = "gRPC addresses of a running cluster's nodes, comma-separated, each 'url' or 'id=url' (with ids, requests go straight to shard leaders). Without it a local 3-node, 8-shard cluster is started in a temp folder." };
        var accounts = new Option<int>("--accounts") { Description = "Accounts to pay between.", DefaultValueFactory = _ => 10_000 };
        var transfers = new Option<long?>("--transfers") { Description = "Stop after this many payments (instead of --duration)." };
        var duration = new Option<double?>("--duration") { Description = "Seconds to run (default 10; instead of --transfers)." };
        var warmup = new Option<double>("--warmup") { Description = "Seconds of the same workload run first and not measured, so that the nodes are warm: the JIT recompiles hot code for about half a minute after a node starts (docs/PERFORMANCE.md).", DefaultValueFactory = _ => 20 };
        var batch = new Option<int>("--batch") { Description = "Transfers per request (1..8189).", DefaultValueFactory = _ => 8189 };
        var concurrency = new Option<int>("--concurrency") { Description = "Outstanding requests.", DefaultValueFactory = _ => 8 };
        var clients = new Option<int>("--clients") { Description = "Independent callers, each creating one transfer at a time through the client SDK (LedgerClient), which batches them into one request per leader node; replaces --batch/--concurrency." };
        var zipf = new Option<double>("--zipf") { Description = "Zipf exponent s of the account choice (hot accounts); 0 = uniform." };
        var rate = new Option<double>("--rate") { Description = "Payments per second to aim for across all callers, each waiting between its requests (0 = as fast as they go): latency at the rate a service sends." };
        var crossShard = new Option<double>("--cross-shard") { Description = "Fraction of payments between accounts on different shards (0..1)." };
        var twoPhase = new Option<double>("--two-phase") { Description = "Fraction of payments made as pending transfers, posted or voided later (0..1)." };
        var killEvery = new Option<double?>("--kill-leader-every") { Description = "Kill (SIGKILL) a shard leader's node every N seconds and restart it (a kill waits until the previous victim has caught up); measures the gap in committed transfers. Local cluster only." };
        var killAfter = new Option<string>("--kill-after") { Description = "When a restarted victim counts as back so the next kill may come: caught-up (applied what the leaders had committed when it became ready) or ready (answers /readyz; the older rule, for measuring catch-up).", DefaultValueFactory = _ => "caught-up" };
        killAfter.AcceptOnlyFromAmong("caught-up", "ready");
        var seed = new Option<ulong>("--seed") { Description = "Seed of accounts and workload.", DefaultValueFactory = _ => 1 };
        var json = new Option<string?>("--json") { Description = "Write the report as JSON to this file." };
        var html = new Option<string?>("--html") { Description = "Write a self-contained HTML report (SVG charts) to this file." };
        var keep = new Option<bool>("--keep") { Description = "Keep the local cluster's data folder and node logs." };
        var command = new Command("bench", "Measure throughput and latency of a cluster under a payment workload.")
        {
            api, accounts, transfers, duration, warmup, batch, concurrency, clients, zipf, rate, crossShard, twoPhase, killEvery, killAfter, seed, json, html, keep,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(transfers) is not null && parse.GetValue(duration) is not null)
            {
                return await UsageAsync("give --transfers or --duration, not both.");
            }

            if (!TryParseApi(parse.GetValue(api), out var nodes, out var apiError))
            {
                return await UsageAsync(apiError);
            }

            var options = new BenchOptions
            {
                Api = nodes,
                Accounts = parse.GetValue(accounts),
                Transfers = parse.GetValue(transfers),
                Duration = TimeSpan.FromSeconds(parse.GetValue(duration) ?? 10),
                Warmup = TimeSpan.FromSeconds(parse.GetValue(warmup)),
                Batch = parse.GetValue(batch),
                Concurrency = parse.GetValue(concurrency),
                Clients = parse.GetValue(clients),
                Zipf = parse.GetValue(zipf),
                Rate = parse.GetValue(rate),
                CrossShard = parse.GetValue(crossShard),
                TwoPhase = parse.GetValue(twoPhase),
                KillLeaderEvery = parse.GetValue(killEvery) is { } every ? TimeSpan.FromSeconds(every) : null,
                KillAfter = parse.GetValue(killAfter) == "ready" ? KillAfter.Ready : KillAfter.CaughtUp,
                Seed = parse.GetValue(seed),
                JsonPath = parse.GetValue(json),
                HtmlPath = parse.GetValue(html),
                KeepData = parse.GetValue(keep),
            };
            if (options.Validate() is { } problem)
            {
                return await UsageAsync(problem);
            }

            return await RunAsync(options, cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(BenchOptions options, CancellationToken cancellationToken)
    {
        try
        {
            await using var run = new BenchRun(options, Console.Out);
            var report = await run.RunAsync(cancellationToken);
            Console.Write(report.ToText());
            if (options.JsonPath is { } jsonPath)
            {
                await File.WriteAllBytesAsync(jsonPath, BenchJson.Write(report), CancellationToken.None);
                Console.WriteLine($"  JSON report: {jsonPath}");
            }

            if (options.HtmlPath is { } htmlPath)
            {
                await File.WriteAllTextAsync(htmlPath, BenchHtml.Write(report), CancellationToken.None);
                Console.WriteLine($"  HTML report: {htmlPath}");
            }

            return 0;
        }
        catch (Exception exception) when (exception is BenchException or LocalClusterException or TimeoutException or ArgumentOutOfRangeException)
        {
            await Console.Error.WriteLineAsync($"raftledger bench: {exception.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl+C before the measuring began (during cluster start or account creation): nothing to report.
            await Console.Error.WriteLineAsync("raftledger bench: cancelled before measuring.");
            return 130;
        }
    }

    private static async Task<int> UsageAsync(string problem)
    {
        await Console.Error.WriteLineAsync($"raftledger bench: {problem}");
        return 2;
    }

    /// <summary>Parses "url,url" or "1=url,2=url"; a URL without a scheme gets http:// (gRPC over cleartext HTTP/2).</summary>
    public static bool TryParseApi(string? text, out List<BenchNode> nodes, out string error)
    {
        nodes = [];
        error = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            return true;
        }

        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = item.IndexOf('=', StringComparison.Ordinal);
            ulong id = 0;
            if (equals > 0 && !ulong.TryParse(item.AsSpan(0, equals), NumberStyles.None, CultureInfo.InvariantCulture, out id))
            {
                error = $"--api: '{item}' should be 'url' or 'id=url' with a numeric node id.";
                return false;
            }

            var address = equals > 0 ? item[(equals + 1)..] : item;
            if (!address.Contains("://", StringComparison.Ordinal))
            {
                address = "http://" + address;
            }

            if (!Uri.TryCreate(address, UriKind.Absolute, out var url) || url.Port <= 0)
            {
                error = $"--api: '{item}' is not an address like http://127.0.0.1:9101 (a node's gRPC port).";
                return false;
            }

            nodes.Add(new BenchNode(id, url));
        }

        return true;
    }
}
