using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Raft;

namespace RaftLedger.Simulation.MultiShard;

// The Raft side of the host: each replica's Ready handled in the contract's order, committed entries applied
// to the ledger, proposals matched to what is applied at their index.
public sealed partial class MultiShardCluster
{
    private void ProcessReadies(ShardReplica replica)
    {
        for (var round = 0; replica.Core is { HasReady: true } core; round++)
        {
            Invariant.Check(round < ReadyRoundsPerTickMax, "a core kept producing Readies within one tick");
            HandleReady(replica, core, core.GetReady());
            if (_crashAfterReady.Remove(replica.NodeId))
            {
                // An applied trap: the node dies before the host acts on what it just applied.
                Crash(replica.NodeId);
                return;
            }
        }

        UpdateLeadership(replica);
        DrainDriver(replica);
    }

    private void HandleReady(ShardReplica replica, RaftNode core, Ready ready)
    {
        var sendFirst = Options.SendBeforePersistWhenAllowed && ready.MessagesMaySendBeforePersist;
        if (sendFirst)
        {
            SendAll(replica, ready);
        }

        if (!Persist(replica, ready))
        {
            return;
        }

        if (!sendFirst)
        {
            SendAll(replica, ready);
        }

        if (ready.Snapshot is { } snapshot)
        {
            InstallSnapshot(replica, snapshot);
        }

        foreach (var entry in ready.CommittedEntries)
        {
            Apply(replica, entry);
        }

        core.Advance(ready);
        try
        {
            _checkers[replica.Shard].AfterReady(replica);
        }
        catch (SimulationFailureException e)
        {
            throw new SimulationFailureException($"shard {replica.Shard}: {e.Message}");
        }

        MaybeSnapshot(replica, core);
    }

    /// <summary>Writes the Ready's snapshot, entries and hard state, then syncs. False when the node crashed meanwhile.</summary>
    private bool Persist(ShardReplica replica, Ready ready)
    {
        var disk = replica.Disk;
        if (ready.Snapshot is { } snapshot)
        {
            Invariant.Check(replica.ReceivedSnapshots.TryGetValue(snapshot.Index, out var data), "the core installs only snapshots the host received");
            disk.Write(RaftDiskRecord.OfSnapshot(snapshot, data));
            replica.ReceivedSnapshots.Clear();
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

        var node = Node(replica.NodeId);
        if (node.CrashDuringNextPersist && disk.UnsyncedCount > 0)
        {
            Crash(node.Id);
            return false;
        }

        disk.Sync();
        return true;
    }

    private void SendAll(ShardReplica replica, Ready ready)
    {
        foreach (var message in ready.Messages)
        {
            byte[]? data = null;
            if (message.Type == MessageType.Snapshot)
            {
                var image = replica.Disk.Image;
                Invariant.Check(message.Snapshot is not null && message.Snapshot.Index == image.Storage.Snapshot.Index,
                    "a leader sends its latest durable snapshot");
                data = image.SnapshotData;
            }

            Network.Send(replica.NodeId, (int)message.To, new ShardEnvelope(replica.Shard, message, data, replica.Shard, null), NowTicks);
        }
    }

    private void InstallSnapshot(ShardReplica replica, SnapshotMetadata snapshot)
    {
        using (var stream = new MemoryStream(replica.Disk.Image.SnapshotData, writable: false))
        {
            replica.Ledger!.RestoreSnapshot(stream);
        }

        replica.AppliedIndex = snapshot.Index;
        replica.AppliedTerm = snapshot.Term;
        SnapshotsInstalled++;

        // Entries under the snapshot were never applied here one by one: their proposals' outcome is unknown.
        foreach (var (index, proposal) in replica.Waiting.ToArray())
        {
            if (index <= snapshot.Index)
            {
                replica.Waiting.Remove(index);
                ProposalFailed(replica, proposal);
            }
        }

        OnLedgerReplaced(replica);
    }

    private void Apply(ShardReplica replica, Entry entry)
    {
        try
        {
            _checkers[replica.Shard].OnApply(replica, entry);
        }
        catch (SimulationFailureException e)
        {
            throw new SimulationFailureException($"shard {replica.Shard}: {e.Message}");
        }

        Invariant.Check(entry.Index == replica.AppliedIndex + 1, "entries apply in order without gaps");
        replica.AppliedIndex = entry.Index;
        replica.AppliedTerm = entry.Term;
        var count = 0;
        if (entry.Type == EntryType.Normal && !entry.Data.IsEmpty)
        {
            count = replica.Ledger!.Apply(entry.Data.Span, _results, entry.Index).EventCount;
        }

        NoteApplied(replica);

        if (!replica.Waiting.Remove(entry.Index, out var proposal))
        {
            return;
        }

        if (proposal.Term != entry.Term)
        {
            ProposalFailed(replica, proposal);
            return;
        }

        ProposalApplied(replica, proposal, entry, _results.AsSpan(0, count));
    }

    private void MaybeSnapshot(ShardReplica replica, RaftNode core)
    {
        var image = replica.Disk.Image;
        if (Options.SnapshotEveryEntries <= 0 || replica.AppliedIndex < image.Storage.Snapshot.Index + (ulong)Options.SnapshotEveryEntries)
        {
            return;
        }

        Invariant.Check(replica.AppliedIndex == core.AppliedIndex, "host and core agree on the applied index after Advance");
        image.SnapshotAndCompact(replica.AppliedIndex, core.ConfState, LedgerSnapshot(replica.Ledger!), (ulong)Options.EntriesKeptAfterSnapshot);
    }

    /// <summary>
    /// A leader becomes ready to propose once it applied an entry of its own term (its no-op): by then the
    /// ledger holds every earlier term's effects and its last timestamp. A replica that stops leading is unready.
    /// </summary>
    private void UpdateLeadership(ShardReplica replica)
    {
        if (replica.Core is not { } core)
        {
            return;
        }

        var leads = core.Role == RaftRole.Leader;
        if (replica.ReadyTerm != 0 && (!leads || core.Term != replica.ReadyTerm))
        {
            replica.ReadyTerm = 0;
            replica.LastProposedTimestamp = 0;
            OnLeadershipChanged(replica, false, core.Term);
        }

        if (replica.ReadyTerm == 0 && leads && replica.AppliedTerm == core.Term)
        {
            replica.ReadyTerm = core.Term;
            replica.LastProposedTimestamp = replica.Ledger!.LastTimestamp;
            OnLeadershipChanged(replica, true, core.Term);
        }
    }

    /// <summary>
    /// Proposes <paramref name="command"/> on a ready leader after stamping its batch timestamp:
    /// T = max(cluster time, last applied + n, last proposed + n), so timestamps increase per shard.
    /// </summary>
    private ProposalResult ProposeStamped(ShardReplica replica, byte[] command, PendingProposal proposal)
    {
        Invariant.Check(replica.IsReadyLeader, "only a ready leader proposes");
        var count = LedgerCommand.TimestampCount(command);
        Invariant.Check(count >= 1 && (LedgerOperation)command[OperationOffset] == proposal.Operation, "the host proposes ledger commands of the operation it recorded");
        var floor = Math.Max(replica.Ledger!.LastTimestamp, replica.LastProposedTimestamp) + (ulong)count;
        var timestamp = Math.Max(ClusterTimeNs, floor);
        LedgerCommand.SetBatchTimestamp(command, timestamp);
        var result = replica.RunningCore.Propose(command);
        if (result.Status == ProposalStatus.Accepted)
        {
            Invariant.Check(result.FirstIndex == result.LastIndex, "one command is one entry");
            replica.LastProposedTimestamp = timestamp;
            // An earlier term's proposal at this index was truncated from this (now leading) replica's log and can
            // never commit; its apply will never come (seed 763 found it), so it fails now.
            if (replica.Waiting.Remove(result.LastIndex, out var overwritten))
            {
                Invariant.Check(overwritten.Term < result.Term, "a leader proposes each index once per term");
                ProposalFailed(replica, overwritten);
            }

            replica.Waiting.Add(result.LastIndex, proposal with { Term = result.Term });
            if (proposal.Operation == LedgerOperation.CrossShardFinish)
            {
                replica.LastFinishIndex = result.LastIndex;
                replica.LastFinishTerm = result.Term;
            }

            OnProposed(replica, proposal.Operation);
        }

        return result;
    }

    /// <summary>Where <see cref="LedgerCommand"/> keeps the operation byte (after the version byte).</summary>
    private const int OperationOffset = 1;
}
