using System.Net;
using RaftLedger.Node.Host;
using RaftLedger.Raft;

namespace RaftLedger.Node.Tests.Host;

/// <summary>
/// The host's catch-up limits, on three cores configured as the host configures them and driven round by round the
/// way the scheduler drives them (take inputs, one Ready per round with the round's apply budget, persist, send,
/// apply, Advance): a leader sends a lagging follower a bounded amount per round, and a replica with a committed
/// backlog applies it over several rounds.
/// </summary>
public class CatchUpBoundsTests
{
    private const int EntryPayloadBytes = 4096;
    private const int LeaderEntries = 3000; // ~12 MiB: several rounds' worth of the in-flight budget.
    private const int LaggingEntries = 10;

    [Fact]
    public void Host_catch_up_limits_fit_the_raft_limits()
    {
        var config = HostConfig(1);
        Assert.True(HostOptions.RaftInflightBytesMax >= HostOptions.RaftMessageBytesMax, "one full message fits in flight");
        Assert.True(HostOptions.RaftInflightBytesMax >= 2L * HostOptions.EntryBytesMax, "two full entries are pipelined");
        Assert.True(HostOptions.ApplyBytesPerRoundMin < HostOptions.ApplyBytesPerRoundMax);
        Assert.True(HostOptions.ApplyBytesPerRoundMax <= config.ReadyCommittedBytesMax, "the round's budget is the tighter bound");
        Assert.True(HostOptions.ApplyTimePerRoundTarget < TimeSpan.FromMilliseconds(100) * HostOptions.SlowRoundTicks, "a round within its apply target is not slow");
        Assert.Equal(HostOptions.RaftInflightBytesMax, config.InflightBytesMax);
    }

    [Fact]
    public void A_leader_sends_a_lagging_follower_at_most_its_in_flight_budget_per_round_until_it_has_caught_up()
    {
        var nodes = new Dictionary<ulong, (RaftNode Raft, MemoryLogStorage Storage)>
        {
            [1] = Start(1, LeaderEntries),
            [2] = Start(2, LaggingEntries),
            [3] = Start(3, LeaderEntries),
        };
        nodes[1].Raft.Campaign();
        var sentTo2PerRound = new List<(long Bytes, int Probes)>();
        var probes = 0; // Responses of node 2 since node 1's last Ready that let a probing leader send one more message.
        var committedPerReady = new List<(int Count, long Bytes)>();
        var applied = new Dictionary<ulong, ulong> { [1] = 0, [2] = 0, [3] = 0 };
        for (var round = 0; round < 1000 && !Done(nodes, applied); round++)
        {
            var inFlight = new List<Message>();
            foreach (var (id, node) in nodes)
            {
                node.Raft.Tick();
                if (!node.Raft.HasReady)
                {
                    continue;
                }

                var ready = node.Raft.GetReady(HostOptions.ApplyBytesPerRoundMin);
                committedPerReady.Add((ready.CommittedEntries.Count, ready.CommittedEntries.Sum(e => e.SizeBytes)));
                if (ready.CommittedEntries.Count > 0)
                {
                    applied[id] = ready.CommittedEntries[^1].Index;
                }

                node.Storage.Append(ready.Entries);
                if (ready.HardState is { } hardState)
                {
                    node.Storage.SetHardState(hardState);
                }

                if (id == 1)
                {
                    sentTo2PerRound.Add((ready.Messages.Where(m => m.To == 2 && m.Type == MessageType.Append).Sum(m => m.Entries.Sum(e => e.SizeBytes)), probes));
                    probes = 0;
                }

                inFlight.AddRange(ready.Messages);
                node.Raft.Advance(ready);
            }

            foreach (var message in inFlight)
            {
                probes += message.From == 2 && message.To == 1 && (message.Type == MessageType.HeartbeatResponse || message.Reject) ? 1 : 0;
                nodes[message.To].Raft.Step(message);
            }
        }

        Assert.Equal(RaftRole.Leader, nodes[1].Raft.Role);
        Assert.Equal(nodes[1].Storage.LastIndex, nodes[2].Storage.LastIndex);
        // A round refills only what acknowledgements freed: at most the in-flight budget, which the last message may
        // overshoot by one message (the window is full once the budget is reached). While the leader still probes,
        // each heartbeat response or rejection lets it send one more message.
        Assert.All(sentTo2PerRound, round =>
        {
            var bound = HostOptions.RaftInflightBytesMax + ((1 + round.Probes) * HostOptions.RaftMessageBytesMax);
            Assert.True(round.Bytes <= bound, $"one round sent {round.Bytes} bytes to the lagging follower (bound {bound})");
        });
        Assert.True(sentTo2PerRound.Sum(r => r.Bytes) >= (LeaderEntries - LaggingEntries) * (long)EntryPayloadBytes, "the whole backlog was sent");
        Assert.True(sentTo2PerRound.Count(r => r.Bytes > 0) >= 4, "the backlog went over several rounds");
        // The committed backlog was handed out within the round's apply budget (or one entry at a time).
        Assert.All(committedPerReady, ready => Assert.True(ready.Bytes <= HostOptions.ApplyBytesPerRoundMin || ready.Count == 1,
            $"{ready.Count} entries, {ready.Bytes} bytes in one Ready"));
        Assert.True(committedPerReady.Count(r => r.Count > 1) >= 3 * 10, "the backlogs were applied over many rounds");
    }

    [Fact]
    public void Once_the_rounds_apply_budget_is_spent_the_other_groups_apply_nothing_but_still_write()
    {
        // Three groups with one large committed entry each (a batch of thousands of transfers); each elects itself,
        // which writes its new term's first entry.
        var groups = Enumerable.Range(0, 3).Select(_ => CommittedSingleVoterGroup(payloadBytes: 600_000)).ToList();
        foreach (var (raft, _) in groups)
        {
            raft.Campaign();
        }

        long budget = 500_000;
        var readies = groups.Select(g => MultiRaftHost.ReadyWithinBudget(g.Raft, ref budget)).ToList();

        Assert.Equal([1, 0, 0], readies.Select(r => r.CommittedEntries.Count)); // One round holds one large apply.
        Assert.All(readies, r => Assert.NotEmpty(r.Entries)); // Every group's new entry is still written this round.
        Assert.True(budget < 0);

        for (var g = 0; g < groups.Count; g++)
        {
            groups[g].Storage.Append(readies[g].Entries);
            groups[g].Storage.SetHardState(readies[g].HardState!.Value);
            groups[g].Raft.Advance(readies[g]);
        }

        // A later round's budget goes to a group that waited: its entry was kept, not lost.
        budget = 500_000;
        Assert.Equal([1UL], MultiRaftHost.ReadyWithinBudget(groups[1].Raft, ref budget).CommittedEntries.Select(e => e.Index));
    }

    private static (RaftNode Raft, MemoryLogStorage Storage) CommittedSingleVoterGroup(int payloadBytes)
    {
        var storage = new MemoryLogStorage();
        storage.ApplySnapshot(new SnapshotMetadata(0, 0, ConfState.OfVoters(1)));
        storage.Append([new Entry(1, 1, EntryType.Normal, new byte[payloadBytes])]);
        storage.SetHardState(new HardState(1, 1, 1));
        return (new RaftNode(HostConfig(1), storage, new DeterministicRandom(1)), storage);
    }

    [Theory]
    [InlineData(0.0, HostOptions.ApplyBytesPerRoundMin)]
    [InlineData(1e12, HostOptions.ApplyBytesPerRoundMax)]
    [InlineData(10_000_000.0, 500_000)] // 10 MB/s for 50 ms
    public void The_apply_budget_is_what_the_measured_rate_applies_in_the_target_time_within_the_limits(double bytesPerSecond, long budget) =>
        Assert.Equal(budget, MultiRaftHost.ApplyBudgetBytes(bytesPerSecond));

    [Fact]
    public void The_apply_rate_moves_halfway_to_each_rounds_measurement()
    {
        var rate = MultiRaftHost.UpdatedApplyRate(1_000_000, 400_000, TimeSpan.FromMilliseconds(100)); // measured 4 MB/s
        Assert.Equal(2_500_000, rate, precision: 3);
        // A cold round (64 KiB in 0.4 s) pulls the budget down to the minimum within a few rounds.
        for (var i = 0; i < 10; i++)
        {
            rate = MultiRaftHost.UpdatedApplyRate(rate, HostOptions.ApplyBytesPerRoundMin, TimeSpan.FromMilliseconds(400));
        }

        Assert.Equal(HostOptions.ApplyBytesPerRoundMin, MultiRaftHost.ApplyBudgetBytes(rate));
    }

    private static bool Done(Dictionary<ulong, (RaftNode Raft, MemoryLogStorage Storage)> nodes, Dictionary<ulong, ulong> applied)
    {
        var last = nodes[1].Storage.LastIndex;
        return last > LeaderEntries && nodes.All(n => n.Value.Storage.LastIndex == last && applied[n.Key] == last);
    }

    private static (RaftNode, MemoryLogStorage) Start(ulong id, int entries)
    {
        var storage = new MemoryLogStorage();
        storage.ApplySnapshot(new SnapshotMetadata(0, 0, ConfState.OfVoters(1, 2, 3)));
        storage.Append([.. Enumerable.Range(1, entries).Select(i => new Entry(1, (ulong)i, EntryType.Normal, new byte[EntryPayloadBytes]))]);
        storage.SetHardState(new HardState(1, 0, (ulong)Math.Min(entries, LaggingEntries)));
        return (new RaftNode(HostConfig(id), storage, new DeterministicRandom(id)), storage);
    }

    private static RaftConfig HostConfig(ulong id) => new HostOptions
    {
        NodeId = id,
        DataDirectory = "unused",
        Listen = new IPEndPoint(IPAddress.Loopback, 0),
        Peers = new Dictionary<ulong, string> { [1] = "127.0.0.1:1", [2] = "127.0.0.1:2", [3] = "127.0.0.1:3" },
    }.RaftConfig(applied: 0);
}
