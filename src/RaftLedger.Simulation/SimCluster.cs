using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Simulation;

/// <summary>
/// N real Raft cores, each on its own simulated node with its own disk, over a fake network, with a
/// replicated key-value state machine and clients on top. One call to <see cref="RunTick"/> is one tick of
/// logical time: due messages are delivered, every running core ticks, clients act, and every node handles
/// its Ready following the contract (persist and sync, then send, then apply, then Advance). Faults are
/// injected by the caller (a scenario test or <see cref="ChaosRun"/>); <see cref="Checker"/> watches safety
/// throughout. Same options, same seed: same run.
/// </summary>
public sealed class SimCluster
{
    /// <summary>Ready rounds per node per tick; a core that keeps producing Readies in one tick is a bug.</summary>
    public const int ReadyRoundsPerTickMax = 16;

    private readonly SimRandom _clientRandom;
    private readonly SimRandom _diskRandom;
    private readonly SimRandom _coreSeeds;
    private readonly List<SimNode> _nodes = [];
    private readonly List<SimClient> _clients = [];
    private readonly ulong[] _voters;
    private long _nextFullCheckTick;

    public SimCluster(SimClusterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        var root = new SimRandom(options.Seed);
        Network = new SimNetwork<SimEnvelope>(options.NodeCount, root.Fork());
        Network.Dropped += OnDropped;
        _clientRandom = root.Fork();
        _diskRandom = root.Fork();
        _coreSeeds = root.Fork();
        _voters = new ulong[options.NodeCount];
        var emptyState = new KvStateMachine().Snapshot();
        for (var id = 1; id <= options.NodeCount; id++)
        {
            _voters[id - 1] = (ulong)id;
            var disk = new SimDisk<RaftDiskRecord, RaftDiskImage>(new RaftDiskImage(emptyState))
            {
                TornWriteProbability = options.TornWriteProbability,
            };
            _nodes.Add(new SimNode(id, disk));
        }

        for (var c = 1; c <= options.ClientCount; c++)
        {
            _clients.Add(new SimClient(c));
        }

        Checker = new SafetyChecker(_nodes);
        for (var id = 1; id <= options.NodeCount; id++)
        {
            Restart(id);
        }

        _nextFullCheckTick = options.FullCheckEveryTicks;
    }

    public SimClusterOptions Options { get; }

    public SimNetwork<SimEnvelope> Network { get; }

    public SafetyChecker Checker { get; }

    public OperationHistory<KvInput, long> History { get; } = new();

    public IReadOnlyList<SimNode> Nodes => _nodes;

    public IReadOnlyList<SimClient> Clients => _clients;

    public long NowTicks { get; private set; }

    /// <summary>Receives a line per message sent and delivered, crash and restart, when set (replay debugging).</summary>
    public Action<string>? Trace { get; set; }

    /// <summary>When false, idle clients start no new operation (outstanding ones are still retried).</summary>
    public bool ClientsEnabled { get; set; } = true;

    public long CrashCount { get; private set; }

    public long AppliedCommandCount { get; private set; }

    /// <summary>Snapshots received from a leader and installed (not local compactions).</summary>
    public long SnapshotsInstalled { get; private set; }

    public SimNode Node(int id) => _nodes[id - 1];

    /// <summary>Advances logical time by one tick.</summary>
    public void RunTick()
    {
        NowTicks++;
        Network.DeliverDue(NowTicks, Deliver);
        foreach (var node in _nodes)
        {
            node.Core?.Tick();
        }

        ClientsAct();
        foreach (var node in _nodes)
        {
            ProcessReadies(node);
        }

        if (NowTicks >= _nextFullCheckTick)
        {
            Checker.CheckLogs();
            _nextFullCheckTick = NowTicks + Options.FullCheckEveryTicks;
        }
    }

    public void RunTicks(int ticks)
    {
        for (var i = 0; i < ticks; i++)
        {
            RunTick();
        }
    }

    /// <summary>Runs until <paramref name="condition"/> holds (checked after each tick); false if it did not within the limit.</summary>
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

    /// <summary>The running leader with the highest term that no running node has passed, or 0.</summary>
    public int Leader()
    {
        ulong termMax = 0;
        foreach (var node in _nodes)
        {
            termMax = Math.Max(termMax, node.Core?.Term ?? 0);
        }

        foreach (var node in _nodes)
        {
            if (node.Core is { Role: RaftRole.Leader } core && core.Term == termMax)
            {
                return node.Id;
            }
        }

        return 0;
    }

    /// <summary>Power loss on <paramref name="id"/>: the core and all volatile state vanish; unsynced writes may be lost.</summary>
    public void Crash(int id)
    {
        var node = Node(id);
        if (!node.IsUp)
        {
            return;
        }

        Trace?.Invoke($"{NowTicks} crash {id}");
        node.Disk.Crash(_diskRandom);
        node.Core = null;
        node.StateMachine = null;
        node.WaitingRequests.Clear();
        node.ReceivedSnapshots.Clear();
        node.ConfirmedReads.Clear();
        node.CrashDuringNextPersist = false;
        node.CrashWhenInstallingSnapshot = false;
        CrashCount++;
    }

    /// <summary>Starts <paramref name="id"/> from what its disk holds (bootstrapping a brand-new node).</summary>
    public void Restart(int id)
    {
        var node = Node(id);
        if (node.IsUp)
        {
            return;
        }

        Trace?.Invoke($"{NowTicks} restart {id}");
        var image = node.Disk.Image;
        var config = Options.RaftConfig((ulong)id);
        Invariant.Check(config.Id == (ulong)id, "the RaftConfig factory must use the id it is given");
        var applied = image.Storage.Snapshot.Index;
        var core = new RaftNode(WithApplied(config, applied), image.Storage, new DeterministicRandom(_coreSeeds.NextUInt64()));
        if (image.IsEmpty)
        {
            core.Bootstrap(_voters);
        }

        var stateMachine = new KvStateMachine();
        stateMachine.Restore(image.SnapshotData);
        Invariant.Check(stateMachine.AppliedIndex == applied, "the durable snapshot bytes belong to the durable snapshot index");
        node.StateMachine = stateMachine;
        node.Core = core;
        node.Incarnation++;
        node.CheckedCommit = 0;
    }

    /// <summary>One line per node (role, term, leader, log, commit, applied) and the network state, for failure reports.</summary>
    public string Describe()
    {
        var text = new System.Text.StringBuilder($"tick {NowTicks}, network {(Network.IsHealed ? "healed" : "partitioned")}, {Network.InFlightCount} in flight\n");
        foreach (var node in _nodes)
        {
            var storage = node.Storage;
            storage.TryGetTerm(storage.LastIndex, out var lastTerm);
            text.Append($"  node {node.Id}: ");
            if (node.Core is { } core)
            {
                var status = core.Status();
                text.Append($"{status.Role} term {status.Term} vote {status.Vote} leader {status.Leader} commit {status.Commit} applied {status.Applied} ");
            }
            else
            {
                text.Append("DOWN ");
            }

            text.Append($"log [{storage.FirstIndex}..{storage.LastIndex}] last term {lastTerm}, durable {storage.HardState}\n");
        }

        return text.ToString();
    }

    /// <summary>Asks <paramref name="id"/> (if running) to hand leadership to <paramref name="to"/>.</summary>
    public void TransferLeadership(int id, int to)
    {
        Trace?.Invoke($"{NowTicks} transfer {id}->{to}");
        Node(id).Core?.TransferLeadership((ulong)to);
    }

    /// <summary>Proposes raw bytes directly on a node (scenario tests); returns the core's answer.</summary>
    public ProposalResult Propose(int id, byte[] data) => Node(id).RunningCore.Propose(data);

    /// <summary>Throws when the recorded client history is not linearizable.</summary>
    public void CheckLinearizable()
    {
        var violation = KvLinearizability.FindViolation(History.Operations);
        if (violation is { } v)
        {
            throw new SimulationFailureException(v.Outcome == LinearizabilityOutcome.Unknown
                ? $"linearizability check of key {v.Key} exceeded its search budget (history too concurrent)"
                : $"client history of key {v.Key} is not linearizable");
        }
    }

    /// <summary>Running nodes that applied the same index hold the same state.</summary>
    public void CheckReplicasAgree()
    {
        var byIndex = new Dictionary<ulong, (int Node, byte[] State)>();
        foreach (var node in _nodes)
        {
            if (node.StateMachine is not { } sm)
            {
                continue;
            }

            var state = sm.Snapshot();
            if (byIndex.TryGetValue(sm.AppliedIndex, out var other) && !other.State.AsSpan().SequenceEqual(state))
            {
                throw new SimulationFailureException($"nodes {other.Node} and {node.Id} applied up to {sm.AppliedIndex} but hold different states");
            }

            byIndex[sm.AppliedIndex] = (node.Id, state);
        }
    }

    private static string Describe(Message m) =>
        $"{m.Type} {m.From}->{m.To} term {m.Term} index {m.Index} logTerm {m.LogTerm} commit {m.Commit} entries {m.Entries.Count}" +
        (m.Reject ? $" REJECT hint {m.RejectHint}" : "");

    /// <summary>A copy of <paramref name="c"/> restarting after <paramref name="applied"/> (RaftConfig has no `with`).</summary>
    internal static RaftConfig WithApplied(RaftConfig c, ulong applied) => new()
    {
        Id = c.Id,
        ElectionTimeoutTicks = c.ElectionTimeoutTicks,
        HeartbeatTicks = c.HeartbeatTicks,
        InflightMessagesMax = c.InflightMessagesMax,
        InflightBytesMax = c.InflightBytesMax,
        MessageBytesMax = c.MessageBytesMax,
        UncommittedBytesMax = c.UncommittedBytesMax,
        PreVote = c.PreVote,
        CheckQuorum = c.CheckQuorum,
        ReadOnlyMode = c.ReadOnlyMode,
        ProposalForwarding = c.ProposalForwarding,
        ReadyCommittedBytesMax = c.ReadyCommittedBytesMax,
        Applied = applied,
    };

    private void Deliver(int from, int to, SimEnvelope envelope)
    {
        var node = Node(to);
        if (node.Core is not { } core)
        {
            return;
        }

        Trace?.Invoke($"{NowTicks} deliver {Describe(envelope.Message)}");
        if (envelope.SnapshotData is { } data)
        {
            var snapshot = envelope.Message.Snapshot!;
            node.ReceivedSnapshots[snapshot.Index] = data;

            // The host's stream of the snapshot completed: tell the sending leader.
            Node(from).Core?.ReportSnapshot((ulong)to, SnapshotStatus.Finished);
        }

        core.Step(envelope.Message);
    }

    private void OnDropped(int from, int to, SimEnvelope envelope)
    {
        if (envelope.SnapshotData is not null)
        {
            Node(from).Core?.ReportSnapshot((ulong)to, SnapshotStatus.Failed);
        }
    }

    private void ProcessReadies(SimNode node)
    {
        for (var round = 0; node.Core is { HasReady: true } core; round++)
        {
            Invariant.Check(round < ReadyRoundsPerTickMax, "a core kept producing Readies within one tick");
            HandleReady(node, core, core.GetReady());
        }
    }

    private void HandleReady(SimNode node, RaftNode core, Ready ready)
    {
        var sendFirst = Options.HostBug == SimHostBug.SendBeforePersist ||
            (Options.SendBeforePersistWhenAllowed && ready.MessagesMaySendBeforePersist);
        if (sendFirst)
        {
            SendAll(node, ready);
        }

        if (!Persist(node, ready))
        {
            return;
        }

        if (!sendFirst)
        {
            SendAll(node, ready);
        }

        if (ready.Snapshot is { } snapshot)
        {
            node.StateMachine!.Restore(node.Disk.Image.SnapshotData);
            SnapshotsInstalled++;
            Invariant.Check(node.StateMachine.AppliedIndex == snapshot.Index, "installed snapshot bytes match the snapshot index");
        }

        foreach (var entry in ready.CommittedEntries)
        {
            Apply(node, entry);
        }

        foreach (var read in ready.ReadStates)
        {
            var context = read.Context.Span;
            node.ConfirmedReads.Add((read.Index, BinaryPrimitives.ReadInt32LittleEndian(context), BinaryPrimitives.ReadInt64LittleEndian(context[4..])));
        }

        ServeConfirmedReads(node);
        core.Advance(ready);
        Checker.AfterReady(node);
        MaybeSnapshot(node, core);
    }

    /// <summary>Writes the Ready's snapshot, entries and hard state, then syncs. False when the node crashed meanwhile.</summary>
    private bool Persist(SimNode node, Ready ready)
    {
        var disk = node.Disk;
        if (ready.Snapshot is { } snapshot)
        {
            Invariant.Check(node.ReceivedSnapshots.TryGetValue(snapshot.Index, out var data), "the core installs only snapshots the host received");
            disk.Write(RaftDiskRecord.OfSnapshot(snapshot, data));
            node.ReceivedSnapshots.Clear();
        }

        foreach (var entry in ready.Entries)
        {
            disk.Write(RaftDiskRecord.OfEntry(entry));
        }

        // As the node's host does: a hard state that only moved the commit index is not written (Ready.MustSync).
        if (ready.HardState is { } hardState && ready.MustSync)
        {
            disk.Write(RaftDiskRecord.OfHardState(hardState));
        }

        if ((node.CrashDuringNextPersist && disk.UnsyncedCount > 0) || (node.CrashWhenInstallingSnapshot && ready.Snapshot is not null))
        {
            Crash(node.Id);
            return false;
        }

        disk.Sync();
        return true;
    }

    private void SendAll(SimNode node, Ready ready)
    {
        foreach (var message in ready.Messages)
        {
            Send(node, message);
        }
    }

    private void Send(SimNode node, Message message)
    {
        byte[]? data = null;
        if (message.Type == MessageType.Snapshot)
        {
            var image = node.Disk.Image;
            Invariant.Check(message.Snapshot is not null && message.Snapshot.Index == image.Storage.Snapshot.Index,
                "a leader sends its latest durable snapshot");
            data = image.SnapshotData;
        }

        Trace?.Invoke($"{NowTicks} send {Describe(message)}");
        Network.Send(node.Id, (int)message.To, new SimEnvelope(message, data), NowTicks);
    }

    private void Apply(SimNode node, Entry entry)
    {
        Checker.OnApply(node, entry);
        var sm = node.StateMachine!;
        var outcome = sm.Apply(entry.Index, entry.Type == EntryType.Normal ? entry.Data.Span : default);
        if (outcome is not { } applied)
        {
            return;
        }

        AppliedCommandCount++;
        var clientId = applied.Command.ClientId;
        if (!node.WaitingRequests.TryGetValue(clientId, out var sequence) || sequence != applied.Command.Sequence)
        {
            return;
        }

        node.WaitingRequests.Remove(clientId);
        var client = _clients[clientId - 1];
        if (!client.IsIdle && client.Sequence == sequence)
        {
            CompleteClient(client, applied.Result);
        }
    }

    /// <summary>Answers ReadIndex reads whose read index this node has applied: reading now is linearizable.</summary>
    private void ServeConfirmedReads(SimNode node)
    {
        var sm = node.StateMachine!;
        var reads = node.ConfirmedReads;
        for (var i = reads.Count - 1; i >= 0; i--)
        {
            var (index, clientId, sequence) = reads[i];
            if (index > sm.AppliedIndex)
            {
                continue;
            }

            reads.RemoveAt(i);
            var client = _clients[clientId - 1];
            if (!client.IsIdle && client.Sequence == sequence)
            {
                Invariant.Check(client.Input.Kind == KvOperationKind.Get);
                CompleteClient(client, sm.Read(client.Input.Key));
            }
        }
    }

    private void CompleteClient(SimClient client, long result)
    {
        History.Complete(client.Outstanding, result);
        client.Outstanding = -1;
        client.NextAttemptTick = NowTicks + _clientRandom.Next(Options.ClientThinkTicksMax + 1);
    }

    private void MaybeSnapshot(SimNode node, RaftNode core)
    {
        var image = node.Disk.Image;
        var applied = node.StateMachine!.AppliedIndex;
        if (Options.SnapshotEveryEntries <= 0 || applied < image.Storage.Snapshot.Index + (ulong)Options.SnapshotEveryEntries)
        {
            return;
        }

        Invariant.Check(applied == core.AppliedIndex, "host and core agree on the applied index after Advance");
        image.SnapshotAndCompact(applied, core.ConfState, node.StateMachine.Snapshot(), (ulong)Options.EntriesKeptAfterSnapshot);
    }

    private void ClientsAct()
    {
        foreach (var client in _clients)
        {
            if (NowTicks < client.NextAttemptTick)
            {
                continue;
            }

            if (client.IsIdle)
            {
                if (!ClientsEnabled)
                {
                    continue;
                }

                client.Sequence++;
                client.Input = NextInput(client);
                client.Outstanding = History.Invoke(client.Id, client.Input);
            }
            else
            {
                // A timeout: the node used may be partitioned or its proposal lost; half the time ask another.
                client.Retries++;
                if (_clientRandom.Chance(0.5))
                {
                    client.Target = 0;
                }
            }

            Submit(client);
        }
    }

    /// <summary>Client, sequence and attempt: unique among outstanding read requests, as ReadIndex requires.</summary>
    private static byte[] ReadContext(SimClient client)
    {
        var context = new byte[20];
        BinaryPrimitives.WriteInt32LittleEndian(context, client.Id);
        BinaryPrimitives.WriteInt64LittleEndian(context.AsSpan(4), client.Sequence);
        BinaryPrimitives.WriteInt64LittleEndian(context.AsSpan(12), client.Attempts);
        return context;
    }

    private KvInput NextInput(SimClient client)
    {
        var key = (long)_clientRandom.Next(Options.KeyCount) + 1;
        return _clientRandom.Next(10) switch
        {
            < 4 => new KvInput(KvOperationKind.Put, key, (client.Id * 1_000_000_000L) + client.Sequence),
            < 7 => new KvInput(KvOperationKind.Get, key, 0),
            _ => new KvInput(KvOperationKind.Add, key, _clientRandom.Between(1, 100)),
        };
    }

    private void Submit(SimClient client)
    {
        client.Attempts++;
        var target = client.Target != 0 ? client.Target : _clientRandom.Between(1, _nodes.Count + 1);
        var node = Node(target);
        if (node.Core is not { } core)
        {
            // Connection refused: try another node soon.
            client.Target = 0;
            client.NextAttemptTick = NowTicks + 2;
            return;
        }

        if (Options.HostBug == SimHostBug.StaleLocalReads && client.Input.Kind == KvOperationKind.Get)
        {
            History.Complete(client.Outstanding, node.StateMachine!.Read(client.Input.Key));
            client.Outstanding = -1;
            client.NextAttemptTick = NowTicks + 1;
            return;
        }

        var result = Options.ReadIndexReads && client.Input.Kind == KvOperationKind.Get
            ? core.ReadIndex(ReadContext(client))
            : core.Propose(new KvCommand(client.Id, client.Sequence, client.Input).Encode());
        switch (result.Status)
        {
            case ProposalStatus.Accepted or ProposalStatus.Forwarded:
                node.WaitingRequests[client.Id] = client.Sequence;
                client.Target = result.Status == ProposalStatus.Forwarded ? (int)result.LeaderHint : target;
                client.NextAttemptTick = NowTicks + Options.RequestTimeoutTicks;
                break;
            case ProposalStatus.NotLeader when result.LeaderHint != 0:
                client.Target = (int)result.LeaderHint;
                client.NextAttemptTick = NowTicks + 1;
                break;
            default:
                client.Target = 0;
                client.NextAttemptTick = NowTicks + _clientRandom.Between(2, 10);
                break;
        }
    }
}
