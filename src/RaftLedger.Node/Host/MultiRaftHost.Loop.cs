using Microsoft.Extensions.Logging;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

public sealed partial class MultiRaftHost
{
    private readonly List<(ShardReplica Replica, Ready Ready)> readies = [];
    private readonly List<GroupPersist> persists = [];
    private long lastSlowWarning;
    private long lastSlowRound; // Timestamp of the last round longer than SlowRoundTicks (0: none yet).
    private ulong roundsRun; // Rotates which group takes the round's apply budget first.

    // Committed entry bytes per second the recent rounds applied (an estimate that sets each round's apply budget).
    // Starts at the smallest budget per target time: a node that just started is cold.
    private double applyBytesPerSecond = HostOptions.ApplyBytesPerRoundMin / HostOptions.ApplyTimePerRoundTarget.TotalSeconds;
    private long appliedSinceStart; // Entries applied by this process; reported by the start-up timeline.
    private int startupPhase; // 0: first round not done, 1: leaders not all known, 2: backlog not applied, 3: done.

    /// <summary>Where the start-up phases this loop sees are logged (first round, leaders known, backlog applied).</summary>
    internal StartupTimeline Timeline { get; init; } = StartupTimeline.None;

    /// <summary>Where each round with work is counted and timed for /metrics (none in tests that build hosts directly).</summary>
    internal NodeMetrics.RoundMetrics? RoundMetrics { get; init; }

    private async Task RunAsync(CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (!AnyHasReady() && !await inbox.Reader.WaitToReadAsync(stop).ConfigureAwait(false))
                {
                    return;
                }

                TakeInputs();
                await RunRoundAsync(stop).ConfigureAwait(false);
                PublishViews();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is not ClusterMapConflictException)
        {
            // A failed fsync or a broken invariant: the node must not carry on with state it cannot trust. (A map
            // conflict is an operator's mistake, not a fault: NodeRunner reports it in one line, without a trace.)
            logger.LogCritical(e, "the scheduler loop failed; the node stops serving");
            throw;
        }
    }

    private bool AnyHasReady()
    {
        foreach (var replica in replicas)
        {
            if (replica.Raft.HasReady || replica.HasCrossShardWork)
            {
                return true;
            }
        }

        return meta is not null && meta.Raft.HasReady;
    }

    private void TakeInputs()
    {
        for (var taken = 0; taken < HostOptions.InputsPerRoundMax && inbox.Reader.TryRead(out var input); taken++)
        {
            switch (input)
            {
                case HostInput.Peer peer:
                    Interlocked.Decrement(ref inboxPeerMessages);
                    if (replicasByGroup.TryGetValue(peer.GroupId, out var target))
                    {
                        if (!DefersTransfer(target, peer.Message))
                        {
                            target.Raft.Step(peer.Message);
                        }
                    }
                    else if (peer.GroupId == Placement.ClusterMap.MetaGroupId)
                    {
                        meta?.Raft.Step(peer.Message);
                    }

                    break;
                case HostInput.Tick:
                    OnTick();
                    break;
                case HostInput.Request request:
                    Route(request.Value);
                    break;
                case HostInput.Query query:
                    query.Run();
                    break;
                case HostInput.Transfer transfer:
                    FindReplica(transfer.Shard)?.Raft.TransferLeadership(transfer.ToNode);
                    break;
                case HostInput.ShardMessage shardMessage:
                    DeliverShardMessage(shardMessage);
                    break;
                case HostInput.PeerDown down:
                    OnPeerDownInput(down.Node);
                    break;
                case HostInput.LedgerDurable:
                    OnLedgerDurable();
                    break;
                case HostInput.SnapshotReceived received:
                    OnSnapshotReceived(received);
                    break;
                case HostInput.MetaPropose propose:
                    OnMetaPropose(propose.Proposal);
                    break;
                case HostInput.SnapshotSent sent:
                    streamsRunning.Remove((sent.GroupId, sent.ToNode));
                    if (sent.Finished)
                    {
                        retention?.Finished(sent.GroupId, sent.ToNode, ticks);
                    }
                    else
                    {
                        retention?.Failed(sent.GroupId, sent.ToNode);
                    }

                    RaftOf(sent.GroupId).ReportSnapshot(sent.ToNode, sent.Finished ? SnapshotStatus.Finished : SnapshotStatus.Failed);
                    break;
            }
        }
    }

    private void Route(ShardRequest request)
    {
        var replica = FindReplica(request.Shard);
        if (replica is null)
        {
            request.Complete(ShardCallResult.Fail(ShardCallStatus.NotLeader, $"node {options.NodeId} holds no replica of shard {request.Shard}"));
            return;
        }

        replica.Enqueue(request);
    }

    /// <summary>The core of a group hosted here (the meta group or a shard).</summary>
    private RaftNode RaftOf(ulong groupId) =>
        groupId == Placement.ClusterMap.MetaGroupId ? meta!.Raft : replicasByGroup[groupId].Raft;

    private ShardReplica? FindReplica(int shard) =>
        replicasByGroup.GetValueOrDefault((ulong)shard + 1);

    private void OnTick()
    {
        ticks++;
        foreach (var replica in replicas)
        {
            replica.Raft.Tick();
            replica.TickCrossShard();
            if (replica.TransferCooldownTicks > 0)
            {
                replica.TransferCooldownTicks--;
            }
        }

        meta?.Raft.Tick();
        EndRejoinIfCaughtUp();

        RunFailoverCampaigns();
        MaybeStartCompaction();
        if (ticks % options.LeaderBalanceTicks == 0)
        {
            BalanceLeadership();
        }
    }

    /// <summary>
    /// This node started rejoining after a wipe (<see cref="HostOptions.Rejoin"/>); cleared, with the data folder's
    /// <see cref="RejoinMarker"/>, once every group here has caught up.
    /// </summary>
    internal bool Rejoining { get; set; }

    private void EndRejoinIfCaughtUp()
    {
        if (!Rejoining || replicas.Any(r => r.Raft.IsRejoining) || meta?.Raft.IsRejoining == true)
        {
            return;
        }

        Rejoining = false;
        if (options.Durable)
        {
            RejoinMarker.End(options.DataDirectory);
        }

        logger.LogInformation("rejoined: every group on this node has caught up with its leader and votes again");
    }

    /// <summary>
    /// Takes back the leadership of the shards whose preferred replica is this node (placement spreads preferred
    /// replicas, so leaders end up spread): after bootstrap, and after this node returns from a failure. The
    /// preferred replica asks (its request is forwarded to the leader, which catches it up and hands over), because
    /// only it knows when it is ready to lead: up for a while, every entry it has heard committed applied, and no
    /// slow round lately. A leader that pushed leadership on log match alone handed shards to a node still
    /// re-applying its backlog after a restart; that node then missed its heartbeats and lost them again, and the
    /// terms churned after every restart.
    /// </summary>
    private void BalanceLeadership()
    {
        var settle = options.TickInterval * options.LeaderBalanceSettleTicks;
        var now = options.Time.GetTimestamp();
        if (handingOffLeadership || ticks < options.LeaderBalanceSettleTicks || (lastSlowRound != 0 && options.Time.GetElapsedTime(lastSlowRound, now) < settle))
        {
            return;
        }

        foreach (var replica in replicas)
        {
            var raft = replica.Raft;
            if (replica.Replicas[0] != options.NodeId || raft.Role != RaftRole.Follower || raft.Leader == 0 ||
                replica.TransferCooldownTicks > 0 || replica.Applied < raft.CommitIndex || !sender!.IsConnected(raft.Leader))
            {
                continue;
            }

            raft.TransferLeadership(options.NodeId);
            replica.TransferCooldownTicks = options.ElectionTimeoutTicks * 3;
            logger.LogInformation("shard {Shard}: asking node {Leader} for the leadership (this node is the preferred replica)", replica.Shard, raft.Leader);
        }
    }

    /// <summary>
    /// One round. Its sends are held and written per phase, one frame per peer each (<see cref="IRaftMessageSender.HoldSends"/>):
    /// the leaders' appends and the cross-shard messages before the fsync, the rest right after it, before the apply.
    /// </summary>
    private async Task RunRoundAsync(CancellationToken stop)
    {
        Invariant.Check(sender is not null);
        sender.HoldSends();
        try
        {
            await RunHeldRoundAsync(stop).ConfigureAwait(false);
        }
        finally
        {
            sender.ReleaseSends();
        }
    }

    private async Task RunHeldRoundAsync(CancellationToken stop)
    {
        var started = options.Time.GetTimestamp();
        readies.Clear();
        persists.Clear();
        await PersistSnapshotMarkersAsync(stop).ConfigureAwait(false);
        // The apply budget is shared by the round's groups; the first group to ask rotates, so that one replica's
        // backlog does not take every round's budget while another waits. The first always gets at least one entry;
        // once the budget is spent the others apply nothing this round (their sends and writes still go), so a round
        // holds one large entry's apply, not one per group.
        var applyBudget = ApplyBudgetBytes(applyBytesPerSecond);
        var first = (int)(roundsRun++ % (ulong)Math.Max(1, replicas.Length));
        for (var k = 0; k < replicas.Length; k++)
        {
            var replica = replicas[(first + k) % replicas.Length];
            replica.BeforeReady();
            if (replica.Raft.HasReady)
            {
                var ready = ReadyWithinBudget(replica.Raft, ref applyBudget);
                readies.Add((replica, ready));
                if (ready.Snapshot is { } snapshot)
                {
                    InstallReceivedSnapshot(replica, snapshot);
                }

                if (ready.Entries.Count > 0 || ready.HardState is not null || ready.Snapshot is not null)
                {
                    persists.Add(new GroupPersist(replica.GroupId, ready.Entries, ready.HardState, ready.Snapshot));
                }
            }
        }

        var metaReady = CollectMetaReady();
        if (readies.Count == 0 && metaReady is null)
        {
            return;
        }

        if (!AnyMustSync(metaReady))
        {
            // Only commit indexes moved: an fdatasync here would delay every answer for nothing that Raft needs
            // durable (a restarted core resumes at the applied index; RaftConfig.Applied). A later synced write
            // carries the newest commit index along.
            persists.Clear();
        }

        // A leader whose term and vote did not change sends its appends first, so followers fsync while this node
        // does (thesis §10.2.1: the core counts the leader's own entries only after Advance, below).
        var sending = options.Time.GetTimestamp();
        foreach (var (replica, ready) in readies)
        {
            if (ready.MessagesMaySendBeforePersist)
            {
                SendMessages(replica, ready.Messages);
            }
        }

        // One durable write for every group's entries and hard state, before any message that depends on them.
        var persisting = options.Time.GetTimestamp();
        if (persists.Count > 0)
        {
            sender!.ReleaseSends(); // The appends leave now, so followers fsync while this node does.
            sender.HoldSends();
            await log.PersistAsync(persists, stop).ConfigureAwait(false);
            EndSnapshotInstalls();
        }

        var persisted = options.Time.GetTimestamp();
        foreach (var (replica, ready) in readies)
        {
            if (!ready.MessagesMaySendBeforePersist)
            {
                SendMessages(replica, ready.Messages);
            }
        }

        if (metaReady is not null)
        {
            SendMetaMessages(metaReady); // Not coalesced with the shards' heartbeats: one small group, sent as is.
        }

        Invariant.Check(sender is not null);
        heartbeats.Flush(sender);
        sender.ReleaseSends(); // Acknowledgements and commits leave before this round's apply.

        var applied = 0;
        long appliedBytes = 0;
        var applying = options.Time.GetTimestamp();
        foreach (var (replica, ready) in readies)
        {
            replica.Apply(ready.CommittedEntries);
            applied += ready.CommittedEntries.Count;
            appliedBytes += CommittedBytes(ready);
            replica.OnReadStates(ready.ReadStates);
            replica.Raft.Advance(ready);
        }

        if (appliedBytes >= HostOptions.ApplyBytesPerRoundMin / 4)
        {
            applyBytesPerSecond = UpdatedApplyRate(applyBytesPerSecond, appliedBytes, options.Time.GetElapsedTime(applying));
        }

        if (metaReady is not null)
        {
            ApplyMetaReady(metaReady);
        }

        var slow = WarnIfSlow(new RoundTimes(started, sending, persisting, persisted), applied);
        RoundMetrics?.Observe(options.Time.GetElapsedTime(started), options.Time.GetElapsedTime(persisting, persisted), persists.Count > 0, applied);
        appliedSinceStart += applied;
        if (startupPhase < 3)
        {
            MarkStartupPhases(slow);
        }
    }

    private bool AnyMustSync(Ready? metaReady)
    {
        foreach (var (_, ready) in readies)
        {
            if (ready.MustSync)
            {
                return true;
            }
        }

        return metaReady is { MustSync: true };
    }

    /// <summary>
    /// One group's Ready in a round: committed entries within what is left of the round's apply budget (at least one
    /// entry while any budget is left), none once it is spent; the rest of the Ready (appends, messages, hard state) always.
    /// </summary>
    internal static Ready ReadyWithinBudget(RaftNode raft, ref long applyBudget)
    {
        var ready = applyBudget > 0 ? raft.GetReady(applyBudget) : raft.GetReadyWithoutApply();
        applyBudget -= CommittedBytes(ready);
        return ready;
    }

    /// <summary>The round's apply budget in bytes: what the measured rate applies in the target time, within the limits.</summary>
    internal static long ApplyBudgetBytes(double applyBytesPerSecond)
    {
        Invariant.Check(applyBytesPerSecond >= 0);
        var bytes = applyBytesPerSecond * HostOptions.ApplyTimePerRoundTarget.TotalSeconds;
        return (long)Math.Clamp(bytes, HostOptions.ApplyBytesPerRoundMin, HostOptions.ApplyBytesPerRoundMax);
    }

    /// <summary>
    /// The apply rate after a round applied <paramref name="bytes"/> in <paramref name="elapsed"/>: halfway between the
    /// old estimate and this round's, so one round slowed by something else (a GC, a busy CPU) moves it only halfway.
    /// </summary>
    internal static double UpdatedApplyRate(double applyBytesPerSecond, long bytes, TimeSpan elapsed)
    {
        Invariant.Check(bytes >= 0);
        var measured = bytes / Math.Max(elapsed.TotalSeconds, 1e-6);
        return (applyBytesPerSecond + measured) / 2;
    }

    private static long CommittedBytes(Ready ready)
    {
        long bytes = 0;
        for (var i = 0; i < ready.CommittedEntries.Count; i++)
        {
            bytes += ready.CommittedEntries[i].SizeBytes;
        }

        return bytes;
    }

    /// <summary>
    /// The start-up phases the loop sees: its first round (which re-applies the committed log the ledger state lags),
    /// a leader known for every shard (what /readyz reports), and the first fast round after that with every shard
    /// applied up to the commit index it has heard of (the restart backlog is applied; the leader may still be
    /// sending newer entries).
    /// </summary>
    private void MarkStartupPhases(bool slow)
    {
        if (startupPhase == 0)
        {
            Timeline.Mark("first scheduler round done", $"{appliedSinceStart} entries applied");
            startupPhase = 1;
        }

        var leadersKnown = true;
        var applied = true;
        foreach (var replica in replicas)
        {
            leadersKnown &= replica.Raft.Leader != 0;
            applied &= replica.Applied >= replica.Raft.CommitIndex;
        }

        if (startupPhase == 1 && leadersKnown)
        {
            Timeline.Mark("leader known for every shard (ready)", $"{appliedSinceStart} entries applied");
            startupPhase = 2;
        }

        if (startupPhase == 2 && leadersKnown && applied && !slow)
        {
            Timeline.Mark("backlog applied", $"{appliedSinceStart} entries applied since start");
            startupPhase = 3;
        }
    }

    /// <summary>
    /// Logs a round that held the loop long enough to delay heartbeats noticeably: an fsync slowed by other disk
    /// traffic, or a large apply. Followers that hear nothing for an election timeout start elections, so these
    /// lines explain leadership changes that no crash caused. At most one line per second. Returns whether it was slow.
    /// </summary>
    private bool WarnIfSlow(RoundTimes times, int applied)
    {
        var now = options.Time.GetTimestamp();
        var round = options.Time.GetElapsedTime(times.Started, now);
        if (round < options.TickInterval * HostOptions.SlowRoundTicks)
        {
            return false;
        }

        lastSlowRound = now;
        if (options.Time.GetElapsedTime(lastSlowWarning, now) < TimeSpan.FromSeconds(1))
        {
            return true;
        }

        lastSlowWarning = now;
        logger.LogWarning("slow round: {Round:0} ms (proposals, Readies and snapshot work {Prepare:0} ms, leaders' appends sent in {Send:0} ms, fsync {Persist:0} ms, {Applied} entries applied in {Apply:0} ms); heartbeats waited as long",
            round.TotalMilliseconds, options.Time.GetElapsedTime(times.Started, times.Sending).TotalMilliseconds,
            options.Time.GetElapsedTime(times.Sending, times.Persisting).TotalMilliseconds,
            options.Time.GetElapsedTime(times.Persisting, times.Persisted).TotalMilliseconds, applied,
            options.Time.GetElapsedTime(times.Persisted, now).TotalMilliseconds);
        return true;
    }

    /// <summary>When a round started, started sending the leaders' appends, started persisting, and had persisted.</summary>
    private readonly record struct RoundTimes(long Started, long Sending, long Persisting, long Persisted);

    private void SendMessages(ShardReplica replica, IReadOnlyList<Message> messages)
    {
        Invariant.Check(sender is not null);
        foreach (var message in messages)
        {
            if (message.Type == MessageType.Snapshot)
            {
                SendSnapshot(replica, message);
                continue;
            }

            if (heartbeats.TryAdd(replica, message))
            {
                continue;
            }

            var bytes = MessageCodec.Encode(message);
            if (!sender.Send(message.To, replica.GroupId, bytes))
            {
                replica.Raft.ReportUnreachable(message.To);
            }
        }
    }
}
