using RaftLedger.Simulation;

namespace RaftLedger.Simulation.Tests;

/// <summary>
/// The CI chaos sweep: many random seeds, each a full chaos run with every checker. Split into chunks so
/// the test runner can spread them over cores and a failure names a small range. To replay one seed, run
/// the command printed with the failure.
/// </summary>
public sealed class ChaosSeedTests(ITestOutputHelper output)
{
    /// <summary>Seeds per chunk; the sweep runs <see cref="ChunkCount"/> chunks.</summary>
    public const int SeedsPerChunk = 100;

    public const int ChunkCount = 12;

    /// <summary>Seeds of the 7-node sweep (slower per seed: more nodes, more messages).</summary>
    public const int SevenNodeSeeds = 100;

    public static TheoryData<int> Chunks()
    {
        var data = new TheoryData<int>();
        for (var chunk = 0; chunk < ChunkCount; chunk++)
        {
            data.Add(chunk);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Chunks))]
    public void Random_chaos_seeds_keep_every_safety_and_liveness_property(int chunk)
    {
        var failures = new List<string>();
        var first = (ulong)(chunk * SeedsPerChunk) + 1;
        for (var seed = first; seed < first + SeedsPerChunk; seed++)
        {
            var result = ChaosRun.Execute(seed, new ChaosOptions());
            if (!result.Passed)
            {
                failures.Add(result.ToString());
                output.WriteLine(result.ToString());
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} seeds failed:\n{string.Join("\n", failures)}");
    }

    [Fact]
    public void Random_chaos_seeds_on_seven_nodes_keep_every_safety_and_liveness_property()
    {
        var failures = new List<string>();
        for (var seed = 1UL; seed <= SevenNodeSeeds; seed++)
        {
            var result = ChaosRun.Execute(seed, new ChaosOptions { Nodes = 7 });
            if (!result.Passed)
            {
                failures.Add(result.ToString());
                output.WriteLine(result.ToString());
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} seeds failed:\n{string.Join("\n", failures)}");
    }
}
