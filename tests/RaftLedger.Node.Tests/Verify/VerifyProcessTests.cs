using RaftLedger.Cli.Verify;

namespace RaftLedger.Node.Tests.Verify;

/// <summary>
/// Short real <c>verify</c> runs: 3 node processes on loopback behind the proxy mesh. Each test kills exactly the
/// processes its run started (the run's dispose) and deletes its data unless the run found violations.
/// </summary>
internal static class VerifyProcess
{
    public static async Task<(int ExitCode, CheckerReport Report, string Output)> RunAsync(VerifyOptions options)
    {
        var output = new StringWriter();
        int exitCode;
        CheckerReport report;
        await using (var run = new VerifyRun(options, TextWriter.Synchronized(output)))
        {
            exitCode = await run.RunAsync(TestContext.Current.CancellationToken);
            report = run.Report!;
        }

        // The history stays for a failing run (its path is in the output); a passing one needs no evidence.
        if (exitCode == 0)
        {
            File.Delete(options.ResolvedHistoryPath);
        }

        return (exitCode, report, output.ToString());
    }

    public static string HistoryPath() => Path.Combine(Path.GetTempPath(), $"raftledger-verify-test-{Guid.NewGuid():N}.jsonl");

    /// <summary>
    /// Deletes the data folder verify keeps when it finds violations (it names it in its output): a test that expects
    /// violations from a deliberately broken build needs no evidence left in the temp folder.
    /// </summary>
    public static void DeleteKeptData(string output)
    {
        const string Kept = "Data and node logs kept in ";
        var at = output.LastIndexOf(Kept, StringComparison.Ordinal);
        if (at < 0)
        {
            return;
        }

        var start = at + Kept.Length;
        var end = output.IndexOfAny(['\r', '\n'], start);
        var folder = end < 0 ? output[start..] : output[start..end];
        if (Path.GetFileName(folder).StartsWith("raftledger-verify-", StringComparison.Ordinal) && Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}

/// <summary>The CI-sized attack: one kill, one pause, one partition; nothing may be found.</summary>
public sealed class VerifyShortRunTests
{
    [Fact]
    public async Task Short_verify_with_a_kill_a_pause_and_a_partition_passes()
    {
        var options = new VerifyOptions
        {
            Seed = 11,
            ShardCount = 4,
            AccountCount = 8,
            Duration = TimeSpan.FromSeconds(20),
            Faults = new HashSet<FaultKind> { FaultKind.KillLeader, FaultKind.Pause, FaultKind.Partition },
            HistoryPath = VerifyProcess.HistoryPath(),
        };
        var (exitCode, report, output) = await VerifyProcess.RunAsync(options);
        Assert.True(exitCode == 0, $"verify found violations: {string.Join("; ", report.Violations)}\nrerun: {options.RerunCommand()}\n{output}");
        Assert.True(report.Ok);
        Assert.Contains("SIGKILL", output, StringComparison.Ordinal);
        Assert.Contains("SIGSTOP", output, StringComparison.Ordinal);
        Assert.Contains("partition for", output, StringComparison.Ordinal);
    }
}

/// <summary>A deliberately broken node: verify must report it (the checker is known to be able to fail).</summary>
public sealed class VerifyBrokenBuildTests
{
    [Fact]
    public async Task Verify_catches_a_node_that_acknowledges_transfers_it_never_applied()
    {
        var options = new VerifyOptions
        {
            Seed = 12,
            ShardCount = 4,
            AccountCount = 8,
            Duration = TimeSpan.FromSeconds(8),
            Faults = new HashSet<FaultKind>(),
            HistoryPath = VerifyProcess.HistoryPath(),
            UnsafeTestFault = "skip-apply:5",
        };
        var (exitCode, report, output) = await VerifyProcess.RunAsync(options);
        Assert.True(exitCode == 1, $"verify missed the broken node (seed {options.Seed}):\n{output}");
        Assert.Contains(report.Violations, v => v.Check == "replicas identical per shard");
        Assert.Contains("--unsafe-test-faults skip-apply:5", output, StringComparison.Ordinal); // The rerun command.
        File.Delete(options.ResolvedHistoryPath);
        VerifyProcess.DeleteKeptData(output);
    }
}

/// <summary>
/// The power-cut fault: every node SIGKILLed and its WAL cut back to what it had fdatasync'd. A build that acted on
/// flushes before they were durable (simulated by a synced mark that lags) must lose acknowledged transfers; the
/// real build must lose none.
/// </summary>
public sealed class VerifyPowerCutTests
{
    private static VerifyOptions PowerCutOptions(int seed, string? unsafeFault) => new()
    {
        Seed = seed,
        ShardCount = 4,
        AccountCount = 8,
        Duration = TimeSpan.FromSeconds(10),
        Faults = new HashSet<FaultKind> { FaultKind.PowerCut },
        HistoryPath = VerifyProcess.HistoryPath(),
        UnsafeTestFault = unsafeFault,
    };

    [Fact]
    public async Task Verify_catches_nodes_that_act_on_flushes_before_they_are_durable()
    {
        var options = PowerCutOptions(14, "synced-mark-lag:50");
        var (exitCode, report, output) = await VerifyProcess.RunAsync(options);
        Assert.True(exitCode == 1, $"verify missed the lost flushes (seed {options.Seed}):\n{output}");
        // Lost flushes the nodes already acted on show either as acknowledged transfers missing or, when what was
        // lost leaves the replicas unable to agree again, as a cluster that never answers the final lookup; which one
        // depends on the processes' timing (both seen on this seed). The real build shows neither (the test below).
        Assert.Contains(report.Violations, v => v.Check.StartsWith("acknowledged transfers present", StringComparison.Ordinal) ||
            (v.Check == "verify ran to the end" && v.Detail.Contains("final lookup", StringComparison.Ordinal)));
        Assert.Contains("power cut dropped", output, StringComparison.Ordinal);
        Assert.Contains("--faults power-cut --unsafe-test-faults synced-mark-lag:50", output, StringComparison.Ordinal); // The rerun command.
        File.Delete(options.ResolvedHistoryPath);
        VerifyProcess.DeleteKeptData(output);
    }

    [Fact]
    public async Task Power_cut_of_every_node_loses_nothing_acknowledged()
    {
        var options = PowerCutOptions(15, unsafeFault: null);
        var (exitCode, report, output) = await VerifyProcess.RunAsync(options);
        Assert.True(exitCode == 0, $"verify found violations: {string.Join("; ", report.Violations)}\nrerun: {options.RerunCommand()}\n{output}");
        Assert.Contains("power cut dropped", output, StringComparison.Ordinal);
    }
}
