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
        ProposalForwarding forwarding = ProposalForwarding.Forward, long messageBytesMax = 1L << 16) => new()
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
    public void Restart(ulong id)
    {
        var node = _nodes[id];
        Pending.RemoveAll(m => m.To == id);
        node.Applied.Clear();
        node.Raft = new RaftNode(_configFor(id), node.Storage, new DeterministicRandom(_seed * 7777 + id));
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
                Pending.Add(message);
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
    }

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
