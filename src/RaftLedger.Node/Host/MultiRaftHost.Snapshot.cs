using Grpc.Core;
using Microsoft.Extensions.Logging;
using RaftLedger.Common;
using RaftLedger.Node.Transport;
using RaftLedger.Node.Transport.Protos;
using RaftLedger.Raft;
using RaftLedger.Storage.Rocks;

namespace RaftLedger.Node.Host;

/// <summary>
/// Raft snapshots and log compaction on durable storage.
/// <list type="bullet">
/// <item>Compaction: every <see cref="HostOptions.SnapshotCheckTicks"/>, if a shard applied at least
/// <see cref="HostOptions.SnapshotEntries"/> entries since its last snapshot, or any entry while its log keeps the WAL's
/// oldest segment alive and the WAL holds more segments than it likes (<see cref="IShardSnapshotStorage.GroupsPinningLog"/>:
/// large entries fill segments long before 10,000 of them are applied), RocksDB is flushed off the loop
/// (<see cref="IShardSnapshotStorage.MakeDurable"/>); then each such group's WAL gets a snapshot marker at its
/// durable applied index, never past it, so the WAL may drop the entries below. A restart replays only the tail.</item>
/// <item>Sending: when the core asks to send a Snapshot (a follower needs compacted entries), the host takes a
/// RocksDB snapshot of the shard now, re-labels the message with that state's applied index and term (the state
/// sent is exactly the committed state through that index), writes it to a file off the loop and streams it in
/// chunks; the core hears <see cref="RaftNode.ReportSnapshot"/> when the stream ends.</item>
/// <item>Receiving: the chunks go to a file; once the last one is in, a long-running thread checks the file and
/// turns it into one SST (<see cref="IShardSnapshotStorage.PrepareSnapshot"/>), then the Snapshot message is stepped
/// into the core. When the core's Ready carries the snapshot, the SST is ingested into RocksDB (durably) before the
/// WAL marker that replaces the log is written. The loop pays only the ingest: RocksDB flushes the memtables that
/// overlap the shard's range and links the file in (before the twenty-fifth session the loop wrote every record,
/// 1.5–9.9 s per shard of 1–2 M records, and the groups it led missed their heartbeats that long).</item>
/// </list>
/// Membership is fixed after bootstrap (no conf changes yet), so the membership at any applied index is the
/// current one; the conf state of a snapshot is taken from the core.
/// </summary>
public sealed partial class MultiRaftHost
{
    private readonly Dictionary<ulong, ulong> compactedIndexes = [];
    private readonly HashSet<ulong> logPinners = []; // Groups the WAL named at the last compaction check.
    private readonly List<GroupPersist> pendingMarkers = [];
    private readonly Dictionary<ulong, (ulong Index, string Path, RocksPreparedInstall? Prepared)> receivedSnapshots = [];
    private readonly List<Task> snapshotTasks = [];

    // (group, follower) of every stream running, on the loop: a leader that lost and regained office asks again while
    // its earlier stream (of the same file name) still runs; a second one at once only competes with the first.
    private readonly HashSet<(ulong Group, ulong To)> streamsRunning = [];
    private readonly List<ulong> installsAwaitingMarker = [];
    private Task? durableTask;
    private RefusalWarnings? snapshotDeferrals; // Rate-limits the warning about a snapshot send that must wait.
    private SnapshotRetention? retention; // The log kept for followers being sent a snapshot (created on first use).

    private long snapshotsSent;
    private long snapshotsInstalled;
    private long compactions;

    /// <summary>Snapshots streamed to followers, installed from leaders, and WAL snapshot markers written (for tests and metrics).</summary>
    public (long Sent, long Installed, long Compactions) SnapshotCounts =>
        (Interlocked.Read(ref snapshotsSent), Interlocked.Read(ref snapshotsInstalled), Interlocked.Read(ref compactions));

    private IShardSnapshotStorage? SnapshotStorage => log as IShardSnapshotStorage;

    private readonly List<ulong> stalledFollowers = []; // Filled by SnapshotRetention.CompactionLimit, reported at once.

    private SnapshotRetention Retention => retention ??= new SnapshotRetention(options.SnapshotRetentionLogBytesMax, options.SnapshotRetentionStallTicks);

    /// <summary>The index of the latest snapshot in this node's log of <paramref name="shard"/> (entries up to it are compacted).</summary>
    public Task<ulong> SnapshotIndexAsync(int shard)
    {
        var done = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!inbox.Writer.TryWrite(new HostInput.Query(() => done.TrySetResult(log.Group((ulong)shard + 1).Snapshot.Index))))
        {
            done.TrySetException(new ObjectDisposedException(nameof(MultiRaftHost), "the node is stopping"));
        }

        return done.Task;
    }

    private void MaybeStartCompaction()
    {
        var storage = SnapshotStorage;
        if (storage is null || ticks % options.SnapshotCheckTicks != 0 || durableTask is { IsCompleted: false })
        {
            return;
        }

        logPinners.Clear();
        logPinners.UnionWith(storage.GroupsPinningLog);
        var due = false;
        foreach (var replica in replicas)
        {
            // A group whose log is kept for a follower is not due past it: flushing RocksDB for nothing every check
            // would pile up small files.
            due |= Math.Min(replica.Applied, RetentionLimit(replica, storage, replica.Applied)) >= CompactionThreshold(replica);
        }

        if (due)
        {
            durableTask = Task.Run(() =>
            {
                storage.MakeDurable();
                inbox.Writer.TryWrite(HostInput.LedgerDurable.Instance);
            });
        }
    }

    // A group is due after SnapshotEntries applied entries, or after any when its log pins the WAL's oldest segment:
    // large entries (batches of thousands of transfers) would otherwise let the WAL, and the replay after a crash,
    // grow to SnapshotEntries of them (gigabytes) before the first compaction.
    private ulong CompactionThreshold(ShardReplica replica) =>
        CompactedIndex(replica) + (logPinners.Contains(replica.GroupId) ? 1UL : (ulong)options.SnapshotEntries);

    private ulong CompactedIndex(ShardReplica replica)
    {
        if (!compactedIndexes.TryGetValue(replica.GroupId, out var index))
        {
            index = log.Group(replica.GroupId).Snapshot.Index;
            compactedIndexes[replica.GroupId] = index;
        }

        return index;
    }

    /// <summary>RocksDB was flushed: queue a WAL snapshot marker at each due group's durable applied index.</summary>
    private void OnLedgerDurable()
    {
        var storage = SnapshotStorage;
        Invariant.Check(storage is not null);
        foreach (var replica in replicas)
        {
            var durable = storage.DurableAppliedIndex(replica.Shard);
            durable = Math.Min(durable, RetentionLimit(replica, storage, durable));
            if (durable < CompactionThreshold(replica) || durable > replica.Raft.AppliedIndex ||
                !log.Group(replica.GroupId).TryGetTerm(durable, out var term))
            {
                continue;
            }

            storage.SetCompactableIndex(replica.GroupId, durable);
            pendingMarkers.Add(new GroupPersist(replica.GroupId, [], null, new SnapshotMetadata(durable, term, replica.Raft.ConfState)));
            compactedIndexes[replica.GroupId] = durable;
        }
    }

    // The index past which the log is kept for a follower being sent a snapshot (ulong.MaxValue: none).
    private ulong RetentionLimit(ShardReplica replica, IShardSnapshotStorage storage, ulong wanted)
    {
        if (retention is null || !retention.IsKeeping(replica.GroupId))
        {
            return ulong.MaxValue; // The usual case: no need to ask the WAL its size.
        }

        var logBytes = storage.LogBytes;
        stalledFollowers.Clear();
        var limit = retention.CompactionLimit(replica.GroupId, replica.Raft.Status(), logBytes, wanted, ticks, stalledFollowers, out var overBound);
        foreach (var node in stalledFollowers)
        {
            logger.LogWarning(
                "shard {Shard}: node {Node} has acknowledged nothing new for {Seconds:F0} s since its snapshot; the log is no longer kept for it (it will need another snapshot)",
                replica.Shard, node, (options.TickInterval * options.SnapshotRetentionStallTicks).TotalSeconds);
        }

        if (overBound)
        {
            logger.LogWarning(
                "shard {Shard}: the WAL holds {Bytes} bytes, over the {Max} kept for followers being sent a snapshot; the log is compacted, and a follower still installing will need another snapshot",
                replica.Shard, logBytes, options.SnapshotRetentionLogBytesMax);
        }

        return limit;
    }

    /// <summary>
    /// A leader catching a follower up from a snapshot keeps the leadership that a preferred replica asks for until that
    /// follower has what it needs: the stream ends with this term and the log kept for it is this node's, so a new
    /// leader would send the follower another snapshot (in a catch-up under load, a leadership pulled back mid-stream
    /// made the follower refuse the first snapshot for its term and wait for a second). The preferred replica asks again
    /// after its cooldown. A hand-off this node starts itself (stopping) is not a peer message and still goes.
    /// </summary>
    private bool DefersTransfer(ShardReplica replica, Message message)
    {
        if (message.Type != MessageType.TransferLeader || retention is null || !retention.IsKeeping(replica.GroupId))
        {
            return false;
        }

        logger.LogInformation("shard {Shard}: not handing the leadership to node {Node} yet: a follower is catching up from this node's snapshot", replica.Shard, message.From);
        return true;
    }

    /// <summary>Writes queued snapshot markers (one fsync) at the start of a round, when no Ready is outstanding.</summary>
    private async Task PersistSnapshotMarkersAsync(CancellationToken stop)
    {
        if (pendingMarkers.Count == 0)
        {
            return;
        }

        await log.PersistAsync(pendingMarkers, stop).ConfigureAwait(false);
        Interlocked.Add(ref compactions, pendingMarkers.Count);
        foreach (var marker in pendingMarkers)
        {
            logger.LogInformation("{Group}: compacted the log up to {Index} (durable ledger state)", Placement.ClusterMap.DescribeGroup(marker.GroupId), marker.Snapshot!.Index);
        }

        pendingMarkers.Clear();
    }

    /// <summary>Leader: streams the shard's current ledger state to a follower that needs compacted entries.</summary>
    private void SendSnapshot(ShardReplica replica, Message message)
    {
        var storage = SnapshotStorage;
        snapshotTasks.RemoveAll(t => t.IsCompleted);
        if (storage is null || sender is not ISnapshotSender streamer || snapshotTasks.Count >= HostOptions.SnapshotSendsMax ||
            streamsRunning.Contains((replica.GroupId, message.To)))
        {
            // The core asks again every few ticks while the streams run (hundreds of times during a long catch-up).
            if ((snapshotDeferrals ??= new RefusalWarnings(options.Time)).ShouldWarn(replica.GroupId))
            {
                logger.LogWarning(
                    "shard {Shard}: cannot send a snapshot to node {Node} now (no durable storage, {Sends} streams running, or one to that node still running); it is sent once a stream ends (not logged again for this shard for {Seconds} s)",
                    replica.Shard, message.To, snapshotTasks.Count, RefusalWarnings.IntervalSeconds);
            }

            replica.Raft.ReportSnapshot(message.To, SnapshotStatus.Failed); // The core probes and asks again later.
            return;
        }

        var state = storage.CreateSnapshot(replica.Shard);
        if (!log.Group(replica.GroupId).TryGetTerm(state.AppliedIndex, out var term) || state.AppliedIndex < message.Snapshot!.Index)
        {
            logger.LogWarning("shard {Shard}: the ledger state at {Applied} cannot stand for snapshot {Index}", replica.Shard, state.AppliedIndex, message.Snapshot!.Index);
            state.Dispose();
            replica.Raft.ReportSnapshot(message.To, SnapshotStatus.Failed);
            return;
        }

        var relabeled = message with { Snapshot = new SnapshotMetadata(state.AppliedIndex, term, message.Snapshot.ConfState) };
        var raft = MessageCodec.Encode(relabeled);
        var path = Path.Combine(storage.SnapshotDirectory, $"out-g{replica.GroupId}-n{message.To}-{state.AppliedIndex}.snap");
        logger.LogInformation("shard {Shard}: sending a snapshot at {Index} to node {Node}; the log after it is kept for that node", replica.Shard, state.AppliedIndex, message.To);
        Retention.Started(replica.GroupId, message.To, state.AppliedIndex, ticks);
        StreamSnapshot(streamer, replica.GroupId, message.To, state.AppliedIndex, term, raft, path, s => state.WriteTo(s), state);
    }

    /// <summary>Off the loop: writes the snapshot data to a file, streams it, and reports the outcome to the loop.</summary>
    private void StreamSnapshot(ISnapshotSender streamer, ulong group, ulong to, ulong index, ulong term, byte[] raft, string path, Action<Stream> write, IDisposable? state)
    {
        streamsRunning.Add((group, to));
        snapshotTasks.Add(Task.Run(async () =>
        {
            var ok = false;
            try
            {
                using (state)
                {
                    await background.RunAsync(() => WriteFile(path, write), stopping.Token).ConfigureAwait(false);
                }

                ok = await streamer.SendSnapshotAsync(to, group, index, term, path, raft, stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
            {
                logger.LogWarning("{Group}: snapshot at {Index} to node {Node} failed: {Error}", Placement.ClusterMap.DescribeGroup(group), index, to, e.Message);
            }
            finally
            {
                File.Delete(path);
            }

            Interlocked.Add(ref snapshotsSent, ok ? 1 : 0);
            inbox.Writer.TryWrite(new HostInput.SnapshotSent(group, to, ok));
        }));
    }

    private static bool WriteFile(string path, Action<Stream> write)
    {
        using var file = File.Create(path);
        write(file);
        return true;
    }

    /// <summary>Transport callback: a leader streams a snapshot; the chunks go to a file, then the message to the loop.</summary>
    public async Task<SnapshotAck> OnSnapshotAsync(ulong fromNode, IAsyncStreamReader<SnapshotChunk> chunks, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        var storage = SnapshotStorage;
        if (storage is null)
        {
            return new SnapshotAck { Error = "this node keeps no durable state and takes no snapshots" };
        }

        var receiver = new SnapshotReceiver(storage.SnapshotDirectory, fromNode);
        try
        {
            var error = await receiver.ReceiveAsync(chunks, g => replicasByGroup.ContainsKey(g) || (g == Placement.ClusterMap.MetaGroupId && meta is not null), cancel).ConfigureAwait(false);
            if (error is not null)
            {
                logger.LogWarning("refused a snapshot from node {Node}: {Error}", fromNode, error);
                return new SnapshotAck { Error = error };
            }

            RocksPreparedInstall? prepared = null; // The meta group's small state is read by the loop itself.
            if (receiver.GroupId != Placement.ClusterMap.MetaGroupId)
            {
                if (StepIfStale(receiver.GroupId, receiver.Message!) is { } stale)
                {
                    return new SnapshotAck { Error = stale };
                }

                // A shard's file is checked and turned into the file the loop ingests here, off the loop: building it
                // is the slow part of an install, and on the loop it held every group's heartbeats for seconds.
                prepared = await PrepareAsync(storage, receiver).ConfigureAwait(false);
                if (prepared is null)
                {
                    return new SnapshotAck { Error = "the snapshot is corrupt" };
                }
            }

            receiver.Keep();
            if (!inbox.Writer.TryWrite(new HostInput.SnapshotReceived(receiver.GroupId, receiver.Message!, prepared?.Path ?? receiver.Path!, prepared)))
            {
                prepared?.Dispose();
                return new SnapshotAck { Error = "the node is stopping" };
            }

            return new SnapshotAck { Installed = true };
        }
        finally
        {
            receiver.Dispose();
        }
    }

    /// <summary>
    /// When the shard's core would never install this snapshot (its leader's term is over, or the replica has committed
    /// its index already, as the replica's last published view shows), hands the message to the core as a peer message,
    /// which answers it as Raft does, and returns why; null when it may be installed. Such a snapshot is not prepared:
    /// that costs seconds of CPU per million records, and about half of the snapshots a lagging node got under load
    /// came after a leader change.
    /// </summary>
    private string? StepIfStale(ulong groupId, Message message)
    {
        var shard = (int)(groupId - 1);
        var view = views[shard];
        var snapshot = message.Snapshot!;
        var stale = message.Term < view.Term
            ? $"shard {shard}: the snapshot at {snapshot.Index} is from term {message.Term}; this replica is at term {view.Term}"
            : snapshot.Index <= view.Commit
                ? $"shard {shard}: this replica has committed {view.Commit} already; the snapshot at {snapshot.Index} is not needed"
                : null;
        if (stale is not null)
        {
            logger.LogInformation("not installing a snapshot from node {Node}: {Reason}", message.From, stale);
            if (Interlocked.Increment(ref inboxPeerMessages) > HostOptions.InboxPeerMessagesMax || !inbox.Writer.TryWrite(new HostInput.Peer(groupId, message)))
            {
                Interlocked.Decrement(ref inboxPeerMessages);
            }
        }

        return stale;
    }

    // On a long-running thread: reads and checks the whole file and writes the SST. Null (logged) when it is corrupt.
    private async Task<RocksPreparedInstall?> PrepareAsync(IShardSnapshotStorage storage, SnapshotReceiver receiver)
    {
        var shard = (int)(receiver.GroupId - 1);
        var started = options.Time.GetTimestamp();
        try
        {
            // No stop token: this transport callback may run while the host is being disposed (with its token source);
            // once the background threads stop, the call fails with OperationCanceledException anyway.
            var prepared = await background.RunAsync(() => storage.PrepareSnapshot(shard, receiver.Path!), CancellationToken.None).ConfigureAwait(false);
            logger.LogInformation(
                "shard {Shard}: received a snapshot at {Index} ({Records} records), checked and prepared for ingest in {Milliseconds:0} ms off the scheduler loop",
                shard, prepared.Summary.AppliedIndex, prepared.Summary.RecordCount, options.Time.GetElapsedTime(started).TotalMilliseconds);
            return prepared;
        }
        catch (RocksSnapshotCorruptException error)
        {
            logger.LogWarning("refused a snapshot of shard {Shard}: {Error}", shard, error.Message);
            return null;
        }
    }

    private void OnSnapshotReceived(HostInput.SnapshotReceived received)
    {
        if (receivedSnapshots.Remove(received.GroupId, out var older))
        {
            File.Delete(older.Path);
            older.Prepared?.Dispose();
        }

        receivedSnapshots[received.GroupId] = (received.Message.Snapshot!.Index, received.Path, received.Prepared);
        RaftOf(received.GroupId).Step(received.Message);
    }

    /// <summary>Follower: the core accepted a snapshot; install its ledger state durably before the WAL marker is written.</summary>
    private void InstallReceivedSnapshot(ShardReplica replica, SnapshotMetadata snapshot)
    {
        var storage = SnapshotStorage;
        Invariant.Check(storage is not null && receivedSnapshots.TryGetValue(replica.GroupId, out var file) && file.Index == snapshot.Index,
            "the core only restores snapshots whose data this host received");
        var prepared = receivedSnapshots[replica.GroupId].Prepared;
        Invariant.Check(prepared is not null, "a shard snapshot is prepared when it is received");
        receivedSnapshots.Remove(replica.GroupId);
        ulong applied;
        var started = options.Time.GetTimestamp();
        using (prepared)
        {
            applied = storage.InstallSnapshot(replica.Shard, prepared, snapshot);
        }

        var took = options.Time.GetElapsedTime(started);

        installsAwaitingMarker.Add(replica.GroupId);
        Invariant.Check(applied == snapshot.Index, "the leader labels a snapshot with the applied index of its state");
        replica.OnSnapshotInstalled(applied);
        storage.SetCompactableIndex(replica.GroupId, applied);
        compactedIndexes[replica.GroupId] = applied;
        Interlocked.Increment(ref snapshotsInstalled);
        logger.LogInformation("shard {Shard}: installed a snapshot at {Index} ({Milliseconds:0} ms on the scheduler loop)", replica.Shard, applied, took.TotalMilliseconds);
    }

    /// <summary>After the round's WAL write: the markers of this round's installs are durable.</summary>
    private void EndSnapshotInstalls()
    {
        foreach (var groupId in installsAwaitingMarker)
        {
            SnapshotStorage!.EndInstall(groupId);
        }

        installsAwaitingMarker.Clear();
    }

    private async Task WaitForSnapshotTasksAsync()
    {
        if (durableTask is not null)
        {
            await durableTask.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        foreach (var task in snapshotTasks)
        {
            await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        foreach (var (_, path, prepared) in receivedSnapshots.Values)
        {
            File.Delete(path);
            prepared?.Dispose();
        }
    }
}
