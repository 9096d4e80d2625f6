using System.Buffers.Binary;
using RaftLedger.Simulation;

namespace RaftLedger.Simulation.Tests;

/// <summary>Helpers for scenario tests: build a cluster, commit a value and wait for it, describe failures with the seed.</summary>
internal static class ClusterHarness
{
    public const int ElectionTicks = 10;

    /// <summary>Generous bound for one agreement in a healthy majority (MIT's "2 seconds" in ticks).</summary>
    public const int AgreementTicksMax = 40 * ElectionTicks;

    public static SimCluster Create(int nodes, ulong seed, int clients = 0, int snapshotEveryEntries = 0, bool readIndexReads = false) =>
        new(new SimClusterOptions
        {
            NodeCount = nodes,
            Seed = seed,
            ClientCount = clients,
            SnapshotEveryEntries = snapshotEveryEntries,
            ReadIndexReads = readIndexReads,
        });

    /// <summary>A payload the state machine ignores (not a client command), unique per value.</summary>
    public static byte[] Value(long value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        return bytes;
    }

    /// <summary>
    /// Like the MIT lab's one(): repeatedly finds a leader, proposes <paramref name="data"/>, and waits until it is
    /// committed and applied on at least <paramref name="expectedServers"/> nodes. Returns its index.
    /// </summary>
    public static ulong CommitOne(SimCluster cluster, byte[] data, int expectedServers, int ticksMax = AgreementTicksMax)
    {
        var deadline = cluster.NowTicks + ticksMax;
        while (cluster.NowTicks < deadline)
        {
            var leader = cluster.Leader();
            if (leader != 0 && cluster.Propose(leader, data) is { IsAccepted: true } accepted)
            {
                var index = accepted.LastIndex;
                var waitUntil = Math.Min(deadline, cluster.NowTicks + (4 * ElectionTicks));
                while (cluster.NowTicks < waitUntil)
                {
                    cluster.RunTick();
                    if (cluster.Checker.TryGetCommitted(index, out _, out var committed) && AppliedCount(cluster, index) >= expectedServers)
                    {
                        if (committed.Span.SequenceEqual(data))
                        {
                            return index;
                        }

                        break; // Another entry won that index: propose again.
                    }
                }
            }
            else
            {
                cluster.RunTick();
            }
        }

        throw new Xunit.Sdk.XunitException($"value not committed on {expectedServers} nodes within {ticksMax} ticks (seed {cluster.Options.Seed})");
    }

    /// <summary>Running nodes whose state machine has applied <paramref name="index"/>.</summary>
    public static int AppliedCount(SimCluster cluster, ulong index)
    {
        var count = 0;
        foreach (var node in cluster.Nodes)
        {
            if (node.StateMachine is { } sm && sm.AppliedIndex >= index)
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Waits for a leader among the running, connected majority; fails the test with the seed if none.</summary>
    public static int AwaitLeader(SimCluster cluster, int ticksMax = 10 * ElectionTicks)
    {
        Assert.True(cluster.RunUntil(() => cluster.Leader() != 0, ticksMax), $"no leader within {ticksMax} ticks (seed {cluster.Options.Seed})");
        return cluster.Leader();
    }

    /// <summary>Number of running nodes that believe they lead in the highest term among running nodes.</summary>
    public static int LeaderCount(SimCluster cluster, IReadOnlyCollection<int>? among = null)
    {
        var count = 0;
        foreach (var node in cluster.Nodes)
        {
            if ((among is null || among.Contains(node.Id)) && node.Core is { Role: Raft.RaftRole.Leader })
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>A leader among <paramref name="ids"/> whose term no other running node among them has passed, or 0.</summary>
    public static int LeaderAmong(SimCluster cluster, IReadOnlyCollection<int> ids)
    {
        ulong termMax = 0;
        foreach (var id in ids)
        {
            termMax = Math.Max(termMax, cluster.Node(id).Core?.Term ?? 0);
        }

        foreach (var id in ids)
        {
            if (cluster.Node(id).Core is { Role: Raft.RaftRole.Leader } core && core.Term == termMax)
            {
                return id;
            }
        }

        return 0;
    }

    /// <summary>Final checks of every scenario: logs, replicas, history.</summary>
    public static void CheckAll(SimCluster cluster)
    {
        cluster.Checker.CheckLogs();
        cluster.CheckReplicasAgree();
        cluster.CheckLinearizable();
    }
}
