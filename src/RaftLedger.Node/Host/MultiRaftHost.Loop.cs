using Microsoft.Extensions.Logging;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

public sealed partial class MultiRaftHost
{
    private readonly List<(ShardReplica Replica, Ready Ready)> readies = [];
    private readonly List<GroupPersist> persists = [];

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
        catch (Exception e)
        {
            // A failed fsync or a broken invariant: the node must not carry on with state it cannot trust.
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

        return false;
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
                        target.Raft.Step(peer.Message);
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
                case HostInput.SnapshotSent sent:
                    replicasByGroup[sent.GroupId].Raft.ReportSnapshot(sent.ToNode, sent.Finished ? SnapshotStatus.Finished : SnapshotStatus.Failed);
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

        RunFailoverCampaigns();
        MaybeStartCompaction();
        if (ticks % options.LeaderBalanceTicks == 0)
        {
            BalanceLeadership();
        }
    }

    /// <summary>
    /// Hands each shard's leadership back to its preferred replica (placement balances those across nodes)
    /// once that replica is up and caught up: after bootstrap, and after a node returns from a failure.
    /// </summary>
    private void BalanceLeadership()
    {
        foreach (var replica in replicas)
        {
            var preferred = replica.Replicas[0];
            if (!replica.IsLeader || preferred == options.NodeId || replica.TransferCooldownTicks > 0)
            {
                continue;
            }

            var status = replica.Raft.Status();
            foreach (var peer in status.Progress)
            {
                // Not RecentActive: the leader clears it at every quorum check, and a balancer that runs in phase
                // with those checks would find it false every time and never move a leader.
                if (peer.Id == preferred && peer.State == ProgressState.Replicate && peer.Match == status.LastIndex && sender!.IsConnected(preferred))
                {
                    replica.Raft.TransferLeadership(preferred);
                    replica.TransferCooldownTicks = options.ElectionTimeoutTicks * 3;
                    logger.LogInformation("shard {Shard}: handing leadership to preferred node {Node}", replica.Shard, preferred);
                }
            }
        }
    }

    private async Task RunRoundAsync(CancellationToken stop)
    {
        readies.Clear();
        persists.Clear();
        await PersistSnapshotMarkersAsync(stop).ConfigureAwait(false);
        foreach (var replica in replicas)
        {
            replica.BeforeReady();
            if (replica.Raft.HasReady)
            {
                var ready = replica.Raft.GetReady();
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

        if (readies.Count == 0)
        {
            return;
        }

        // One durable write for every group's entries and hard state, before any message that depends on them.
        if (persists.Count > 0)
        {
            await log.PersistAsync(persists, stop).ConfigureAwait(false);
            EndSnapshotInstalls();
        }

        foreach (var (replica, ready) in readies)
        {
            SendMessages(replica, ready.Messages);
        }

        foreach (var (replica, ready) in readies)
        {
            replica.Apply(ready.CommittedEntries);
            replica.OnReadStates(ready.ReadStates);
            replica.Raft.Advance(ready);
        }
    }

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

            var bytes = MessageCodec.Encode(message);
            if (!sender.Send(message.To, replica.GroupId, bytes))
            {
                replica.Raft.ReportUnreachable(message.To);
            }
        }
    }
}
