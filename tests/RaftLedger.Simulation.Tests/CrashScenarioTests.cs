using RaftLedger.Simulation;
using static RaftLedger.Simulation.Tests.ClusterHarness;

namespace RaftLedger.Simulation.Tests;

/// <summary>
/// Randomized crash scenarios (after the MIT 6.5840 lab's Figure 8 and churn tests, our own code). Each runs
/// clients throughout, the safety checker on every Ready, and at the end heals everything and requires every
/// client operation to finish and the history to be linearizable.
/// </summary>
public sealed class CrashScenarioTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(71UL)]
    [InlineData(72UL)]
    public void Figure_8_on_an_unreliable_network_survives_1000_leader_crashes(ulong seed)
    {
        var cluster = Create(5, seed, clients: 3);
        cluster.Network.Faults = new NetworkFaults { DropProbability = 0.1, DuplicateProbability = 0.05, DelayTicksMin = 1, DelayTicksMax = 4 };
        var random = new SimRandom(seed);
        var leaderCrashes = 0;
        long next = 1;
        while (leaderCrashes < 1000)
        {
            if (leaderCrashes == 200)
            {
                // Longer reordering from here on, as in the lab's test. A one-way delay up to half the election
                // timeout is as far as it can go: Raft needs a round trip well below the election timeout, and
                // with a full election timeout of delay no pre-vote plus vote round ever completes in time.
                cluster.Network.Faults = cluster.Network.Faults with { DelayTicksMax = ElectionTicks / 2 };
            }

            if (!cluster.RunUntil(() => cluster.Leader() != 0, 50 * ElectionTicks))
            {
                cluster.Trace = output.WriteLine;
                cluster.RunTicks(30);
                Assert.Fail($"no leader after {leaderCrashes} leader crashes (seed {seed})\n{cluster.Describe()}");
            }

            cluster.Propose(cluster.Leader(), Value(next++));

            // Mostly a short pause, so the leader crashes after replicating its entry to only some nodes (the
            // Figure 8 situation); sometimes long enough for it to commit.
            cluster.RunTicks(random.Chance(0.1) ? random.Between(1, 3 * ElectionTicks) : random.Between(0, ElectionTicks / 2));
            var leader = cluster.Leader();
            if (leader != 0)
            {
                cluster.Crash(leader);
                leaderCrashes++;
            }

            if (UpCount(cluster) < 3 || random.Chance(0.3))
            {
                cluster.Restart(DownNode(cluster, random));
            }
        }

        output.WriteLine($"seed {seed}: 1000 leader crashes, commit index {cluster.Checker.CommittedIndexMax}, {cluster.History.Operations.Count} client ops");
        HealAndFinish(cluster, seed);
    }

    [Theory]
    [InlineData(81UL, false, false)]
    [InlineData(82UL, true, false)]
    [InlineData(83UL, true, true)]
    [InlineData(84UL, false, true)]
    public void Churn_with_crashes_restarts_and_disconnects_keeps_safety_and_finishes_all_operations(ulong seed, bool unreliable, bool readIndexReads)
    {
        var cluster = Create(5, seed, clients: 5, readIndexReads: readIndexReads);
        if (unreliable)
        {
            cluster.Network.Faults = new NetworkFaults { DropProbability = 0.1, DuplicateProbability = 0.05, DelayTicksMin = 1, DelayTicksMax = 5 };
        }

        var random = new SimRandom(seed);
        for (var iteration = 0; iteration < 200; iteration++)
        {
            var node = random.Between(1, 6);
            switch (random.Next(10))
            {
                case < 2:
                    cluster.Network.Isolate(node);
                    break;
                case < 5:
                    cluster.Network.Reconnect(node);
                    break;
                case < 7:
                    cluster.Crash(node);
                    break;
                default:
                    cluster.Restart(node);
                    break;
            }

            cluster.RunTicks(random.Between(1, ElectionTicks));
        }

        Assert.True(cluster.CrashCount > 10, "the scenario must actually crash nodes");
        output.WriteLine($"seed {seed}: {cluster.CrashCount} crashes, commit index {cluster.Checker.CommittedIndexMax}, {cluster.History.Operations.Count} client ops");
        HealAndFinish(cluster, seed);
    }

    [Theory]
    [InlineData(91UL)]
    [InlineData(92UL)]
    public void Lagging_node_is_restored_by_snapshot_even_when_it_crashes_while_installing(ulong seed)
    {
        var cluster = Create(3, seed, clients: 3, snapshotEveryEntries: 20);
        AwaitLeader(cluster);
        var lagging = (cluster.Leader() % 3) + 1;
        cluster.Crash(lagging);

        // The other two commit far past the compaction point, so the lagging node can only catch up by snapshot.
        Assert.True(cluster.RunUntil(() => cluster.Checker.CommittedIndexMax > 150, 100 * ElectionTicks), $"no progress (seed {seed})");
        var leader = cluster.Node(cluster.Leader());
        Assert.True(leader.Storage.FirstIndex > 100, "the leader compacted its log");

        // Crash the lagging node in the middle of persisting the snapshot, three times.
        for (var attempt = 0; attempt < 3; attempt++)
        {
            cluster.Restart(lagging);
            cluster.Node(lagging).CrashWhenInstallingSnapshot = true;
            Assert.True(cluster.RunUntil(() => !cluster.Node(lagging).IsUp, 40 * ElectionTicks), $"attempt {attempt}: no snapshot sent (seed {seed})");
        }

        cluster.Restart(lagging);
        Assert.True(cluster.RunUntil(() => cluster.SnapshotsInstalled > 0, 40 * ElectionTicks), $"snapshot never installed (seed {seed})");
        HealAndFinish(cluster, seed);
        Assert.Equal(cluster.Node(lagging).StateMachine!.AppliedIndex, leader.StateMachine!.AppliedIndex);
    }

    private static int UpCount(SimCluster cluster) => cluster.Nodes.Count(n => n.IsUp);

    private static int DownNode(SimCluster cluster, SimRandom random)
    {
        var down = cluster.Nodes.Where(n => !n.IsUp).Select(n => n.Id).ToArray();
        return down.Length == 0 ? random.Between(1, cluster.Nodes.Count + 1) : random.Pick(down);
    }

    /// <summary>Heals, restarts everything, and requires a leader, every client operation finished, and all checks.</summary>
    private static void HealAndFinish(SimCluster cluster, ulong seed)
    {
        cluster.Network.Heal();
        cluster.Network.Faults = NetworkFaults.Reliable;
        foreach (var node in cluster.Nodes)
        {
            cluster.Restart(node.Id);
        }

        AwaitLeader(cluster);
        cluster.ClientsEnabled = false;
        Assert.True(cluster.RunUntil(() => cluster.History.PendingCount == 0, 50 * ElectionTicks), $"{cluster.History.PendingCount} operations pending (seed {seed})");
        var commit = cluster.Nodes.Max(n => n.RunningCore.CommitIndex);
        Assert.True(cluster.RunUntil(() => AppliedCount(cluster, commit) == cluster.Nodes.Count, 50 * ElectionTicks), $"replicas did not catch up (seed {seed})");
        CheckAll(cluster);
    }
}
