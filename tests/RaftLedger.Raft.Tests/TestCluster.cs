using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

/// <summary>One member of a <see cref="TestCluster"/>: a core over in-memory storage and what it applied.</summary>
internal sealed class TestNode(RaftNode raft, MemoryLogStorage storage)
{
    public RaftNode Raft { get; set; } = raft;

    public MemoryLogStorage Storage { get; } = storage;

    public List<Entry> Applied { get; } = [];

    public List<ReadState> ReadStates { get; } = [];

    public ulong Id => Raft.Id;
}

/// <summary>
/// A deterministic in-test network of a few cores (style of etcd's raft_test network): a host loop per node that
/// persists each Ready to memory, queues its messages and applies committed entries; message delivery is
/// explicit (Stabilize delivers until quiet). Cuts and drop filters simulate partitions and losses.
/// </summary>
internal sealed class TestCluster
{
    private readonly Dictionary<ulong, TestNode> _nodes = [];
    private readonly HashSet<(ulong From, ulong To)> _cut = [];
    private readonly Func<ulong, RaftConfig> _configFor;
    private readonly ulong _seed;

    public TestCluster(int size, Func<ulong, RaftConfig>? configFor = null, ulong seed = 1, bool bootstrap = true)
    {
        _configFor = configFor ?? (id => Config(id));
        _seed = seed;
        var voters = Enumerable.Range(1, size).Select(i => (ulong)i).ToArray();
        foreach (var id in voters)
        {
            var storage = new MemoryLogStorage();
            var raft = new RaftNode(_configFor(id), storage, new DeterministicRandom(seed * 1000 + id));
            if (bootstrap)
            {
                raft.Bootstrap(voters);
            }

            _nodes[id] = new TestNode(raft, storage);
            Process(id);
        }
    }

    /// <summary>
    /// A cluster whose nodes start from the given logs (terms of entries 1..n) with membership {1..logs.Length}
    /// set by an index-0 snapshot, and each node's hard-state term at its last log term.
    /// </summary>
    public static TestCluster FromLogs(ulong[][] termsPerNode, Func<ulong, RaftConfig>? configFor = null)
    {
        var cluster = new TestCluster(0, configFor);
        var voters = Enumerable.Range(1, termsPerNode.Length).Select(i => (ulong)i).ToArray();
        for (var i = 0; i < termsPerNode.Length; i++)
        {
            var id = (ulong)i + 1;
            var storage = new MemoryLogStorage();
            storage.ApplySnapshot(new SnapshotMetadata(0, 0, ConfState.OfVoters(voters)));
            var terms = termsPerNode[i];
            storage.Append(terms.Select((t, j) => new Entry(t, (ulong)j + 1, EntryType.Normal, new byte[] { (byte)t, (byte)j })).ToArray());
            storage.SetHardState(new HardState(terms.Length == 0 ? 0 : terms[^1], 0, 0));
            cluster._nodes[id] = new TestNode(new RaftNode(cluster._configFor(id), storage, new DeterministicRandom(id)), storage);
        }

        return cluster;
    }

    /// <summary>Messages sent and not yet delivered, in send order.</summary>
    public List<Message> Pending { get; } = [];

    /// <summary>Every message the hosts sent (delivered or dropped), for message-count budgets.</summary>
    public List<Message> Sent { get; } = [];

    /// <summary>Drop rule applied when a message is delivered (true = drop).</summary>
    public Func<Message, bool>? Drop { get; set; }

    public IEnumerable<TestNode> Nodes => _nodes.Values;

    public TestNode this[ulong id] => _nodes[id];

    public static RaftConfig Config(ulong id, bool preVote = false, bool checkQuorum = false, int inflightMax = 256,
        long uncommittedBytesMax = 1L << 20, ReadOnlyMode readOnly = ReadOnlyMode.Safe,
        ProposalForwarding forwarding = ProposalForwarding.Forward, long messageBytesMax = 1L << 16, bool rejoining = false) => new()
        {
            Id = id,
            ElectionTimeoutTicks = 10,
            HeartbeatTicks = 1,
            InflightMessagesMax = inflightMax,
            InflightBytesMax = 1L << 30,
            MessageBytesMax = messageBytesMax,
            UncommittedBytesMax = uncommittedBytesMax,
            PreVote = preVote,
            CheckQuorum = checkQuorum,
            ReadOnlyMode = readOnly,
            ProposalForwarding = forwarding,
            Rejoining = rejoining,
        };

    /// <summary>Adds a fresh, empty node (not yet a member) that can receive messages.</summary>
    public TestNode AddEmptyNode(ulong id)
    {
        var storage = new MemoryLogStorage();
        var node = new TestNode(new RaftNode(_configFor(id), storage, new DeterministicRandom(_seed * 1000 + id)), storage);
        _nodes[id] = node;
        return node;
    }

    /// <summary>Restarts a node from its storage (keeps only what it persisted); its applied entries restart too.</summary>
    public void Restart(ulong id, ulong applied = 0)
    {
        var node = _nodes[id];
        Pending.RemoveAll(m => m.To == id);
        node.Applied.RemoveAll(e => e.Index > applied);
        var config = _configFor(id);
        var withApplied = new RaftConfig
        {
            Id = config.Id,
            ElectionTimeoutTicks = config.ElectionTimeoutTicks,
            HeartbeatTicks = config.HeartbeatTicks,
            InflightMessagesMax = config.InflightMessagesMax,
            InflightBytesMax = config.InflightBytesMax,
            MessageBytesMax = config.MessageBytesMax,
            UncommittedBytesMax = config.UncommittedBytesMax,
            PreVote = config.PreVote,
            CheckQuorum = config.CheckQuorum,
            ReadOnlyMode = config.ReadOnlyMode,
            ProposalForwarding = config.ProposalForwarding,
            Applied = applied,
        };
        node.Raft = new RaftNode(withApplied, node.Storage, new DeterministicRandom(_seed * 7777 + id));
    }

    /// <summary>Sets a node's persisted term (as if it had seen that term) and restarts it.</summary>
    public void SetTerm(ulong id, ulong term)
    {
        _nodes[id].Storage.SetHardState(new HardState(term, 0, _nodes[id].Storage.HardState.Commit));
        Restart(id);
    }

    /// <summary>Runs the host loop of one node until it has no Ready: persist, queue messages, apply, advance.</summary>
    public void Process(ulong id)
    {
        var node = _nodes[id];
        while (node.Raft.HasReady)
        {
            var ready = node.Raft.GetReady();
            if (ready.Snapshot is { } snapshot)
            {
                node.Storage.ApplySnapshot(snapshot);
            }

            node.Storage.Append(ready.Entries);
            if (ready.HardState is { } hardState)
            {
                node.Storage.SetHardState(hardState);
            }

            foreach (var message in ready.Messages)
            {
                Sent.Add(message);
                // A cut drops messages both when sent and when delivered.
                if (!_cut.Contains((message.From, message.To)))
                {
                    Pending.Add(message);
                }
            }

            node.Applied.AddRange(ready.CommittedEntries);
            node.ReadStates.AddRange(ready.ReadStates);
            node.Raft.Advance(ready);
        }
    }

    public void ProcessAll()
    {
        foreach (var id in _nodes.Keys.ToArray())
        {
            Process(id);
        }
    }

    /// <summary>Delivers queued messages (and everything they cause) until the network is quiet.</summary>
    public void Stabilize(int roundsMax = 10_000)
    {
        ProcessAll();
        for (var round = 0; Pending.Count > 0; round++)
        {
            Assert.True(round < roundsMax, "cluster did not stabilize");
            var batch = Pending.ToArray();
            Pending.Clear();
            foreach (var message in batch)
            {
                Deliver(message);
            }

            ProcessAll();
        }
    }

    /// <summary>Delivers one message unless cut or dropped, then runs the receiver's host loop.</summary>
    public void Deliver(Message message)
    {
        if (_cut.Contains((message.From, message.To)) || (Drop?.Invoke(message) ?? false) || !_nodes.ContainsKey(message.To))
        {
            return;
        }

        _nodes[message.To].Raft.Step(message);
        Process(message.To);
        if (message.Type == MessageType.Snapshot)
        {
            // The host streamed the state machine alongside; tell the sender it arrived.
            _nodes[message.From].Raft.ReportSnapshot(message.To, SnapshotStatus.Finished);
            Process(message.From);
        }
    }

    /// <summary>Steps a message into its receiver regardless of cuts (for hand-crafted or held messages).</summary>
    public void StepDirect(Message message)
    {
        _nodes[message.To].Raft.Step(message);
        Process(message.To);
    }

    /// <summary>Term of each entry in a node's log (durable part), index 1 first.</summary>
    public List<ulong> LogTerms(ulong id) => _nodes[id].Storage.Entries.Select(e => e.Term).ToList();

    /// <summary>Number of nodes that are leader, per term (for "at most one leader per term").</summary>
    public void AssertAtMostOneLeaderPerTerm()
    {
        var leaders = Nodes.Where(n => n.Raft.Role == RaftRole.Leader).GroupBy(n => n.Raft.Term);
        Assert.All(leaders, g => Assert.Single(g));
    }

    /// <summary>Ticks all nodes (stabilizing after each round) until some node leads; returns it.</summary>
    public TestNode TickUntilLeader(int roundsMax = 200)
    {
        for (var round = 0; round < roundsMax; round++)
        {
            var leader = Nodes.FirstOrDefault(n => n.Raft.Role == RaftRole.Leader && !IsIsolated(n.Id));
            if (leader is not null)
            {
                return leader;
            }

            TickAll();
        }

        throw new InvalidOperationException("no leader elected");
    }

    private bool IsIsolated(ulong id) => _nodes.Keys.Where(o => o != id).All(o => _cut.Contains((id, o)));

    /// <summary>Removes and returns queued messages matching <paramref name="match"/> (to deliver by hand).</summary>
    public List<Message> Take(Func<Message, bool> match)
    {
        var taken = Pending.Where(match).ToList();
        Pending.RemoveAll(m => match(m));
        return taken;
    }

    public void Tick(ulong id, int ticks = 1)
    {
        for (var i = 0; i < ticks; i++)
        {
            _nodes[id].Raft.Tick();
        }

        Process(id);
    }

    /// <summary>Ticks every node once and stabilizes, <paramref name="rounds"/> times.</summary>
    public void TickAll(int rounds = 1)
    {
        for (var r = 0; r < rounds; r++)
        {
            foreach (var id in _nodes.Keys.ToArray())
            {
                _nodes[id].Raft.Tick();
            }

            Stabilize();
        }
    }

    public void Elect(ulong id)
    {
        _nodes[id].Raft.Campaign();
        Stabilize();
        Assert.Equal(RaftRole.Leader, _nodes[id].Raft.Role);
    }

    public void Cut(ulong a, ulong b)
    {
        _cut.Add((a, b));
        _cut.Add((b, a));
    }

    public void CutOneWay(ulong from, ulong to) => _cut.Add((from, to));

    public void Isolate(ulong id)
    {
        foreach (var other in _nodes.Keys)
        {
            if (other != id)
            {
                Cut(id, other);
            }
        }
    }

    public void Heal() => _cut.Clear();

    public ProposalResult Propose(ulong id, string payload)
    {
        var result = _nodes[id].Raft.Propose(System.Text.Encoding.UTF8.GetBytes(payload));
        Process(id);
        return result;
    }

    public static string Text(Entry entry) => System.Text.Encoding.UTF8.GetString(entry.Data.Span);

    /// <summary>The application payloads a node applied, in order (skips no-ops and conf changes).</summary>
    public List<string> AppliedPayloads(ulong id) =>
        _nodes[id].Applied.Where(e => e.Type == EntryType.Normal && e.Data.Length > 0).Select(Text).ToList();
}
