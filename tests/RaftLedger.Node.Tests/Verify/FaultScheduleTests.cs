using RaftLedger.Cli.Verify;

namespace RaftLedger.Node.Tests.Verify;

public sealed class FaultScheduleTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(12345)]
    public void Same_seed_gives_the_same_schedule(int seed)
    {
        Assert.Equal(FaultSchedule.Plan(seed, FaultSchedule.AllKinds), FaultSchedule.Plan(seed, FaultSchedule.AllKinds));
        Assert.NotEqual(FaultSchedule.Plan(seed, FaultSchedule.AllKinds).Take(10), FaultSchedule.Plan(seed + 1, FaultSchedule.AllKinds).Take(10));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void First_three_faults_are_a_kill_a_pause_and_a_partition(int seed)
    {
        var first = FaultSchedule.Plan(seed, FaultSchedule.AllKinds).Take(FaultSchedule.Mandatory(FaultSchedule.AllKinds)).Select(f => f.Kind).ToList();
        Assert.Equal(3, first.Count);
        Assert.Contains(first, k => k is FaultKind.Kill or FaultKind.KillLeader or FaultKind.KillAll or FaultKind.KillMetaLeader or FaultKind.PowerCut);
        Assert.Contains(first, k => k is FaultKind.Pause or FaultKind.PauseLeader);
        Assert.Contains(first, k => k is FaultKind.Partition or FaultKind.IsolateLeader or FaultKind.Bridge or FaultKind.OneWay);
    }

    [Fact]
    public void Pauses_outlast_the_longest_election_timeout_and_only_enabled_kinds_are_planned()
    {
        var pausesOnly = new HashSet<FaultKind> { FaultKind.Pause };
        var plan = FaultSchedule.Plan(5, pausesOnly);
        Assert.All(plan, f => Assert.Equal(FaultKind.Pause, f.Kind));
        Assert.All(plan, f => Assert.True(f.Duration >= FaultSchedule.PauseMin));
        Assert.True(FaultSchedule.PauseMin > TimeSpan.FromSeconds(2)); // 2 × election timeout (10 ticks × 100 ms).
        Assert.Empty(FaultSchedule.Plan(5, new HashSet<FaultKind>()));
    }

    [Fact]
    public void Faults_flag_parses_names_and_refuses_unknown_ones()
    {
        Assert.True(FaultSchedule.TryParse("kill,one-way", out var kinds, out _));
        Assert.Equal(new HashSet<FaultKind> { FaultKind.Kill, FaultKind.OneWay }, kinds.ToHashSet());
        Assert.True(FaultSchedule.TryParse("kill-meta-leader", out var meta, out _));
        Assert.Equal(new HashSet<FaultKind> { FaultKind.KillMetaLeader }, meta.ToHashSet());
        Assert.True(FaultSchedule.TryParse("power-cut,kill-all", out var power, out _));
        Assert.Equal(new HashSet<FaultKind> { FaultKind.PowerCut, FaultKind.KillAll }, power.ToHashSet());
        Assert.True(FaultSchedule.TryParse("none", out var none, out _));
        Assert.Empty(none);
        Assert.False(FaultSchedule.TryParse("kill,flood", out _, out var error));
        Assert.Contains("flood", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void Partitions_leave_a_majority_connected(int nodeCount)
    {
        var ids = Enumerable.Range(1, nodeCount).Select(i => (ulong)i).ToList();
        foreach (var kind in new[] { FaultKind.Partition, FaultKind.IsolateLeader, FaultKind.Bridge, FaultKind.OneWay })
        {
            var cut = Topology.Cut(kind, ids, new Random(nodeCount), leader: 2).ToHashSet();
            Assert.NotEmpty(cut);
            Assert.All(cut, link => Assert.NotEqual(link.From, link.To));

            // Some node still reaches a majority (itself included) both ways: the cluster can make progress.
            Assert.Contains(ids, node => 1 + ids.Count(other => other != node && !cut.Contains((node, other)) && !cut.Contains((other, node))) > nodeCount / 2);
        }

        var isolated = Topology.Cut(FaultKind.IsolateLeader, ids, new Random(1), leader: 2);
        Assert.Equal(2 * (nodeCount - 1), isolated.Count);
        Assert.All(isolated, link => Assert.True(link.From == 2 || link.To == 2));
    }
}
