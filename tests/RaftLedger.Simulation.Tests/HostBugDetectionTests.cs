using RaftLedger.Simulation;

namespace RaftLedger.Simulation.Tests;

/// <summary>
/// The simulator must be able to fail: with a deliberate host bug, some seeds of the chaos sweep must
/// report a violation. These tests prove the checkers catch the classes of bug they exist for.
/// </summary>
public sealed class HostBugDetectionTests(ITestOutputHelper output)
{
    private const int SeedsMax = 300;

    [Fact]
    public void Sending_before_persisting_is_caught_as_lost_or_divergent_committed_entries() =>
        AssertSomeSeedFails(SimHostBug.SendBeforePersist, "committed", "leader completeness", "two leaders", "log matching", "not linearizable");

    [Fact]
    public void Stale_local_reads_are_caught_by_the_linearizability_checker() =>
        AssertSomeSeedFails(SimHostBug.StaleLocalReads, "not linearizable");

    [Fact]
    public void Correct_host_passes_the_same_seeds()
    {
        for (ulong seed = 1; seed <= 20; seed++)
        {
            var result = ChaosRun.Execute(seed, new ChaosOptions());
            Assert.True(result.Passed, result.ToString());
        }
    }

    private void AssertSomeSeedFails(SimHostBug bug, params string[] expectedKinds)
    {
        for (ulong seed = 1; seed <= SeedsMax; seed++)
        {
            var result = ChaosRun.Execute(seed, new ChaosOptions { HostBug = bug });
            if (!result.Passed)
            {
                output.WriteLine($"{bug} caught by seed {seed}: {result.Failure}");
                Assert.Contains(expectedKinds, kind => result.Failure!.Contains(kind, StringComparison.Ordinal));
                return;
            }
        }

        Assert.Fail($"no seed in 1..{SeedsMax} caught host bug {bug}");
    }
}
