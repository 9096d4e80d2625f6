using Microsoft.Extensions.Logging;
using RaftLedger.Common;
using RaftLedger.Node.Meta;
using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>The meta group as this node last saw it (read by any thread; may lag one round).</summary>
public sealed record MetaView(IReadOnlyList<ulong> Voters, bool Hosted, ulong Leader, ulong Term, ulong Commit, ulong Applied, RaftRole Role);

/// <summary>The latest meta state this node knows: the committed cluster map (null before bootstrap) and its applied index.</summary>
public sealed record MetaSnapshot(ClusterMap? Map, ulong AppliedIndex, ulong AppliedTerm);

/// <summary>
/// The meta group (Raft group 0) on this node. It runs in the same loop as the shard groups: its Ready joins the
/// round's single WAL write, its messages the same peer batches; its entries are applied to <see cref="MetaState"/>,
/// and after each round that applied any, the state is saved to cluster.json (fsync) before the core advances. Meta
/// entries are rare (a bootstrap, one registration per node start, one no-op per meta election), so that save does
/// not burden the shard groups. The meta log is compacted up to the saved state every
/// <see cref="HostOptions.MetaSnapshotEntries"/> entries; a follower behind the compaction gets the encoded state
/// as a one-chunk snapshot through the shard snapshot path. The leader balancer skips group 0 deliberately (any
/// voter may lead it; moving it costs a hand-off for nothing); fast failover and planned hand-off include it.
/// </summary>
public sealed partial class MultiRaftHost
{
    private readonly List<(ulong Index, MetaApplyResult Result)> metaIgnored = [];
    private MetaReplica? meta;
    private ClusterMap? metaLocalMap;
    private MetaView? metaView;
    private MetaSnapshot metaSnapshot = new(null, 0, 0);

    /// <summary>Called on the scheduler thread after a round moved the meta state (the new state; do not block).</summary>
    internal Action<MetaSnapshot>? MetaChanged { get; set; }

    /// <summary>The meta group's state as of the last round; null before <see cref="UseMeta"/>.</summary>
    public MetaView? Meta => Volatile.Read(ref metaView);

    /// <summary>The latest meta state this node applied or learned from a member.</summary>
    public MetaSnapshot LatestMeta => Volatile.Read(ref metaSnapshot);

    /// <summary>Before Start: the meta state to resume from, and this node's replica of group 0 when it is a voter.</summary>
    internal void UseMeta(MetaReplica? replica, ulong[] voters, ClusterMap localMap, MetaState state)
    {
        Invariant.Check(loop is null, "the meta group is attached before the loop starts");
        meta = replica;
        metaLocalMap = localMap;
        metaSnapshot = new MetaSnapshot(state.Map, state.AppliedIndex, state.AppliedTerm);
        metaView = new MetaView(voters, replica is not null, 0, 0, 0, state.AppliedIndex, RaftRole.Follower);
    }

    /// <summary>
    /// A non-member learned a newer meta state from a member: publish it and persist it (no log to compact here).
    /// Returns false when it is not newer than what this node has.
    /// </summary>
    internal bool LearnMeta(MetaState state)
    {
        Invariant.Check(meta is null, "members apply the meta log themselves");
        var current = LatestMeta;
        if (state.Map is null || state.AppliedIndex <= current.AppliedIndex)
        {
            return false;
        }

        if (MapConflict(state) is { } conflict)
        {
            // This runs on the meta client's task: the scheduler loop is what must end, so it throws there.
            inbox.Writer.TryWrite(new HostInput.Query(() => throw conflict));
            return false;
        }

        ClusterMapFile.Save(options.DataDirectory, metaLocalMap!, state);
        var learned = new MetaSnapshot(state.Map, state.AppliedIndex, state.AppliedTerm);
        Volatile.Write(ref metaSnapshot, learned);
        Volatile.Write(ref metaView, metaView! with { Applied = state.AppliedIndex, Commit = state.AppliedIndex });
        MetaChanged?.Invoke(learned);
        return true;
    }

    /// <summary>
    /// Proposes a meta command on this node's meta replica. NotLeader (with a hint) when this node does not lead the
    /// meta group; Ok once the command is applied; otherwise a status saying nothing was applied or it is unknown.
    /// </summary>
    public async Task<ShardCallResult> ProposeMetaAsync(byte[] command, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (!MetaCodec.TryDecode(command, out _, out var error))
        {
            return ShardCallResult.Fail(ShardCallStatus.Unavailable, "malformed meta command: " + error);
        }

        var proposal = new MetaProposal(command);
        if (!inbox.Writer.TryWrite(new HostInput.MetaPropose(proposal)))
        {
            return ShardCallResult.Fail(ShardCallStatus.Unavailable, "the node is stopping; retry on another node");
        }

        try
        {
            return await proposal.Done.Task.WaitAsync(options.RequestTimeout, options.Time, cancel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            return ShardCallResult.Fail(ShardCallStatus.OutcomeUnknown, "the meta group did not confirm the command in time; retry");
        }
    }

    private void OnMetaPropose(MetaProposal proposal)
    {
        if (meta is null)
        {
            var voters = metaView!.Voters;
            proposal.Done.TrySetResult(ShardCallResult.Fail(ShardCallStatus.NotLeader, $"node {options.NodeId} is not in the meta group", voters[0]));
            return;
        }

        meta.Enqueue(proposal);
    }

    /// <summary>Part of the round: proposes, takes the meta Ready and adds its writes to the round's single WAL write.</summary>
    private Ready? CollectMetaReady()
    {
        if (meta is null)
        {
            return null;
        }

        meta.BeforeReady();
        if (!meta.Raft.HasReady)
        {
            return null;
        }

        var ready = meta.Raft.GetReady();
        if (ready.Snapshot is { } snapshot)
        {
            InstallMetaSnapshot(snapshot);
        }

        if (ready.Entries.Count > 0 || ready.HardState is not null || ready.Snapshot is not null)
        {
            persists.Add(new GroupPersist(ClusterMap.MetaGroupId, ready.Entries, ready.HardState, ready.Snapshot));
        }

        return ready;
    }

    private void SendMetaMessages(Ready ready)
    {
        Invariant.Check(meta is not null && sender is not null);
        foreach (var message in ready.Messages)
        {
            if (message.Type == MessageType.Snapshot)
            {
                SendMetaSnapshot(message);
            }
            else if (!sender!.Send(message.To, ClusterMap.MetaGroupId, MessageCodec.Encode(message)))
            {
                meta!.Raft.ReportUnreachable(message.To);
            }
        }
    }

    /// <summary>After the WAL write: applies committed meta entries, saves the state, queues compaction, advances.</summary>
    private void ApplyMetaReady(Ready ready)
    {
        Invariant.Check(meta is not null);
        metaIgnored.Clear();
        var moved = meta!.Apply(ready.CommittedEntries, metaIgnored);
        foreach (var (index, result) in metaIgnored)
        {
            logger.LogError("meta entry {Index} ignored ({Status}): {Detail}", index, result.Status, result.Detail);
        }

        if (moved)
        {
            OnMetaStateMoved();
        }

        meta.Raft.Advance(ready);
    }

    private void OnMetaStateMoved()
    {
        var state = meta!.State;
        ThrowOnMapConflict(state);
        if (options.Durable)
        {
            ClusterMapFile.Save(options.DataDirectory, metaLocalMap!, state);
            MaybeCompactMeta(state);
        }

        var before = LatestMeta;
        var now = new MetaSnapshot(state.Map, state.AppliedIndex, state.AppliedTerm);
        Volatile.Write(ref metaSnapshot, now);
        if (now.Map is not null && (before.Map is null || !before.Map.SameAs(now.Map)))
        {
            logger.LogInformation("meta: cluster map at index {Index} ({Nodes} nodes, {Shards} shards)", now.AppliedIndex, now.Map.Nodes.Count, now.Map.ShardCount);
            MetaChanged?.Invoke(now);
        }
    }

    /// <summary>
    /// Ends the scheduler loop (before the state is saved) when the meta group committed a map that configures the
    /// cluster differently from the map this node runs: its shard replicas were created from its own map, and serving
    /// them next to a cluster that placed other shards would answer from state the cluster does not agree on. Nodes
    /// started with the same flags never get here: every founder computes the same bootstrap map.
    /// </summary>
    private void ThrowOnMapConflict(MetaState state)
    {
        if (MapConflict(state) is { } conflict)
        {
            throw conflict;
        }
    }

    private ClusterMapConflictException? MapConflict(MetaState state) =>
        state.Map is not null && metaLocalMap!.ConfigurationDifference(state.Map) is { } difference
            ? new ClusterMapConflictException(options.NodeId, state.AppliedIndex, difference)
            : null;

    /// <summary>The saved state stands for the log up to its applied index: let the WAL drop the entries below.</summary>
    private void MaybeCompactMeta(MetaState state)
    {
        var storage = SnapshotStorage;
        var compacted = compactedIndexes.TryGetValue(ClusterMap.MetaGroupId, out var index) ? index : log.Group(ClusterMap.MetaGroupId).Snapshot.Index;
        if (storage is null || state.AppliedIndex < compacted + (ulong)options.MetaSnapshotEntries)
        {
            return;
        }

        storage.SetCompactableIndex(ClusterMap.MetaGroupId, state.AppliedIndex);
        pendingMarkers.Add(new GroupPersist(ClusterMap.MetaGroupId, [], null, new SnapshotMetadata(state.AppliedIndex, state.AppliedTerm, meta!.Raft.ConfState)));
        compactedIndexes[ClusterMap.MetaGroupId] = state.AppliedIndex;
    }

    /// <summary>Leader: a follower needs compacted meta entries; send the current state (small: one chunk).</summary>
    private void SendMetaSnapshot(Message message)
    {
        var storage = SnapshotStorage;
        var state = meta!.State;
        snapshotTasks.RemoveAll(t => t.IsCompleted);
        if (storage is null || sender is not ISnapshotSender streamer || snapshotTasks.Count >= HostOptions.SnapshotSendsMax ||
            streamsRunning.Contains((ClusterMap.MetaGroupId, message.To)) ||
            state.AppliedIndex < message.Snapshot!.Index)
        {
            meta.Raft.ReportSnapshot(message.To, SnapshotStatus.Failed); // The core probes and asks again later.
            return;
        }

        var relabeled = message with { Snapshot = new SnapshotMetadata(state.AppliedIndex, state.AppliedTerm, message.Snapshot.ConfState) };
        var bytes = state.Encode();
        logger.LogInformation("meta: sending a snapshot at {Index} to node {Node}", state.AppliedIndex, message.To);
        StreamSnapshot(streamer, ClusterMap.MetaGroupId, message.To, state.AppliedIndex, state.AppliedTerm, MessageCodec.Encode(relabeled),
            Path.Combine(storage.SnapshotDirectory, $"out-g0-n{message.To}-{state.AppliedIndex}.snap"), file => file.Write(bytes), null);
    }

    /// <summary>Follower: the core accepted a meta snapshot; the state becomes the received one and is saved before the WAL marker.</summary>
    private void InstallMetaSnapshot(SnapshotMetadata snapshot)
    {
        Invariant.Check(receivedSnapshots.TryGetValue(ClusterMap.MetaGroupId, out var file) && file.Index == snapshot.Index,
            "the core only restores snapshots whose data this host received");
        var path = receivedSnapshots[ClusterMap.MetaGroupId].Path;
        receivedSnapshots.Remove(ClusterMap.MetaGroupId);
        var decoded = MetaState.TryDecode(File.ReadAllBytes(path), out var state, out var error);
        File.Delete(path);
        Invariant.Check(decoded, $"a meta snapshot from the leader decodes ({error})");
        Invariant.Check(state!.AppliedIndex == snapshot.Index && state.AppliedTerm == snapshot.Term, "the leader labels a meta snapshot with its state's index");
        ThrowOnMapConflict(state);
        meta!.InstallSnapshot(state);
        // Saved before the marker; a crash in between is repaired at start (NodeHost: the saved state is ahead of the log).
        ClusterMapFile.Save(options.DataDirectory, metaLocalMap!, state);
        SnapshotStorage!.SetCompactableIndex(ClusterMap.MetaGroupId, snapshot.Index);
        compactedIndexes[ClusterMap.MetaGroupId] = snapshot.Index;
        Interlocked.Increment(ref snapshotsInstalled);
        logger.LogInformation("meta: installed a snapshot at {Index}", snapshot.Index);
        Volatile.Write(ref metaSnapshot, new MetaSnapshot(state.Map, state.AppliedIndex, state.AppliedTerm));
        if (state.Map is not null)
        {
            MetaChanged?.Invoke(LatestMeta);
        }
    }

    private void PublishMetaView()
    {
        if (meta is null)
        {
            return;
        }

        var raft = meta.Raft;
        var before = metaView!;
        if (before.Leader == raft.Leader && before.Term == raft.Term && before.Commit == raft.CommitIndex && before.Applied == meta.State.AppliedIndex && before.Role == raft.Role)
        {
            return;
        }

        Volatile.Write(ref metaView, before with { Leader = raft.Leader, Term = raft.Term, Commit = raft.CommitIndex, Applied = meta.State.AppliedIndex, Role = raft.Role });
        if (before.Leader != raft.Leader || before.Term != raft.Term)
        {
            logger.LogInformation("meta: term {Term}, leader {Leader}, this node {Role} (was term {OldTerm}, leader {OldLeader})",
                raft.Term, raft.Leader, raft.Role, before.Term, before.Leader);
        }
    }
}
