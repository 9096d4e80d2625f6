using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

/// <summary>Limits: in-flight window, message size, uncommitted bytes, proposal refusal and forwarding, message budgets.</summary>
public class FlowControlTests
{
    [Fact]
    public void In_flight_limit_stops_appends_until_acknowledgements_free_the_window()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, inflightMax: 3));
        cluster.Elect(1);
        for (var i = 0; i < 10; i++)
        {
            cluster.Propose(1, $"e{i}");
        }

        var appendsTo2 = cluster.Take(m => m.Type == MessageType.Append && m.To == 2);
        Assert.Equal(3, appendsTo2.Count);
        Assert.Equal(3, cluster[1].Raft.Status().Progress.Single(p => p.Id == 2).InflightMessages);
        // One acknowledgement frees the window: the rest goes in one message.
        cluster.StepDirect(appendsTo2[0]);
        foreach (var ack in cluster.Take(m => m.Type == MessageType.AppendResponse && m.From == 2))
        {
            cluster.StepDirect(ack);
        }

        var more = cluster.Take(m => m.Type == MessageType.Append && m.To == 2);
        Assert.Single(more);
        Assert.Equal(7, more[0].Entries.Count);
    }

    [Fact]
    public void A_ready_hands_out_committed_entries_within_the_hosts_budget_and_the_rest_in_later_readies()
    {
        const int count = 20;
        var storage = new MemoryLogStorage();
        storage.ApplySnapshot(new SnapshotMetadata(0, 0, ConfState.OfVoters(1)));
        storage.Append(Enumerable.Range(1, count).Select(i => new Entry(1, (ulong)i, EntryType.Normal, new byte[76])).ToArray());
        storage.SetHardState(new HardState(1, 1, count));
        var raft = new RaftNode(TestCluster.Config(1), storage, new DeterministicRandom(1));
        var applied = new List<ulong>();
        var budgets = new long[] { 250, 0, 1, 100, 1L << 20 };
        foreach (var budget in budgets)
        {
            var ready = raft.GetReady(budget);
            var bytes = ready.CommittedEntries.Sum(e => e.SizeBytes);
            // Within the budget, except that one entry always comes (so every group makes progress).
            Assert.True(bytes <= budget || ready.CommittedEntries.Count == 1, $"budget {budget}: {bytes} bytes in {ready.CommittedEntries.Count} entries");
            Assert.NotEmpty(ready.CommittedEntries);
            applied.AddRange(ready.CommittedEntries.Select(e => e.Index));
            raft.Advance(ready);
        }

        // 250 bytes = 2 entries of 100, then 1, 1, 1, then the remaining 15 under the config's cap.
        Assert.Equal(new[] { 2, 1, 1, 1, 15 }.Sum(), applied.Count);
        Assert.Equal(Enumerable.Range(1, count).Select(i => (ulong)i), applied);
        Assert.False(raft.HasReady);
    }

    [Fact]
    public void A_ready_without_apply_leaves_the_committed_entries_for_later_and_still_carries_the_rest()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Stabilize();
        var leader = cluster[1].Raft;

        // Node 2 acknowledges a new entry, which commits it; the host has no apply budget left this round.
        Assert.True(cluster.Propose(1, "a").IsAccepted);
        var append = cluster.Take(m => m.Type == MessageType.Append && m.To == 2).Single();
        cluster.StepDirect(append);
        var ack = cluster.Take(m => m.Type == MessageType.AppendResponse && m.From == 2).Single();
        leader.Step(ack);
        var index = append.Entries[^1].Index;
        Assert.Equal(index, leader.Status().Commit);

        Assert.True(leader.Propose(new byte[10]).IsAccepted);

        var without = leader.GetReadyWithoutApply();
        Assert.Empty(without.CommittedEntries);
        Assert.Equal(index, without.HardState?.Commit);
        Assert.Equal([index + 1], without.Entries.Select(e => e.Index)); // The next entry is written and sent.
        Assert.Contains(without.Messages, m => m.Type == MessageType.Append && m.To == 2 && m.Commit == index);
        cluster[1].Storage.Append(without.Entries);
        leader.Advance(without);
        Assert.Equal(index - 1, leader.Status().Applied);
        Assert.True(leader.HasReady);

        var later = leader.GetReady(0);
        Assert.Equal([index], later.CommittedEntries.Select(e => e.Index));
        leader.Advance(later);
        Assert.Equal(index, leader.Status().Applied);
    }

    [Fact]
    public void Append_messages_respect_the_maximum_message_size()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, messageBytesMax: 100));
        cluster.Elect(1);
        cluster.Cut(1, 2);
        var payloads = Enumerable.Range(0, 10).Select(_ => (ReadOnlyMemory<byte>)new byte[40]).ToArray();
        Assert.True(cluster[1].Raft.Propose(payloads).IsAccepted);
        cluster.Process(1);
        cluster.Stabilize();
        cluster.Heal();
        cluster.Tick(1);
        cluster.Stabilize();
        var appends = cluster.Sent.Where(m => m.Type == MessageType.Append && m.To == 2 && m.Entries.Count > 0).ToList();
        Assert.All(appends, m => Assert.True(m.Entries.Sum(e => e.SizeBytes) <= 100 || m.Entries.Count == 1));
        Assert.True(appends.Count >= 5);
        Assert.Equal(cluster.LogTerms(1), cluster.LogTerms(2));
    }

    [Fact]
    public void Uncommitted_log_size_is_bounded_while_the_leader_is_partitioned()
    {
        const long limit = 1000;
        var cluster = new TestCluster(3, id => TestCluster.Config(id, uncommittedBytesMax: limit, messageBytesMax: 200));
        cluster.Elect(1);
        cluster.Isolate(1);
        var accepted = 0L;
        ProposalResult result;
        do
        {
            result = cluster[1].Raft.Propose(new byte[76]);
            if (result.IsAccepted)
            {
                accepted += 100;
            }
        }
        while (result.IsAccepted);
        Assert.Equal(ProposalStatus.UncommittedLogFull, result.Status);
        Assert.Contains("back off", result.Describe(), StringComparison.Ordinal);
        Assert.Equal(limit, accepted);
        cluster.Heal();
        cluster.Tick(1);
        cluster.Stabilize();
        Assert.True(cluster[1].Raft.Propose(new byte[76]).IsAccepted);
    }

    [Fact]
    public void Oversized_or_empty_proposals_are_refused_with_a_reason()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, messageBytesMax: 100));
        cluster.Elect(1);
        var tooLarge = cluster[1].Raft.Propose(new byte[200]);
        Assert.Equal(ProposalStatus.EntryTooLarge, tooLarge.Status);
        Assert.Contains("split", tooLarge.Describe(), StringComparison.Ordinal);
        Assert.Equal(ProposalStatus.EmptyProposal, cluster[1].Raft.Propose(Array.Empty<ReadOnlyMemory<byte>>()).Status);
    }

    [Fact]
    public void Follower_forwards_proposals_to_the_leader_when_configured()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        var result = cluster.Propose(2, "via-follower");
        Assert.Equal(ProposalStatus.Forwarded, result.Status);
        Assert.Equal(1UL, result.LeaderHint);
        cluster.Stabilize();
        cluster.TickAll(1);
        Assert.All(cluster.Nodes, n => Assert.Equal(["via-follower"], cluster.AppliedPayloads(n.Id)));
    }

    [Fact]
    public void Follower_refuses_proposals_with_a_leader_hint_when_forwarding_is_off()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, forwarding: ProposalForwarding.Refuse));
        cluster.Elect(1);
        var result = cluster.Propose(2, "x");
        Assert.Equal(ProposalStatus.NotLeader, result.Status);
        Assert.Equal(1UL, result.LeaderHint);
        Assert.Contains("node 1", result.Describe(), StringComparison.Ordinal);
        Assert.Empty(cluster.Pending);
    }

    [Fact]
    public void Proposal_without_a_known_leader_is_refused()
    {
        var cluster = new TestCluster(3);
        Assert.Equal(ProposalStatus.NoLeader, cluster.Propose(1, "x").Status);
    }

    [Fact]
    public void Leader_accepts_a_batch_at_consecutive_indexes_in_its_term()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        var last = cluster[1].Raft.LastIndex;
        var result = cluster[1].Raft.Propose([new byte[] { 1 }, new byte[] { 2 }, new byte[] { 3 }]);
        Assert.Equal((last + 1, last + 3, cluster[1].Raft.Term), (result.FirstIndex, result.LastIndex, result.Term));
    }

    [Fact]
    public void Budget_three_node_election_takes_at_most_30_messages()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, preVote: true, checkQuorum: true));
        cluster.Sent.Clear();
        var rounds = 0;
        while (!cluster.Nodes.Any(n => n.Raft.Role == RaftRole.Leader))
        {
            // Tick one node at a time so only the election's own messages are counted.
            foreach (var node in cluster.Nodes)
            {
                node.Raft.Tick();
                cluster.Stabilize();
            }

            rounds++;
            Assert.True(rounds < 100);
        }

        cluster.Stabilize();
        Assert.True(cluster.Sent.Count <= 30, $"election took {cluster.Sent.Count} messages");
    }

    [Fact]
    public void Budget_agreement_on_10_entries_takes_at_most_42_append_messages_and_responses()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Sent.Clear();
        for (var i = 0; i < 10; i++)
        {
            var result = cluster.Propose(1, $"e{i}");
            cluster.Stabilize();
            Assert.Equal(result.LastIndex, cluster[1].Raft.CommitIndex);
        }

        var count = cluster.Sent.Count(m => m.Type is MessageType.Append or MessageType.AppendResponse);
        Assert.True(count <= 42, $"agreement took {count} append messages and responses");
    }

    [Fact]
    public void Budget_idle_cluster_sends_only_heartbeats_bounded_per_heartbeat_interval()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Sent.Clear();
        const int ticks = 100;
        cluster.TickAll(ticks);
        Assert.DoesNotContain(cluster.Sent, m => m.Type is MessageType.Append or MessageType.Vote or MessageType.PreVote);
        // One heartbeat and one response per follower per heartbeat interval (1 tick here).
        Assert.Equal(ticks * 2 * 2, cluster.Sent.Count);
    }
}
