using RaftLedger.Cli.Processes;

namespace RaftLedger.Node.Tests.Cluster;

/// <summary>
/// <c>raftledger cluster up</c> as a user runs it: a real process with its own node processes, stopped by a signal.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterUpProcessTests
{
    private const int TestTimeoutMilliseconds = 180_000;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task Sigterm_stops_every_node_cleanly_and_keeps_their_last_log_lines()
    {
        var root = Path.Combine(Path.GetTempPath(), $"raftledger-up-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        var output = Path.Combine(root, "cluster-up.log");
        using var up = NodeProcess.Start(
            ["cluster", "up", "--nodes", "3", "--shards", "1", "--base-port", "0", "--data", Path.Combine(root, "data")], output);
        try
        {
            Assert.True(await WaitForLineAsync(output, "Press Ctrl+C", up), $"cluster up did not become ready:\n{Read(output)}");

            await up.StopAsync(StopTimeout);

            // Before the asynchronous invocation the signal killed `cluster up` at once (exit 143): its nodes were
            // orphaned until they noticed, and their last lines went to a closed pipe.
            Assert.Equal(0, up.ExitCode);
            Assert.Contains("Stopping the nodes ...", Read(output));
            foreach (var id in new[] { 1, 2, 3 })
            {
                Assert.Contains("leadership hand-off before stopping", Read(Path.Combine(root, "data", $"n{id}.log")));
            }
        }
        finally
        {
            up.Kill();
            await up.WaitForExitAsync(StopTimeout);
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Polls the output file until it holds <paramref name="text"/>, the process exits, or the ready timeout passes.</summary>
    private static async Task<bool> WaitForLineAsync(string path, string text, NodeProcess process)
    {
        var deadline = DateTime.UtcNow + ReadyTimeout;
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            if (Read(path).Contains(text, StringComparison.Ordinal))
            {
                return true;
            }

            await Task.Delay(PollInterval, TestContext.Current.CancellationToken);
        }

        return Read(path).Contains(text, StringComparison.Ordinal);
    }

    private static string Read(string path)
    {
        if (!File.Exists(path))
        {
            return "";
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return new StreamReader(stream).ReadToEnd();
    }
}
