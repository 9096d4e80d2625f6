using RaftLedger.Simulation;

namespace RaftLedger.Simulation.Tests;

/// <summary>
/// Named seeds. A seed that once failed goes here after the fix, with what it found, so it can never
/// regress unnoticed; seeds that reach rare paths (snapshot installs under crashes, many crashes) are
/// pinned too, so those paths stay covered even if the random sweep's profile changes.
/// </summary>
public sealed class PinnedSeedTests
{
    [Theory]
    [MemberData(nameof(Seeds))]
    public void Pinned_seed_passes(ulong seed, int nodes, string why)
    {
        var result = ChaosRun.Execute(seed, new ChaosOptions { Nodes = nodes });
        Assert.True(result.Passed, $"{why}\n{result}");
    }

    [Fact]
    public void Pinned_snapshot_seeds_really_install_snapshots()
    {
        foreach (var (seed, nodes, _) in SnapshotSeeds)
        {
            var result = ChaosRun.Execute(seed, new ChaosOptions { Nodes = nodes });
            Assert.True(result.SnapshotsInstalled > 0, $"seed {seed} no longer installs a snapshot: re-pick it ({result})");
        }
    }

    public static TheoryData<ulong, int, string> Seeds()
    {
        var data = new TheoryData<ulong, int, string>();
        foreach (var (seed, nodes, why) in SnapshotSeeds)
        {
            data.Add(seed, nodes, why);
        }

        return data;
    }

    private static readonly (ulong Seed, int Nodes, string Why)[] SnapshotSeeds =
    [
        (257, 3, "3 snapshot installs on 3 nodes under crashes"),
        (254, 3, "2 snapshot installs with 8 crashes"),
        (26, 5, "5 snapshot installs on 5 nodes"),
        (162, 5, "4 snapshot installs on 5 nodes with 6 crashes"),
    ];
}
