using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Simulation;

/// <summary>A message on the simulated wire: a Raft message, plus the state-machine bytes for a snapshot.</summary>
public sealed record SimEnvelope(Message Message, byte[]? SnapshotData);

/// <summary>
/// One simulated server hosting one Raft group: its disk survives crashes; everything else (the core, the
/// state machine, requests waiting for an answer, snapshot bytes received but not installed) is volatile
/// and is rebuilt from the disk on restart.
/// </summary>
public sealed class SimNode : ISimRaftReplica
{
    public SimNode(int id, SimDisk<RaftDiskRecord, RaftDiskImage> disk)
    {
        Invariant.Check(id >= 1);
        Id = id;
        Disk = disk;
    }

    public int Id { get; }

    public SimDisk<RaftDiskRecord, RaftDiskImage> Disk { get; }

    /// <summary>The running core, or null while the node is down.</summary>
    public RaftNode? Core { get; internal set; }

    /// <summary>The state machine, rebuilt on restart from the durable snapshot plus committed entries.</summary>
    public KvStateMachine? StateMachine { get; internal set; }

    public bool IsUp => Core is not null;

    /// <summary>Bumped on every restart, so stale callbacks to an earlier life can be recognised.</summary>
    public int Incarnation { get; internal set; }

    /// <summary>When set, the next Ready's writes are not synced: the node loses power in the middle of persisting.</summary>
    public bool CrashDuringNextPersist { get; set; }

    /// <summary>When set, the node loses power while persisting the next snapshot it installs from a leader.</summary>
    public bool CrashWhenInstallingSnapshot { get; set; }

    /// <summary>Client requests submitted here and not yet answered: client id -> sequence.</summary>
    internal Dictionary<int, long> WaitingRequests { get; } = [];

    /// <summary>Read indexes confirmed by the leader, waiting for this node to apply up to them: (index, client, sequence).</summary>
    internal List<(ulong Index, int Client, long Sequence)> ConfirmedReads { get; } = [];

    /// <summary>Snapshot bytes received from a leader, by snapshot index, until the core asks to install them.</summary>
    internal Dictionary<ulong, byte[]> ReceivedSnapshots { get; } = [];

    /// <summary>Highest HardState.Commit of this node the checker has already recorded.</summary>
    internal ulong CheckedCommit { get; set; }

    ulong ISimRaftReplica.CheckedCommit
    {
        get => CheckedCommit;
        set => CheckedCommit = value;
    }

    public MemoryLogStorage Storage => Disk.Image.Storage;

    public RaftNode RunningCore => Core ?? throw new InvalidOperationException($"node {Id} is down");
}
