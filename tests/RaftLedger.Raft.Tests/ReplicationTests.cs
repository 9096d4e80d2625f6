using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

/// <summary>Log replication and commitment: Raft paper §5.3 and §5.4.</summary>
public class ReplicationTests
{
    private static Message Append(ulong from, ulong to, ulong term, ulong prevIndex, ulong prevTerm, ulong commit, params ulong[] entryTerms) => new()
    {
        Type = MessageType.Append,
        From = from,
        To = to,
        Term = term,
        Index = prevIndex,
        LogTerm = prevTerm,
        Commit = commit,
        Entries = entryTerms.Select((t, i) => new Entry(t, prevIndex + 1 + (ulong)i, EntryType.Normal, new byte[] { (byte)t })).ToArray(),
    };

    [Fact]
    public void Follower_rejects_append_when_previous_term_differs()
    {
        // Paper §5.3 consistency check. Node 1's log has terms [1, 2].
        var cluster = TestCluster.FromLogs([[1, 2], [], []]);
        cluster.StepDirect(Append(2, 1, term: 3, prevIndex: 2, prevTerm: 3, commit: 0, 3));
        var response = Assert.Single(cluster.Take(m => m.Type == MessageType.AppendResponse));
        Assert.True(response.Reject);
        Assert.Equal(2UL, response.Index);
        // Hint: index 2 holds term 2 (<= 3), so the leader can probe from there without walking back one by one.
        Assert.Equal((2UL, 2UL), (response.RejectHint, response.LogTerm));
        Assert.Equal([1UL, 2UL], cluster.LogTerms(1));
    }

    [Fact]
    public void Follower_rejects_append_when_previous_entry_is_missing()
    {
        var cluster = TestCluster.FromLogs([[1, 2], [], []]);
        cluster.StepDirect(Append(2, 1, term: 3, prevIndex: 5, prevTerm: 3, commit: 0, 3));
        var response = Assert.Single(cluster.Take(m => m.Type == MessageType.AppendResponse));
        Assert.True(response.Reject);
        Assert.Equal(2UL, response.RejectHint);
    }

    [Fact]
    public void Follower_truncates_a_conflicting_suffix_and_appends_the_leaders_entries()
    {
        // Paper §5.3: "If an existing entry conflicts with a new one (same index but different terms), delete the
        // existing entry and all that follow it."
        var cluster = TestCluster.FromLogs([[1, 2, 2, 2], [], []]);
        cluster.StepDirect(Append(2, 1, term: 3, prevIndex: 1, prevTerm: 1, commit: 1, 3, 3));
        var response = Assert.Single(cluster.Take(m => m.Type == MessageType.AppendResponse));
        Assert.False(response.Reject);
        Assert.Equal(3UL, response.Index);
        Assert.Equal([1UL, 3UL, 3UL], cluster.LogTerms(1));
    }

    [Fact]
    public void Follower_keeps_entries_after_a_duplicate_or_stale_append()
    {
        // An old, shorter append that matches must not truncate later entries (they may be committed).
        var cluster = TestCluster.FromLogs([[1, 2, 2, 2], [], []]);
        cluster.StepDirect(Append(2, 1, term: 2, prevIndex: 1, prevTerm: 1, commit: 0, 2));
        Assert.Equal([1UL, 2UL, 2UL, 2UL], cluster.LogTerms(1));
        var response = Assert.Single(cluster.Take(m => m.Type == MessageType.AppendResponse));
        Assert.Equal(2UL, response.Index);
    }

    [Fact]
    public void Follower_commits_only_up_to_the_last_entry_it_got_from_this_append()
    {
        var cluster = TestCluster.FromLogs([[1, 1, 9, 9], [], []]);
        cluster.StepDirect(Append(2, 1, term: 10, prevIndex: 1, prevTerm: 1, commit: 4));
        Assert.Equal(1UL, cluster[1].Raft.CommitIndex);
    }

    public static TheoryData<ulong[]> Figure7Followers => new()
    {
        new ulong[] { 1, 1, 1, 4, 4, 5, 5, 6, 6 },                // (a) missing entries
        new ulong[] { 1, 1, 1, 4 },                               // (b) missing many
        new ulong[] { 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6 },          // (c) extra uncommitted entry
        new ulong[] { 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7 },       // (d) extra entries of a later term
        new ulong[] { 1, 1, 1, 4, 4, 4, 4 },                      // (e) missing and extra
        new ulong[] { 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3 },          // (f) a divergent history of terms 2-3
    };

    [Theory]
    [MemberData(nameof(Figure7Followers))]
    public void Figure_7_divergent_follower_logs_are_repaired_to_the_leaders(ulong[] follower)
    {
        // Paper §5.3 Figure 7: whatever the follower holds, the leader makes its log identical to its own.
        ulong[] leader = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
        var cluster = TestCluster.FromLogs([leader, follower, []]);
        cluster.SetTerm(1, 7);
        cluster.Elect(1);
        Assert.Equal(8UL, cluster[1].Raft.Term);
        cluster.TickAll(2);
        Assert.Equal(cluster.LogTerms(1), cluster.LogTerms(2));
        Assert.Equal([.. leader, cluster[1].Raft.Term], cluster.LogTerms(2));
        Assert.Equal(cluster[1].Raft.CommitIndex, cluster[2].Raft.CommitIndex);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Fast_rejection_finds_the_divergence_in_about_one_round_trip(bool followerLonger)
    {
        // Leader: 3 entries of term 1, then 20 of term 5. Follower: 3 of term 1 then 30 (or 0) of term 2. Walking back
        // one index per round trip would take ~20 rejections; conflict hints need one.
        var leaderLog = Enumerable.Repeat(1UL, 3).Concat(Enumerable.Repeat(5UL, 20)).ToArray();
        var followerLog = Enumerable.Repeat(1UL, 3).Concat(Enumerable.Repeat(2UL, followerLonger ? 30 : 0)).ToArray();
        var cluster = TestCluster.FromLogs([leaderLog, followerLog, leaderLog]);
        cluster.Elect(1);
        cluster.TickAll(1);
        var rejections = cluster.Sent.Count(m => m.Type == MessageType.AppendResponse && m.From == 2 && m.Reject);
        Assert.Equal(1, rejections);
        Assert.Equal(cluster.LogTerms(1), cluster.LogTerms(2));
    }

    [Fact]
    public void The_leader_reports_how_far_its_slowest_replica_lags_and_followers_report_zero()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Stabilize();
        Assert.Equal(0UL, cluster.Nodes.Single(n => n.Raft.Id == 1).Raft.ReplicaLag());

        cluster.Cut(1, 3);
        for (var i = 0; i < 5; i++)
        {
            cluster.Propose(1, $"e{i}");
            cluster.Stabilize();
        }

        var leader = cluster.Nodes.Single(n => n.Raft.Id == 1).Raft;
        Assert.Equal(5UL, leader.ReplicaLag());
        Assert.Equal(0UL, cluster.Nodes.Single(n => n.Raft.Id == 2).Raft.ReplicaLag());

        cluster.Heal();
        cluster.TickAll(3);
        cluster.Stabilize();
        Assert.Equal(0UL, leader.ReplicaLag());
    }

    [Fact]
    public void A_new_leader_does_not_count_a_replica_it_has_not_heard_from_as_lacking_the_whole_log()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        for (var i = 0; i < 10; i++)
        {
            cluster.Propose(1, $"e{i}");
        }

        cluster.TickAll(3); // heartbeats carry the commit index to the followers
        var committed = cluster[1].Raft.CommitIndex;
        Assert.All(cluster.Nodes, n => Assert.Equal(committed, n.Raft.CommitIndex));

        // Node 2 wins with node 1's vote while node 3 hears nothing from it: node 3 holds the whole log, but node 2 has
        // no answer from it yet.
        cluster.Cut(2, 3);
        cluster.Elect(2);
        var leader = cluster[2].Raft;
        Assert.Equal(1UL, leader.ReplicaLag()); // only the new term's first entry, which node 3 has not acknowledged

        // A replica that stays silent falls further behind with every commit of this term.
        for (var i = 0; i < 4; i++)
        {
            cluster.Propose(2, $"f{i}");
        }

        cluster.Stabilize();
        Assert.Equal(5UL, leader.ReplicaLag());

        cluster.Heal();
        cluster.TickAll(3);
        cluster.Stabilize();
        Assert.Equal(0UL, leader.ReplicaLag());
    }

    [Fact]
    public void Reordered_or_duplicated_responses_never_move_progress_backwards()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        var acks = new List<Message>();
        for (var i = 0; i < 3; i++)
        {
            cluster.Propose(1, $"e{i}");
            foreach (var append in cluster.Take(m => m.Type == MessageType.Append && m.To == 2))
            {
                cluster.StepDirect(append);
            }

            acks.AddRange(cluster.Take(m => m.Type == MessageType.AppendResponse && m.From == 2));
        }

        Assert.Equal(3, acks.Count);
        acks.Reverse();
        foreach (var ack in acks)
        {
            cluster.StepDirect(ack);
        }

        var progress = cluster[1].Raft.Status().Progress.Single(p => p.Id == 2);
        var last = cluster[1].Raft.LastIndex;
        Assert.Equal(last, progress.Match);
        Assert.Equal(last + 1, progress.Next);
        Assert.Equal(ProgressState.Replicate, progress.State);
        // A stale rejection (of an index at or below the match) is ignored too.
        cluster.StepDirect(new Message { Type = MessageType.AppendResponse, From = 2, To = 1, Term = cluster[1].Raft.Term, Index = last - 1, Reject = true });
        progress = cluster[1].Raft.Status().Progress.Single(p => p.Id == 2);
        Assert.Equal((last, last + 1, ProgressState.Replicate), (progress.Match, progress.Next, progress.State));
    }

    [Fact]
    public void Leader_commits_an_entry_once_a_majority_has_it()
    {
        // Paper §5.3: "A log entry is committed once the leader ... has replicated it on a majority of the servers."
        var cluster = new TestCluster(5);
        cluster.Elect(1);
        cluster.Cut(1, 4);
        cluster.Cut(1, 5);
        var index = cluster.Propose(1, "two-of-five").LastIndex;
        cluster.Cut(1, 3);
        cluster.Stabilize();
        // Only nodes 1 and 2 have it: 2 of 5 is not a majority.
        Assert.True(cluster[1].Raft.CommitIndex < index);
        cluster.Heal();
        cluster.Cut(1, 4);
        cluster.Cut(1, 5);
        cluster.Tick(1);
        cluster.Stabilize();
        // Node 3 caught up: 3 of 5.
        Assert.Equal(index, cluster[1].Raft.CommitIndex);
        Assert.Equal(["two-of-five"], cluster.AppliedPayloads(1));
    }

    [Fact]
    public void Committing_an_entry_also_commits_all_preceding_entries()
    {
        // Paper §5.3: committing an entry commits all preceding ones, including those of earlier leaders.
        var cluster = TestCluster.FromLogs([[1, 2, 2], [1], [1]]);
        cluster.Elect(1);
        cluster.TickAll(1);
        Assert.Equal(4UL, cluster[1].Raft.CommitIndex);
        Assert.All(cluster.Nodes, n => Assert.Equal([1UL, 2UL, 3UL, 4UL], n.Applied.Select(e => e.Index)));
        Assert.All(cluster.Nodes, n => Assert.Equal([1UL, 2UL, 2UL, 3UL], cluster.LogTerms(n.Id)));
    }

    [Fact]
    public void Figure_8_leader_never_commits_an_older_term_entry_by_counting_replicas()
    {
        // Paper §5.4.2: entry 2 (term 2) is on a majority (nodes 1, 2), but the leader of term 3 may commit it only
        // by committing an entry of its own term after it.
        var cluster = TestCluster.FromLogs([[1, 2], [1, 2], [1]]);
        cluster.Drop = m => m.Type == MessageType.Append;
        cluster.Elect(1);
        cluster.Drop = null;
        Assert.Equal(3UL, cluster[1].Raft.Term);
        cluster.Pending.Clear();
        cluster.StepDirect(new Message { Type = MessageType.AppendResponse, From = 2, To = 1, Term = 3, Index = 2 });
        Assert.Equal(0UL, cluster[1].Raft.CommitIndex);
        cluster.StepDirect(new Message { Type = MessageType.AppendResponse, From = 2, To = 1, Term = 3, Index = 3 });
        Assert.Equal(3UL, cluster[1].Raft.CommitIndex);
    }

    [Fact]
    public void Figure_8_sequence_an_older_term_entry_on_a_majority_can_be_overwritten_so_is_not_committed()
    {
        // The paper's Figure 8 (c)-(d): S1 (term 4) has replicated its term-2 entry to S2 and S3, a majority, but a
        // later leader S5 with a term-3 entry at that index can still win and overwrite it. So S1 must not have
        // counted it as committed.
        var cluster = TestCluster.FromLogs([[1, 2], [1, 2], [1], [1], [1, 3]]);
        var s1 = cluster[1];
        cluster.SetTerm(1, 3);
        cluster.Isolate(5);
        cluster.Cut(1, 4);
        // S1 wins term 4 (votes from S2, S3) but none of its appends arrive; then it replicates only its term-2
        // entry to S3, as an append holding that one entry would.
        cluster.Drop = m => m.Type == MessageType.Append;
        cluster.Elect(1);
        Assert.Equal(4UL, s1.Raft.Term);
        cluster.Drop = m => m.Type == MessageType.Append && m.Entries.Any(e => e.Term == 4);
        cluster.Pending.Clear();
        cluster.StepDirect(new Message
        {
            Type = MessageType.Append,
            From = 1,
            To = 3,
            Term = 4,
            Index = 1,
            LogTerm = 1,
            Entries = [s1.Storage.Entries[1]],
        });
        cluster.Stabilize();
        Assert.Equal([1UL, 2UL], cluster.LogTerms(3));
        // S2 holds the entry too (from term 2); even knowing S1, S2 and S3 have it, S1 does not commit it.
        cluster.StepDirect(new Message { Type = MessageType.AppendResponse, From = 2, To = 1, Term = 4, Index = 2 });
        Assert.Equal(3, s1.Raft.Status().Progress.Count(p => p.Match >= 2));
        Assert.Equal(0UL, s1.Raft.CommitIndex);
        // S1 crashes; S5 wins with votes from S2, S3, S4 (its last term 3 beats their term 2) and overwrites index 2.
        cluster.Drop = null;
        cluster.Heal();
        cluster.Isolate(1);
        while (cluster[5].Raft.Role != RaftRole.Leader)
        {
            cluster[5].Raft.Campaign();
            cluster.Stabilize();
        }

        cluster.TickAll(1);
        Assert.All(new ulong[] { 2, 3, 4, 5 }, id => Assert.Equal([1UL, 3UL, cluster[5].Raft.Term], cluster.LogTerms(id)));
    }

    [Fact]
    public void New_leader_overwrites_uncommitted_entries_of_a_deposed_leader_when_it_rejoins()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Isolate(1);
        cluster.Propose(1, "lost-1");
        cluster.Propose(1, "lost-2");
        cluster.Propose(1, "lost-3");
        cluster.Elect(2);
        cluster.Propose(2, "kept");
        cluster.Stabilize();
        cluster.Heal();
        cluster.Tick(2);
        cluster.Stabilize();
        cluster.Tick(2);
        cluster.Stabilize();
        Assert.Equal(RaftRole.Follower, cluster[1].Raft.Role);
        Assert.All(cluster.Nodes, n => Assert.Equal(["kept"], cluster.AppliedPayloads(n.Id)));
        Assert.Equal(cluster.LogTerms(2), cluster.LogTerms(1));
    }

    [Fact]
    public void Concurrent_proposals_from_several_clients_are_applied_in_the_same_order_everywhere()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        for (var i = 0; i < 30; i++)
        {
            cluster.Propose(1, $"p{i}");
            if (i % 7 == 0)
            {
                cluster.Deliver(cluster.Pending[0]);
                cluster.Pending.RemoveAt(0);
            }
        }

        cluster.Stabilize();
        cluster.TickAll(1);
        var expected = Enumerable.Range(0, 30).Select(i => $"p{i}").ToList();
        Assert.All(cluster.Nodes, n => Assert.Equal(expected, cluster.AppliedPayloads(n.Id)));
    }

    [Fact]
    public void Leader_counts_itself_only_after_its_own_entries_are_durable()
    {
        // Thesis §10.2.1: the leader may send appends before its own write finishes, but its own vote towards the
        // commit quorum waits for Advance.
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        var leader = cluster[1].Raft;
        leader.Propose(new byte[] { 1 });
        var ready = leader.GetReady();
        Assert.True(ready.MessagesMaySendBeforePersist);
        Assert.Single(ready.Entries);
        var index = ready.Entries[0].Index;
        foreach (var append in ready.Messages.Where(m => m.To == 2))
        {
            cluster.StepDirect(append);
        }

        var ack = Assert.Single(cluster.Take(m => m.Type == MessageType.AppendResponse && m.From == 2));
        leader.Step(ack);
        // Node 2 has it durably, the leader not yet: 1 of 3, not committed.
        Assert.True(leader.CommitIndex < index);
        cluster[1].Storage.Append(ready.Entries);
        leader.Advance(ready);
        Assert.Equal(index, leader.CommitIndex);
    }

    [Fact]
    public void A_candidates_messages_may_not_be_sent_before_its_term_and_vote_are_durable()
    {
        var cluster = new TestCluster(3);
        cluster[1].Raft.Campaign();
        var ready = cluster[1].Raft.GetReady();
        Assert.False(ready.MessagesMaySendBeforePersist);
        Assert.True(ready.MustSync);
        Assert.Equal(new HardState(2, 1, 3), ready.HardState);
        Assert.All(ready.Messages, m => Assert.Equal(MessageType.Vote, m.Type));
    }

    [Fact]
    public void Follower_applies_entries_it_learns_are_committed_as_it_receives_them_only_once_they_are_durable()
    {
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Propose(1, "a");
        var toThree = cluster.Take(m => m.To == 3 && m.Type == MessageType.Append).Single();
        cluster.Stabilize();
        var commit = cluster[1].Raft.CommitIndex;
        Assert.Equal(cluster[1].Raft.LastIndex, commit); // "a" is committed by nodes 1 and 2.

        cluster[3].Raft.Step(toThree with { Commit = commit });
        var receiving = cluster[3].Raft.GetReady();
        cluster[3].Storage.Append(receiving.Entries);
        cluster[3].Raft.Advance(receiving);
        var next = cluster[3].Raft.GetReady();

        // Committed entries are durable wherever they are handed out (the Ready contract), so a host may apply
        // them while it persists the Ready that carries them.
        Assert.Equal(["a"], receiving.Entries.Select(TestCluster.Text));
        Assert.DoesNotContain(receiving.CommittedEntries, e => TestCluster.Text(e) == "a");
        Assert.Equal(["a"], next.CommittedEntries.Select(TestCluster.Text));
    }
}
