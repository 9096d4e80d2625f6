using System.Diagnostics;
using System.Globalization;
using RaftLedger.Storage.Wal;
using Child = RaftLedger.Storage.CrashChild.Program;

namespace RaftLedger.Storage.Tests.Wal;

public class WalCrashTests
{
    private static readonly TimeSpan IterationTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Runs the crash child, SIGKILLs it after a seeded-random number of acknowledgements, and checks after
    /// every kill that each acknowledged entry is present and intact. Soak with more iterations:
    /// <c>WAL_CRASH_ITERATIONS=1000 dotnet test tests/RaftLedger.Storage.Tests -c Release --filter Every_acknowledged</c>.
    /// </summary>
    [Fact]
    public async Task Every_acknowledged_entry_survives_repeated_SIGKILL_of_a_real_process()
    {
        var iterations = int.Parse(Environment.GetEnvironmentVariable("WAL_CRASH_ITERATIONS") ?? "50", CultureInfo.InvariantCulture);
        var seed = int.Parse(Environment.GetEnvironmentVariable("WAL_CRASH_SEED") ?? "20261126", CultureInfo.InvariantCulture);
        var replay = $"WAL_CRASH_SEED={seed} WAL_CRASH_ITERATIONS={iterations} dotnet test tests/RaftLedger.Storage.Tests -c Release --filter Every_acknowledged";
        var random = new Random(seed);
        using var dir = new WalDirectory();
        var acked = new ulong[Child.GroupCount + 1];
        for (var iteration = 0; iteration < iterations; iteration++)
        {
            var killAfterAcks = random.Next(1, 120);
            var stderr = new List<string>();
            try
            {
                await RunAndKill(dir.Path, seed + iteration, killAfterAcks, acked, stderr);
                Verify(dir.Path, acked);
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException(
                    $"iteration {iteration} (kill after {killAfterAcks} acks) failed: {e.Message}\nchild stderr:\n{string.Join('\n', stderr)}\n" +
                    $"replay: {replay}\n{e}");
            }
        }
    }

    private static async Task RunAndKill(string directory, int childSeed, int killAfterAcks, ulong[] acked, List<string> stderr)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "RaftLedger.Storage.CrashChild.dll"));
        start.ArgumentList.Add(directory);
        start.ArgumentList.Add(childSeed.ToString(CultureInfo.InvariantCulture));
        using var child = Process.Start(start) ?? throw new InvalidOperationException("could not start the crash child");
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stderr)
                {
                    stderr.Add(e.Data);
                }
            }
        };
        child.BeginErrorReadLine();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(IterationTimeout);
        try
        {
            var acks = 0;
            while (acks < killAfterAcks)
            {
                var line = await child.StandardOutput.ReadLineAsync(timeout.Token)
                    ?? throw new InvalidOperationException($"child exited (code {(child.WaitForExit(5000) ? child.ExitCode : -1)}) before {killAfterAcks} acks");
                var parts = line.Split(' ');
                if (parts is ["ack", var group, var index])
                {
                    var g = int.Parse(group, CultureInfo.InvariantCulture);
                    acked[g] = Math.Max(acked[g], ulong.Parse(index, CultureInfo.InvariantCulture));
                    acks++;
                }
            }
        }
        finally
        {
            // Process.Kill sends SIGKILL on Unix; only this child (no tree) is killed.
            child.Kill(entireProcessTree: false);
            await child.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Every acknowledged entry of the crash child's groups is in the log at <paramref name="directory"/>, intact.</summary>
    internal static void Verify(string directory, ulong[] acked)
    {
        using var wal = WriteAheadLog.Open(Child.Options(directory) with { Log = static _ => { } });
        for (ulong g = 1; g <= Child.GroupCount; g++)
        {
            var group = wal.GetGroup(g);
            Assert.True(group.LastIndex >= acked[g], $"group {g}: acknowledged {acked[g]} but the log ends at {group.LastIndex}");
            var entries = new List<Raft.Entry>();
            if (group.LastIndex >= group.FirstIndex)
            {
                group.GetEntries(group.FirstIndex, group.LastIndex + 1, long.MaxValue, entries);
            }

            Assert.Equal((int)(group.LastIndex - group.FirstIndex + 1), entries.Count);
            foreach (var entry in entries)
            {
                Assert.True(entry.Data.Span.SequenceEqual(Child.Payload(g, entry.Index)), $"group {g} entry {entry.Index} is damaged");
            }

            Assert.True(group.HardState.Commit <= group.LastIndex);
        }
    }
}
