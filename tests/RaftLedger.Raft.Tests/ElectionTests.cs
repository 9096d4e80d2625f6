using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

/// <summary>Leader election: Raft paper §5.2 and §5.4.1, thesis §9.6 (pre-vote) and §6.2 (check-quorum).</summary>
public class ElectionTests
{
    private static Message VoteRequest(ulong from, ulong to, ulong term, ulong lastIndex = 0, ulong lastTerm = 0) =>
        new() { Type = MessageType.Vote, From = from, To = to, Term = term, Index = lastIndex, LogTerm = lastTerm };

    private static List<Message> Responses(TestCluster cluster, MessageType type) => cluster.Take(m => m.Type == type);

    [Fact]
    public void Initial_election_elects_exactly_one_leader_and_others_follow_it()
    {
        var cluster = new TestCluster(3);
        var leader = cluster.TickUntilLeader();
        cluster.AssertAtMostOneLeaderPerTerm();
        Assert.All(cluster.Nodes, n => Assert.Equal(leader.Id, n.Raft.Leader));
        Assert.All(cluster.Nodes, n => Assert.Equal(leader.Raft.Term, n.Raft.Term));
    }

    [Fact]
    public void Election_timeout_is_randomized_between_one_and_two_election_timeouts()
    {
        // Paper §5.2: randomized timeouts make split votes rare.
        var seen = new HashSet<int>();
        for (ulong seed = 1; seed <= 40; seed++)
        {
            var storage = new MemoryLogStorage();
            var node = new RaftNode(TestCluster.Config(1), storage, new DeterministicRandom(seed));
            node.Bootstrap([1, 2, 3]);
            // The founding membership must be applied before the node may campaign.
            while (node.HasReady)
            {
                var ready = node.GetReady();
                storage.Append(ready.Entries);
                node.Advance(ready);
            }

            var ticks = 0;
            while (node.Role == RaftRole.Follower)
            {
                node.Tick();
                ticks++;
                Assert.True(ticks < 100);
            }

            Assert.InRange(ticks, 10, 19);
            seen.Add(ticks);
        }

        Assert.True(seen.Count >= 5, $"only {seen.Count} distinct timeouts");
    }

    [Fact]
    public void Follower_votes_at_most_once_per_term()
    {
        // Paper §5.2: "each server will vote for at most one candidate in a given term, first-come-first-served".
        var cluster = new TestCluster(3);
        cluster.StepDirect(VoteRequest(2, 1, term: 5, lastIndex: 3, lastTerm: 1));
        cluster.StepDirect(VoteRequest(3, 1, term: 5, lastIndex: 3, lastTerm: 1));
        cluster.StepDirect(VoteRequest(2, 1, term: 5, lastIndex: 3, lastTerm: 1));
        var responses = Responses(cluster, MessageType.VoteResponse);
        Assert.Equal([(2UL, false), (3UL, true), (2UL, false)], responses.Select(m => (m.To, m.Reject)));
        Assert.Equal(new HardState(5, 2, 3), cluster[1].Storage.HardState);
    }

    [Fact]
    public void Vote_is_denied_to_a_candidate_whose_log_is_less_up_to_date()
    {
        // Paper §5.4.1: compare last terms, then lengths. Node 1's log has terms [1, 2] (last index 2).
        (ulong LastIndex, ulong LastTerm, bool Granted)[] cases =
        [
            (1, 1, false), (5, 1, false), (1, 2, false), (2, 2, true), (3, 2, true), (1, 3, true),
        ];
        foreach (var (lastIndex, lastTerm, granted) in cases)
        {
            var cluster = TestCluster.FromLogs([[1, 2], [], []]);
            cluster.StepDirect(VoteRequest(2, 1, term: 3, lastIndex, lastTerm));
            var response = Assert.Single(Responses(cluster, MessageType.VoteResponse));
            Assert.True(granted != response.Reject, $"candidate log ({lastIndex}, {lastTerm}): expected granted={granted}");
        }
    }

    [Fact]
    public void Candidate_returns_to_follower_on_append_from_a_leader_of_its_term()
    {
        // Paper §5.2: "If the AppendEntries RPC is from a leader whose term is at least as large ... returns to follower".
        var cluster = new TestCluster(3);
        cluster[1].Raft.Campaign();
        cluster.ProcessAll();
        Assert.Equal(RaftRole.Candidate, cluster[1].Raft.Role);
        var term = cluster[1].Raft.Term;
        cluster.Pending.Clear();
        cluster.StepDirect(new Message { Type = MessageType.Append, From = 2, To = 1, Term = term, Index = 3, LogTerm = 1, Commit = 3 });
        Assert.Equal(RaftRole.Follower, cluster[1].Raft.Role);
        Assert.Equal(2UL, cluster[1].Raft.Leader);
        Assert.Equal(term, cluster[1].Raft.Term);
    }

    [Fact]
    public void Messages_from_a_stale_term_are_ignored()
    {
        // Paper §5.1: "If a server receives a request with a stale term number, it rejects the request."
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        cluster.Elect(2);
        var before = cluster[3].Storage.Entries.Count;
        var term = cluster[3].Raft.Term;
        cluster.Pending.Clear();
        cluster.StepDirect(new Message
        {
            Type = MessageType.Append,
            From = 1,
            To = 3,
            Term = term - 1,
            Index = (ulong)before,
            LogTerm = term - 1,
            Entries = [new Entry(term - 1, (ulong)before + 1, EntryType.Normal, new byte[] { 9 })],
        });
        cluster.StepDirect(VoteRequest(1, 3, term - 1, 100, term - 1));
        Assert.Empty(cluster.Pending);
        Assert.Equal(before, cluster[3].Storage.Entries.Count);
        Assert.Equal(2UL, cluster[3].Raft.Leader);
        Assert.Equal(term, cluster[3].Raft.Term);
    }

    [Fact]
    public void Dueling_candidates_resolve_to_a_single_leader()
    {
        var cluster = new TestCluster(3);
        cluster.Cut(1, 3);
        cluster[1].Raft.Campaign();
        cluster[3].Raft.Campaign();
        cluster.Stabilize();
        // Node 2 voted for whichever asked first; the other candidate stays a candidate in the same term.
        cluster.AssertAtMostOneLeaderPerTerm();
        Assert.Single(cluster.Nodes, n => n.Raft.Role == RaftRole.Leader);
        cluster.Heal();
        var leader = cluster.TickUntilLeader();
        cluster.TickAll(25);
        cluster.AssertAtMostOneLeaderPerTerm();
        Assert.All(cluster.Nodes, n => Assert.Equal(cluster.LogTerms(leader.Id), cluster.LogTerms(n.Id)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Leader_cycle_every_node_can_become_leader(bool preVote)
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, preVote: preVote));
        for (var round = 0; round < 2; round++)
        {
            foreach (var id in new ulong[] { 1, 2, 3 })
            {
                cluster.Elect(id);
                Assert.All(cluster.Nodes.Where(n => n.Id != id), n => Assert.Equal(RaftRole.Follower, n.Raft.Role));
                Assert.All(cluster.Nodes, n => Assert.Equal(id, n.Raft.Leader));
            }
        }
    }

    [Fact]
    public void Leader_is_re_elected_after_the_leader_is_lost()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, preVote: true, checkQuorum: true));
        var first = cluster.TickUntilLeader();
        cluster.Isolate(first.Id);
        var second = cluster.TickUntilLeader();
        Assert.NotEqual(first.Id, second.Id);
        Assert.True(second.Raft.Term > first.Raft.Term || first.Raft.Role != RaftRole.Leader);
        // The old leader noticed it lost its quorum (check-quorum) and stepped down.
        cluster.TickAll(20);
        Assert.NotEqual(RaftRole.Leader, first.Raft.Role);
        cluster.Heal();
        cluster.TickAll(3);
        Assert.Equal(second.Id, first.Raft.Leader);
    }

    [Fact]
    public void Check_quorum_leader_steps_down_when_it_cannot_reach_a_majority()
    {
        // Thesis §6.2: a leader that does not hear from a majority for an election timeout steps down.
        var cluster = new TestCluster(3, id => TestCluster.Config(id, checkQuorum: true));
        cluster.Elect(1);
        cluster.Isolate(1);
        cluster.Tick(1, 10);
        Assert.Equal(RaftRole.Leader, cluster[1].Raft.Role); // the first round still counts the earlier activity
        cluster.Tick(1, 10);
        Assert.Equal(RaftRole.Follower, cluster[1].Raft.Role);
        Assert.Equal(0UL, cluster[1].Raft.Leader);
    }

    [Fact]
    public void Check_quorum_leader_stays_while_a_majority_answers()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, checkQuorum: true));
        cluster.Elect(1);
        cluster.Cut(1, 3);
        for (var i = 0; i < 50; i++)
        {
            cluster.Tick(1);
            cluster.Stabilize();
        }

        Assert.Equal(RaftRole.Leader, cluster[1].Raft.Role);
    }

    [Fact]
    public void Stuck_higher_term_candidate_is_freed_by_the_leader_stepping_down()
    {
        // With check-quorum, followers ignore the partitioned node's votes (leader lease), so its term keeps
        // growing. When it rejoins, its answer to the leader's heartbeat carries the higher term, the leader steps
        // down, and a new election in that term lets the cluster move on together.
        var cluster = new TestCluster(3, id => TestCluster.Config(id, checkQuorum: true));
        cluster.Elect(1);
        cluster.Isolate(3);
        for (var i = 0; i < 60; i++)
        {
            cluster.Tick(3);
            if (i % 3 == 0)
            {
                cluster.TickAll();
            }
        }

        Assert.Equal(RaftRole.Candidate, cluster[3].Raft.Role);
        Assert.True(cluster[3].Raft.Term > cluster[1].Raft.Term);
        cluster.Pending.Clear();
        cluster.Heal();
        cluster.Tick(1);
        cluster.Stabilize();
        Assert.NotEqual(RaftRole.Leader, cluster[1].Raft.Role);
        Assert.Equal(cluster[3].Raft.Term, cluster[1].Raft.Term);
        var leader = cluster.TickUntilLeader();
        Assert.True(leader.Raft.Term >= cluster[3].Raft.Term);
        cluster.AssertAtMostOneLeaderPerTerm();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Pre_vote_stops_a_rejoining_isolated_node_from_disrupting_the_leader(bool checkQuorum)
    {
        // Thesis §9.6: the isolated node cannot win a pre-vote (its log is behind, or voters are in a leader's
        // lease), so it never bumps its term, and when it rejoins the leader simply carries on.
        var cluster = new TestCluster(3, id => TestCluster.Config(id, preVote: true, checkQuorum: checkQuorum));
        cluster.Elect(1);
        var term = cluster[1].Raft.Term;
        cluster.Isolate(3);
        Assert.True(cluster.Propose(1, "while-isolated").IsAccepted);
        cluster.Stabilize();
        cluster.Tick(3, 100);
        Assert.Equal(RaftRole.PreCandidate, cluster[3].Raft.Role);
        Assert.Equal(term, cluster[3].Raft.Term);
        cluster.Heal();
        cluster.Tick(3, 30);
        cluster.Stabilize();
        cluster.Tick(1);
        cluster.Stabilize();
        Assert.Equal(RaftRole.Leader, cluster[1].Raft.Role);
        Assert.Equal(term, cluster[1].Raft.Term);
        Assert.Equal(RaftRole.Follower, cluster[3].Raft.Role);
        Assert.Equal(1UL, cluster[3].Raft.Leader);
        Assert.Equal(cluster.LogTerms(1), cluster.LogTerms(3));
    }

    [Fact]
    public void Without_pre_vote_a_rejoining_isolated_node_disrupts_the_leader()
    {
        // The contrast to the pre-vote test: shows that test can fail.
        var cluster = new TestCluster(3);
        cluster.Elect(1);
        var term = cluster[1].Raft.Term;
        cluster.Isolate(3);
        cluster.Tick(3, 100);
        cluster.Heal();
        cluster.Tick(3, 30);
        cluster.Stabilize();
        Assert.True(cluster[1].Raft.Term > term);
    }

    [Fact]
    public void Pre_vote_does_not_block_elections_when_the_leader_is_gone()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, preVote: true, checkQuorum: true));
        cluster.Elect(1);
        Assert.True(cluster.Propose(1, "a").IsAccepted);
        cluster.Stabilize();
        cluster.Isolate(1);
        var leader = cluster.TickUntilLeader();
        Assert.NotEqual(1UL, leader.Id);
    }

    [Fact]
    public void Pre_vote_does_not_block_an_election_after_a_split_pre_vote()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, preVote: true));
        cluster.Elect(1);
        cluster.Isolate(1);
        // Both remaining nodes start campaigning at once; the split resolves through randomized timeouts.
        cluster[2].Raft.Campaign();
        cluster[3].Raft.Campaign();
        cluster.Stabilize();
        var leader = cluster.TickUntilLeader();
        Assert.Contains(leader.Id, new ulong[] { 2, 3 });
        cluster.AssertAtMostOneLeaderPerTerm();
    }
}
