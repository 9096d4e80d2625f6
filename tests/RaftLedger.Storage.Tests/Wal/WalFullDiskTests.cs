using System.Diagnostics;
using System.Globalization;
using RaftLedger.Storage.Wal;
using Child = RaftLedger.Storage.CrashChild.Program;

namespace RaftLedger.Storage.Tests.Wal;

/// <summary>
/// A real "no space left on device": the crash child appends to a WAL on a 2 MiB tmpfs until the filesystem is full,
/// then is started again on the still-full filesystem. Neither run may acknowledge an append it did not make durable,
/// both must stop with an error instead of hanging, and every acknowledged entry must be intact once the files are
/// copied to a disk with room. The tmpfs is mounted in a new user and mount namespace (<c>unshare -r -m</c>), which
/// needs no privilege where the kernel allows unprivileged user namespaces; the files are copied out before the
/// namespace, and with it the mount, goes away.
/// </summary>
public class WalFullDiskTests
{
    private const string FileSystemSize = "2m"; // About seven of the child's 256 KiB segments.
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task On_a_full_filesystem_the_WAL_stops_appending_and_keeps_every_acknowledged_entry()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() && File.Exists("/usr/bin/unshare"), "needs Linux and unshare(1) for a private tmpfs");
        using var mount = new WalDirectory();
        using var copy = new WalDirectory();

        var run = await RunInNamespace(mount.Path, copy.Path);

        Assert.SkipWhen(run.ExitCode == MountRefused, $"the kernel refused an unprivileged tmpfs mount: {run.Stderr}");
        var report = $"exit {run.ExitCode}\nstdout:\n{string.Join('\n', run.Stdout)}\nstderr:\n{run.Stderr}";
        Assert.True(run.ExitCode == 0, report);
        var first = Outcome(run.Stdout, "first");
        var second = Outcome(run.Stdout, "second");
        Assert.True(first.Acks > 100, $"the first run acknowledged only {first.Acks} appends before the disk was full\n{report}");
        Assert.Equal(3, first.ExitCode); // Stopped by a failed append, not a crash or a hang.
        Assert.Equal(3, second.ExitCode); // On the still-full disk: a failed open or append, not a crash.
        Assert.Contains("No space left on device", report, StringComparison.Ordinal);
        Assert.All(run.Acked.Skip(1), acked => Assert.True(acked > 0, $"a group had nothing acknowledged\n{report}"));
        WalCrashTests.Verify(copy.Path, run.Acked);
    }

    private const int MountRefused = 97;

    private sealed record NamespaceRun(int ExitCode, List<string> Stdout, string Stderr, ulong[] Acked);

    private sealed record ChildOutcome(int Acks, int ExitCode);

    /// <summary>Acks a run printed (between the runs' exit lines) and its exit code.</summary>
    private static ChildOutcome Outcome(List<string> stdout, string run)
    {
        var end = stdout.FindIndex(line => line.StartsWith($"{run}-exit ", StringComparison.Ordinal));
        Assert.True(end >= 0, $"no exit line for the {run} run");
        var start = run == "first" ? 0 : stdout.FindIndex(line => line.StartsWith("first-exit ", StringComparison.Ordinal)) + 1;
        var acks = stdout.Skip(start).Take(end - start).Count(line => line.StartsWith("ack ", StringComparison.Ordinal));
        return new ChildOutcome(acks, int.Parse(stdout[end].Split(' ')[1], CultureInfo.InvariantCulture));
    }

    private static async Task<NamespaceRun> RunInNamespace(string mountPath, string copyPath)
    {
        // Mount, fill, run again on the full disk, copy the files out; each child is bounded by the test's timeout.
        const string Script =
            "mount -t tmpfs -o size=" + FileSystemSize + " tmpfs \"$1\" || exit 97; " +
            "dotnet \"$3\" \"$1\" 1 fill; echo \"first-exit $?\"; " +
            "dotnet \"$3\" \"$1\" 2 fill; echo \"second-exit $?\"; " +
            "cp -a \"$1\"/. \"$2\"/";
        var start = new ProcessStartInfo("unshare")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-r", "-m", "sh", "-c", Script, "sh", mountPath, copyPath, Path.Combine(AppContext.BaseDirectory, "RaftLedger.Storage.CrashChild.dll") })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start unshare");
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stdout = new List<string>();
        var acked = new ulong[Child.GroupCount + 1];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(RunTimeout);
        try
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                stdout.Add(line);
                if (line.Split(' ') is ["ack", var group, var index])
                {
                    var g = int.Parse(group, CultureInfo.InvariantCulture);
                    acked[g] = Math.Max(acked[g], ulong.Parse(index, CultureInfo.InvariantCulture));
                }
            }

            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true); // unshare, its shell and the child it runs: all started here.
            }
        }

        return new NamespaceRun(process.ExitCode, stdout, await stderr, acked);
    }
}
