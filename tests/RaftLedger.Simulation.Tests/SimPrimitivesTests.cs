using RaftLedger.Simulation;

namespace RaftLedger.Simulation.Tests;

public sealed class SimPrimitivesTests
{
    [Fact]
    public void Same_seed_gives_same_sequence_and_different_seeds_differ()
    {
        var a = new SimRandom(123);
        var b = new SimRandom(123);
        var c = new SimRandom(124);
        var sameCount = 0;
        for (var i = 0; i < 100; i++)
        {
            var x = a.NextUInt64();
            Assert.Equal(x, b.NextUInt64());
            sameCount += x == c.NextUInt64() ? 1 : 0;
        }

        Assert.Equal(0, sameCount);
    }

    [Fact]
    public void Random_ranges_stay_in_bounds_and_cover_them()
    {
        var random = new SimRandom(9);
        var seen = new bool[7];
        for (var i = 0; i < 1000; i++)
        {
            var v = random.Between(3, 10);
            Assert.InRange(v, 3, 9);
            seen[v - 3] = true;
            Assert.InRange(random.NextDouble(), 0.0, 0.9999999999);
        }

        Assert.All(seen, Assert.True);
    }

    [Fact]
    public void Scheduler_delivers_by_tick_then_by_scheduling_order()
    {
        var scheduler = new SimScheduler<string>();
        scheduler.Schedule(5, "b");
        scheduler.Schedule(3, "a");
        scheduler.Schedule(5, "c");
        scheduler.AdvanceTo(4);
        Assert.True(scheduler.TryDequeueDue(out var first));
        Assert.Equal("a", first);
        Assert.False(scheduler.TryDequeueDue(out _));
        scheduler.AdvanceTo(5);
        Assert.True(scheduler.TryDequeueDue(out var second));
        Assert.True(scheduler.TryDequeueDue(out var third));
        Assert.Equal(("b", "c"), (second, third));
        Assert.Throws<RaftLedger.Common.InvariantViolationException>(() => scheduler.Schedule(4, "past"));
    }

    [Fact]
    public void Reliable_network_delivers_everything_once_in_order()
    {
        var network = new SimNetwork<int>(3, new SimRandom(1));
        for (var i = 0; i < 10; i++)
        {
            network.Send(1, 2, i, nowTicks: 0);
        }

        var got = new List<int>();
        network.DeliverDue(0, (_, _, m) => got.Add(m));
        Assert.Empty(got);
        network.DeliverDue(1, (from, to, m) =>
        {
            Assert.Equal((1, 2), (from, to));
            got.Add(m);
        });
        Assert.Equal(Enumerable.Range(0, 10), got);
    }

    [Fact]
    public void Lossy_network_drops_duplicates_and_reorders()
    {
        var network = new SimNetwork<int>(2, new SimRandom(5))
        {
            Faults = new NetworkFaults { DropProbability = 0.2, DuplicateProbability = 0.2, DelayTicksMin = 1, DelayTicksMax = 10 },
        };
        for (var i = 0; i < 1000; i++)
        {
            network.Send(1, 2, i, nowTicks: 0);
        }

        var got = new List<int>();
        network.DeliverDue(100, (_, _, m) => got.Add(m));
        Assert.InRange(got.Distinct().Count(), 700, 900);
        Assert.True(got.Count > got.Distinct().Count(), "some messages arrive twice");
        Assert.False(got.SequenceEqual(got.Order()), "some messages arrive out of order");
        Assert.Equal(network.SentCount + network.DuplicatedCount - network.DroppedCount, network.DeliveredCount);
    }

    [Fact]
    public void Partitions_cut_links_and_heal_restores_them()
    {
        var network = new SimNetwork<string>(3, new SimRandom(1));
        network.Partition([1]);
        network.BlockOneWay(2, 3);
        network.Send(1, 2, "1->2", 0);
        network.Send(2, 1, "2->1", 0);
        network.Send(2, 3, "2->3", 0);
        network.Send(3, 2, "3->2", 0);
        var got = new List<string>();
        network.DeliverDue(1, (_, _, m) => got.Add(m));
        Assert.Equal(["3->2"], got);
        Assert.False(network.IsHealed);

        // A message in flight when the link is cut is lost too.
        network.Heal();
        network.Send(1, 2, "late", 1);
        network.Isolate(2);
        got.Clear();
        network.DeliverDue(2, (_, _, m) => got.Add(m));
        Assert.Empty(got);
        network.Reconnect(2);
        Assert.True(network.IsHealed);
    }

    [Fact]
    public void Disk_keeps_synced_records_and_only_a_prefix_of_the_unsynced_tail()
    {
        for (ulong seed = 0; seed < 50; seed++)
        {
            var disk = new SimDisk<int, ListImage>(new ListImage()) { TornWriteProbability = 0.5 };
            disk.Write(1);
            disk.Write(2);
            disk.Sync();
            for (var i = 3; i <= 10; i++)
            {
                disk.Write(i);
            }

            var survived = disk.Crash(new SimRandom(seed));
            Assert.Equal(Enumerable.Range(1, 2 + survived), disk.Image.Records);
            Assert.Equal(0, disk.UnsyncedCount);
        }
    }

    [Fact]
    public void Disk_crash_loses_the_unsynced_tail_for_some_seed_and_keeps_it_for_another()
    {
        var lost = false;
        var kept = false;
        for (ulong seed = 0; seed < 50; seed++)
        {
            var disk = new SimDisk<int, ListImage>(new ListImage());
            disk.Write(1);
            disk.Write(2);
            var survived = disk.Crash(new SimRandom(seed));
            lost |= survived == 0;
            kept |= survived == 2;
        }

        Assert.True(lost && kept);
    }

    [Fact]
    public void Limits_relate_sensibly()
    {
        Assert.True(SimLimits.NodesMax >= 7, "scenarios run 7-node clusters");
        Assert.True(SimLimits.CheckerStepsMax > SimLimits.OperationsPerKeyMax * 100L);
    }

    private sealed class ListImage : IDurableImage<int>
    {
        public List<int> Records { get; } = [];

        public void Apply(int record) => Records.Add(record);
    }
}
