using RaftLedger.Raft;

namespace RaftLedger.Simulation;

/// <summary>
/// What <see cref="SafetyChecker"/> needs to see of one simulated Raft group member: its id in the group,
/// its durable log, its running core, and how far the checker has already recorded its commits. A
/// single-group <see cref="SimNode"/> and a replica of one shard in a multi-shard cluster both are one.
/// </summary>
public interface ISimRaftReplica
{
    /// <summary>The member's Raft id within its group.</summary>
    int Id { get; }

    /// <summary>The durable log (only what reached the simulated disk).</summary>
    MemoryLogStorage Storage { get; }

    /// <summary>The running core; throws while the member is down.</summary>
    RaftNode RunningCore { get; }

    /// <summary>Highest durable commit index of this member the checker has recorded; 0 after a restart.</summary>
    ulong CheckedCommit { get; set; }
}
