using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Raft;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>A message on the simulated wire between nodes: a Raft message of one shard's group (plus snapshot bytes), or a cross-shard protocol message between shard leaders.</summary>
public sealed record ShardEnvelope(int Shard, Message? Raft, byte[]? SnapshotData, int FromShard, byte[]? CrossShard);

/// <summary>One simulated server: the replicas it hosts share its power (a crash takes them all down).</summary>
public sealed class MultiShardNode(int id)
{
    public int Id { get; } = id;

    public List<ShardReplica> Replicas { get; } = [];

    public bool IsUp { get; internal set; } = true;

    /// <summary>When set, the next Ready with writes of any replica here is not synced: the node loses power mid-persist.</summary>
    public bool CrashDuringNextPersist { get; set; }
}

/// <summary>
/// S shards, each a Raft group of three replicas placed on N simulated nodes, every replica a real
/// <see cref="RaftNode"/> with the real <see cref="LedgerStateMachine"/>; a bank workload of clients on top.
/// One seed drives every choice; time is logical (<see cref="RunTick"/>). A tick delivers due messages, ticks
/// every core and the hosted cross-shard drivers, lets clients act, then handles every replica's Ready in the
/// contract's order (persist and sync, send, apply, Advance). Faults are injected by the caller.
/// </summary>
public sealed partial class MultiShardCluster
{
    /// <summary>Ready rounds per replica per tick; a core that keeps producing Readies within one tick is a bug.</summary>
    public const int ReadyRoundsPerTickMax = 16;

    private readonly SimRandom _clientRandom;
    private readonly SimRandom _diskRandom;
    private readonly SimRandom _coreSeeds;
    private readonly SimRandom _readRandom;
    private readonly List<MultiShardNode> _nodes = [];
    private readonly ShardReplica?[,] _replicas;
    private readonly List<ShardReplica>[] _shardReplicas;
    private readonly ulong[][] _voters;
    private readonly SafetyChecker[] _checkers;
    private readonly List<BankClient> _clients = [];
    private readonly byte[] _results = new byte[LedgerLimits.ResultBytesMax];
    private readonly byte[] _emptyLedger;
    private long _nextFullCheckTick;

    public MultiShardCluster(MultiShardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        var root = new SimRandom(options.Seed);
        Network = new SimNetwork<ShardEnvelope>(options.NodeCount, root.Fork());
        Network.Dropped += OnDropped;
        _clientRandom = root.Fork();
        _diskRandom = root.Fork();
        _coreSeeds = root.Fork();
        Workload = new BankWorkload(root.Fork(), options.ShardCount, options.CustomersPerShard);
        _readRandom = root.Fork();
        _emptyLedger = LedgerSnapshot(NewLedger());
        _replicas = new ShardReplica?[options.ShardCount, options.NodeCount + 1];
        _shardReplicas = new List<ShardReplica>[options.ShardCount];
        _voters = new ulong[options.ShardCount][];
        _checkers = new SafetyChecker[options.ShardCount];
        for (var id = 1; id <= options.NodeCount; id++)
        {
            _nodes.Add(new MultiShardNode(id));
        }

        for (var shard = 0; shard < options.ShardCount; shard++)
        {
            PlaceShard(shard);
        }

        for (var c = 1; c <= options.ClientCount; c++)
        {
            _clients.Add(new BankClient(c));
        }

        foreach (var node in _nodes)
        {
            node.IsUp = false;
            Restart(node.Id);
        }

        _nextFullCheckTick = options.FullCheckEveryTicks;
    }

    public MultiShardOptions Options { get; }

    public SimNetwork<ShardEnvelope> Network { get; }

    public BankWorkload Workload { get; }

    public IReadOnlyList<MultiShardNode> Nodes => _nodes;

    public IReadOnlyList<BankClient> Clients => _clients;

    public long NowTicks { get; private set; }

    /// <summary>Cluster time handed to leaders for timestamps and to drivers: logical, monotone.</summary>
    public ulong ClusterTimeNs => (ulong)NowTicks * MultiShardLimits.TickNs;

    /// <summary>When false, idle clients start no new request (outstanding ones are still retried until answered).</summary>
    public bool ClientsEnabled { get; set; } = true;

    /// <summary>Receives a line per crash, restart and client answer when set (replay debugging).</summary>
    public Action<string>? Trace { get; set; }

    public long CrashCount { get; private set; }

    public long SnapshotsInstalled { get; private set; }

    public long RequestsAnswered { get; private set; }

    public MultiShardNode Node(int id) => _nodes[id - 1];

    public IReadOnlyList<ShardReplica> ReplicasOf(int shard) => _shardReplicas[shard];

    public ShardReplica? Replica(int shard, int node) => _replicas[shard, node];

    public SafetyChecker Checker(int shard) => _checkers[shard];

    /// <summary>Advances logical time by one tick.</summary>
    public void RunTick()
    {
        NowTicks++;
        Network.DeliverDue(NowTicks, Deliver);
        foreach (var node in _nodes)
        {
            foreach (var replica in node.Replicas)
            {
                replica.Core?.Tick();
            }
        }

        TickDrivers();
        ClientsAct();
        foreach (var node in _nodes)
        {
            foreach (var replica in node.Replicas)
            {
                ProcessReadies(replica);
            }
        }

        ServeReads();
        CrashTrappedNodes();
        if (NowTicks >= _nextFullCheckTick)
        {
            CheckLogs();
            _nextFullCheckTick = NowTicks + Options.FullCheckEveryTicks;
        }

        if (NowTicks % Options.DerivedCheckEveryTicks == 0)
        {
            CheckLegRecordsDerived();
        }
    }

    public void RunTicks(int ticks)
    {
        for (var i = 0; i < ticks; i++)
        {
            RunTick();
        }
    }

    /// <summary>Runs until <paramref name="condition"/> holds (checked before each tick); false if it did not within the limit.</summary>
    public bool RunUntil(Func<bool> condition, int ticksMax)
    {
        for (var i = 0; i < ticksMax; i++)
        {
            if (condition())
            {
                return true;
            }

            RunTick();
        }

        return condition();
    }

    /// <summary>The ready leader of <paramref name="shard"/> with the highest term no running replica has passed, or null.</summary>
    public ShardReplica? Leader(int shard)
    {
        ulong termMax = 0;
        foreach (var replica in _shardReplicas[shard])
        {
            termMax = Math.Max(termMax, replica.Core?.Term ?? 0);
        }

        foreach (var replica in _shardReplicas[shard])
        {
            if (replica.IsReadyLeader && replica.Core!.Term == termMax)
            {
                return replica;
            }
        }

        return null;
    }

    /// <summary>True when every shard has a ready leader.</summary>
    public bool AllShardsLed()
    {
        for (var shard = 0; shard < Options.ShardCount; shard++)
        {
            if (Leader(shard) is null)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Power loss on node <paramref name="id"/>: every replica's core, ledger and waiting work vanish; unsynced writes may be lost.</summary>
    public void Crash(int id)
    {
        var node = Node(id);
        if (!node.IsUp)
        {
            return;
        }

        Trace?.Invoke($"{NowTicks} crash node {id}");
        foreach (var replica in node.Replicas)
        {
            replica.Disk.Crash(_diskRandom);
            DropDriver(replica);
            replica.Lose();
        }

        node.IsUp = false;
        node.CrashDuringNextPersist = false;
        CrashCount++;
    }

    /// <summary>Starts node <paramref name="id"/>: every replica from what its disk holds (bootstrapping brand-new disks).</summary>
    public void Restart(int id)
    {
        var node = Node(id);
        if (node.IsUp)
        {
            return;
        }

        Trace?.Invoke($"{NowTicks} restart node {id}");
        foreach (var replica in node.Replicas)
        {
            StartReplica(replica);
        }

        node.IsUp = true;
    }

    /// <summary>Running replicas of each shard that applied the same index hold identical ledgers (fingerprints).</summary>
    public void CheckReplicasAgree()
    {
        for (var shard = 0; shard < Options.ShardCount; shard++)
        {
            var byIndex = new Dictionary<ulong, (int Node, UInt128 Fingerprint)>();
            foreach (var replica in _shardReplicas[shard])
            {
                if (replica.Ledger is not { } ledger)
                {
                    continue;
                }

                var fingerprint = ledger.Fingerprint();
                if (byIndex.TryGetValue(replica.AppliedIndex, out var other) && other.Fingerprint != fingerprint)
                {
                    throw new SimulationFailureException(
                        $"shard {shard}: replicas on nodes {other.Node} and {replica.NodeId} applied up to {replica.AppliedIndex} but their ledger fingerprints differ");
                }

                byIndex[replica.AppliedIndex] = (replica.NodeId, fingerprint);
            }
        }
    }

    /// <summary>
    /// Every running replica's derived side records (leg holds, id claims, closing marks, reserved totals) are exactly
    /// what its Prepared records imply: what lets a RocksDB store keep them in memory only and rebuild them on load.
    /// </summary>
    public void CheckLegRecordsDerived()
    {
        for (var shard = 0; shard < Options.ShardCount; shard++)
        {
            foreach (var replica in _shardReplicas[shard])
            {
                if (replica.Ledger?.DerivedLegRecordsMismatch() is { } mismatch)
                {
                    throw new SimulationFailureException($"shard {shard} on node {replica.NodeId} at applied index {replica.AppliedIndex}: {mismatch}");
                }
            }
        }
    }

    /// <summary>Full Raft log checks of every shard's group (log matching, committed entries durable on a majority).</summary>
    public void CheckLogs()
    {
        for (var shard = 0; shard < Options.ShardCount; shard++)
        {
            try
            {
                _checkers[shard].CheckLogs();
            }
            catch (SimulationFailureException e)
            {
                throw new SimulationFailureException($"shard {shard}: {e.Message}");
            }
        }
    }

    /// <summary>True when every running replica has applied everything its shard's group committed.</summary>
    public bool AllApplied()
    {
        for (var shard = 0; shard < Options.ShardCount; shard++)
        {
            ulong commit = 0;
            foreach (var replica in _shardReplicas[shard])
            {
                commit = Math.Max(commit, replica.Core?.CommitIndex ?? 0);
            }

            foreach (var replica in _shardReplicas[shard])
            {
                if (replica.IsUp && replica.AppliedIndex != commit)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>One line per replica (role, term, commit, applied) and the network state, for failure reports.</summary>
    public string Describe()
    {
        var text = new System.Text.StringBuilder($"tick {NowTicks}, network {(Network.IsHealed ? "healed" : "partitioned")}, {Network.InFlightCount} in flight\n");
        for (var shard = 0; shard < Options.ShardCount; shard++)
        {
            foreach (var replica in _shardReplicas[shard])
            {
                text.Append($"  shard {shard} node {replica.NodeId}: ");
                if (replica.Core is { } core)
                {
                    text.Append($"{core.Role} term {core.Term} leader {core.Leader} commit {core.CommitIndex} applied {replica.AppliedIndex} ready-term {replica.ReadyTerm} ");
                }
                else
                {
                    text.Append("DOWN ");
                }

                text.Append($"log [{replica.Storage.FirstIndex}..{replica.Storage.LastIndex}]{DescribeDriver(replica)}\n");
            }
        }

        return text.ToString();
    }

    internal static LedgerStateMachine NewLedger() => new(new InMemoryLedgerStore(accountCapacity: 64, transferCapacity: 256));

    internal static byte[] LedgerSnapshot(LedgerStateMachine ledger)
    {
        using var stream = new MemoryStream();
        ledger.WriteSnapshot(stream);
        return stream.ToArray();
    }

    /// <summary>Replicas of shard s go on three consecutive nodes starting at node (s mod N) + 1, so shards spread over nodes.</summary>
    private void PlaceShard(int shard)
    {
        var n = Options.NodeCount;
        _shardReplicas[shard] = [];
        _voters[shard] = new ulong[MultiShardLimits.ReplicasPerShard];
        for (var k = 0; k < MultiShardLimits.ReplicasPerShard; k++)
        {
            var node = ((shard + k) % n) + 1;
            var disk = new SimDisk<RaftDiskRecord, RaftDiskImage>(new RaftDiskImage(_emptyLedger))
            {
                TornWriteProbability = Options.TornWriteProbability,
            };
            var replica = new ShardReplica(shard, node, disk);
            _replicas[shard, node] = replica;
            _shardReplicas[shard].Add(replica);
            _nodes[node - 1].Replicas.Add(replica);
            _voters[shard][k] = (ulong)node;
        }

        _checkers[shard] = new SafetyChecker(_shardReplicas[shard]);
    }

    private void StartReplica(ShardReplica replica)
    {
        var image = replica.Disk.Image;
        var config = Options.RaftConfig((ulong)replica.NodeId);
        Invariant.Check(config.Id == (ulong)replica.NodeId, "the RaftConfig factory must use the id it is given");
        var snapshot = image.Storage.Snapshot;
        var core = new RaftNode(SimCluster.WithApplied(config, snapshot.Index), image.Storage, new DeterministicRandom(_coreSeeds.NextUInt64()));
        if (image.IsEmpty)
        {
            core.Bootstrap(_voters[replica.Shard]);
        }

        var ledger = NewLedger();
        using (var stream = new MemoryStream(image.SnapshotData, writable: false))
        {
            ledger.RestoreSnapshot(stream);
        }

        replica.Ledger = ledger;
        replica.AppliedIndex = snapshot.Index;
        replica.AppliedTerm = snapshot.Term;
        replica.Core = core;
        ((ISimRaftReplica)replica).CheckedCommit = 0;
        CreateDriver(replica);
    }

    private void Deliver(int from, int to, ShardEnvelope envelope)
    {
        var replica = _replicas[envelope.Shard, to];
        if (replica?.Core is not { } core)
        {
            // The receiving node is down: a snapshot stream to it fails, and the sender must hear so (else
            // its leader waits for that snapshot forever and the replica never catches up).
            OnDropped(from, to, envelope);
            return;
        }

        if (envelope.CrossShard is { } message)
        {
            DeliverCrossShard(replica, envelope.FromShard, message);
            return;
        }

        var raft = envelope.Raft!;
        if (envelope.SnapshotData is { } data)
        {
            replica.ReceivedSnapshots[raft.Snapshot!.Index] = data;

            // The host's stream of the snapshot completed: tell the sending leader.
            _replicas[envelope.Shard, from]?.Core?.ReportSnapshot((ulong)to, SnapshotStatus.Finished);
        }

        core.Step(raft);
    }

    private void OnDropped(int from, int to, ShardEnvelope envelope)
    {
        if (envelope.SnapshotData is not null)
        {
            _replicas[envelope.Shard, from]?.Core?.ReportSnapshot((ulong)to, SnapshotStatus.Failed);
        }
    }
}
