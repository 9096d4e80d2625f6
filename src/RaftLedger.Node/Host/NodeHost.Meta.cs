using Grpc.Core;
using Microsoft.Extensions.Logging;
using RaftLedger.Node.Meta;
using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport.Protos;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// The node's side of the meta group beyond the scheduler: creating its meta replica, registering its own addresses
/// through the meta leader, and (on nodes outside the group) learning the map from a member. Meta requests between
/// nodes ride the peer Forward call with <see cref="MetaForwardShard"/> in place of a shard.
/// </summary>
public sealed partial class NodeHost
{
    /// <summary>The Forward call's shard field for meta requests (no shard has this number).</summary>
    internal const uint MetaForwardShard = uint.MaxValue;

    /// <summary>Ticks between two map reads of a node outside the meta group.</summary>
    internal const int MetaPollTicks = 10;

    /// <summary>
    /// Ticks before the same addresses are registered again after a registration succeeded. Normally this node's copy
    /// of the map shows them a round trip later; when it does not (the other nodes cannot reach this node, e.g. its
    /// --listen changed), registering every tick would add an entry to the meta log ten times a second.
    /// </summary>
    internal const int MetaRegisterRetryTicks = 50;

    private readonly CancellationTokenSource metaClientStop = new();
    private Task? metaClient;

    private enum MetaForwardKind : uint
    {
        Propose = 1,
        ReadState = 2,
    }

    private static MetaReplica CreateMetaReplica(HostOptions options, ulong[] voters, ClusterMap map, MetaState state, INodeStorage log, bool rejoining, ILogger logger)
    {
        var storage = log.Group(ClusterMap.MetaGroupId);
        // A saved state past the persisted commit index is normal (commit-only hard states are not synced) while
        // the log holds the applied entry; when it does not, a crash came between saving an installed meta
        // snapshot and writing its WAL marker: write the marker now.
        if (state.AppliedIndex > storage.HardState.Commit && state.AppliedIndex > storage.Snapshot.Index && !HoldsEntry(storage, state.AppliedIndex, state.AppliedTerm) &&
            log is DurableNodeStorage durable)
        {
            durable.RepairMetaLog(new SnapshotMetadata(state.AppliedIndex, state.AppliedTerm, new ConfState(voters, [], [], [], false)));
            logger.LogWarning("meta: repaired the meta log up to the saved state at {Index}", state.AppliedIndex);
        }

        var raft = new RaftNode(options.RaftConfig(state.AppliedIndex, rejoining), storage, new DeterministicRandom(Seed(options, ClusterMap.MetaGroupId)));
        if (storage.LastIndex == 0 && storage.HardState.IsEmpty)
        {
            raft.Bootstrap(voters);
            logger.LogInformation("meta: bootstrapped group 0 with voters {Voters}", string.Join(",", voters));
        }

        return new MetaReplica(voters, raft, state, map);
    }

    private static bool HoldsEntry(IRaftLogStorage storage, ulong index, ulong term) => storage.TryGetTerm(index, out var held) && held == term;

    /// <summary>
    /// On the scheduler thread: the meta map changed. The transport keeps dialing the peer addresses this node was
    /// founded with (its own --peers, kept in cluster.json: they may differ per node, as with verify's fault proxies);
    /// the map's address is used for a member it has none for (SetPeer is thread-safe and cheap).
    /// </summary>
    private void OnMetaChanged(MetaSnapshot state)
    {
        foreach (var member in state.Map!.Nodes)
        {
            if (member.PeerAddress.Length > 0 && localMap.Node(member.Id) is null)
            {
                Transport.SetPeer(member.Id, member.PeerAddress);
            }
        }
    }

    private void StartMetaClient() => metaClient = Task.Run(() => RunMetaClientAsync(metaClientStop.Token));

    private async Task StopMetaClientAsync()
    {
        await metaClientStop.CancelAsync().ConfigureAwait(false);
        if (metaClient is not null)
        {
            await metaClient.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        metaClientStop.Dispose();
    }

    /// <summary>
    /// Until stopped: a node outside the meta group reads the state from a member every <see cref="MetaPollTicks"/>;
    /// every node, once a map is known, registers its own addresses when the map's differ (retried each tick until
    /// the map shows them).
    /// </summary>
    private async Task RunMetaClientAsync(CancellationToken stop)
    {
        long round = 0;
        var member = Scheduler.Meta!.Hosted;
        var registered = new MetaRegistration();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (!member && round % MetaPollTicks == 0)
                {
                    await PollMetaAsync(round / MetaPollTicks, stop).ConfigureAwait(false);
                }

                if (Scheduler.LatestMeta.Map is { } map && DesiredAddresses(map) is { } desired && registered.IsDue(desired, round))
                {
                    var result = await ProposeMetaAsync(MetaCodec.Encode(MetaCommand.SetNodeAddresses(desired)), round, stop).ConfigureAwait(false);
                    if (result.IsOk)
                    {
                        LogRegistered(desired, registered.Succeeded(desired, round));
                    }
                }

                round++;
                await Task.Delay(Options.TickInterval, Options.Time, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private void LogRegistered(ClusterNode desired, bool again)
    {
        if (!again)
        {
            logger.LogInformation("meta: registered this node's addresses (peer {Peer}, api {Api}, grpc {Grpc})", desired.PeerAddress, desired.ApiAddress, desired.GrpcAddress);
            return;
        }

        logger.LogWarning(
            "meta: registered this node's addresses again (peer {Peer}): this node's copy of the cluster map still shows the old ones, so the other nodes do not reach it. " +
            "If --listen changed: peer addresses cannot change yet; start the node on its old --listen (docs/OPERATIONS.md, section 5)",
            desired.PeerAddress);
    }

    /// <summary>This node's addresses when the map's differ from them (empty flags keep the map's), else null.</summary>
    private ClusterNode? DesiredAddresses(ClusterMap map)
    {
        var current = map.Node(Options.NodeId);
        if (current is null)
        {
            return null;
        }

        var desired = new ClusterNode(
            Options.NodeId,
            Options.Peers.GetValueOrDefault(Options.NodeId, current.PeerAddress),
            Options.ApiAddress.Length > 0 ? Options.ApiAddress : current.ApiAddress,
            Options.GrpcAddress.Length > 0 ? Options.GrpcAddress : current.GrpcAddress);
        return desired == current ? null : desired;
    }

    /// <summary>Proposes on the meta leader: here when this node leads, else forwarded (the leader seen here, else a voter in turn).</summary>
    private async Task<ShardCallResult> ProposeMetaAsync(byte[] command, long attempt, CancellationToken stop)
    {
        var view = Scheduler.Meta!;
        var target = view.Hosted && view.Leader != 0 ? view.Leader : view.Voters[(int)(attempt % view.Voters.Count)];
        for (var hop = 0; hop < 2; hop++)
        {
            var result = target == Options.NodeId
                ? await Scheduler.ProposeMetaAsync(command, stop).ConfigureAwait(false)
                : await ForwardMetaAsync(target, MetaForwardKind.Propose, command, stop).ConfigureAwait(false);
            if (result.Status != ShardCallStatus.NotLeader || result.LeaderHint == 0 || result.LeaderHint == target)
            {
                return result;
            }

            target = result.LeaderHint;
        }

        return ShardCallResult.Fail(ShardCallStatus.NoLeader, "the meta leader moved; retry");
    }

    private async Task PollMetaAsync(long attempt, CancellationToken stop)
    {
        var voters = Scheduler.Meta!.Voters;
        var result = await ForwardMetaAsync(voters[(int)(attempt % voters.Count)], MetaForwardKind.ReadState, [], stop).ConfigureAwait(false);
        if (result.IsOk && MetaState.TryDecode(result.Payload.Span, out var state, out _))
        {
            Scheduler.LearnMeta(state!);
        }
    }

    private async Task<ShardCallResult> ForwardMetaAsync(ulong node, MetaForwardKind kind, byte[] payload, CancellationToken stop)
    {
        var request = new ForwardRequest { Shard = MetaForwardShard, Kind = (uint)kind, Payload = Google.Protobuf.ByteString.CopyFrom(payload) };
        try
        {
            var response = await Transport.ForwardAsync(node, request, Options.RequestTimeout + Options.TickInterval, stop).ConfigureAwait(false);
            return new ShardCallResult((ShardCallStatus)response.Status, response.Payload.Memory, response.LeaderHint, response.Detail);
        }
        catch (RpcException e)
        {
            return ShardCallResult.Fail(ShardCallStatus.Unavailable, $"meta request to node {node} ended with {e.StatusCode}");
        }
    }

    /// <summary>Serves a forwarded meta request: a proposal (this node must lead the meta group) or a read of the state.</summary>
    private async Task<ForwardResponse> HandleMetaAsync(ForwardRequest request, CancellationToken cancel)
    {
        ShardCallResult result;
        switch ((MetaForwardKind)request.Kind)
        {
            case MetaForwardKind.Propose when request.Payload.Length <= MetaLimits.CommandBytesMax:
                result = await Scheduler.ProposeMetaAsync(request.Payload.ToByteArray(), cancel).ConfigureAwait(false);
                break;
            case MetaForwardKind.ReadState when Scheduler.Meta!.Hosted && Scheduler.LatestMeta is { Map: not null } latest:
                result = ShardCallResult.Ok(new MetaState(latest.Map, latest.AppliedIndex, latest.AppliedTerm).Encode());
                break;
            default:
                result = ShardCallResult.Fail(ShardCallStatus.Unavailable, $"meta request {request.Kind} cannot be served here (not a meta member, no map yet, or another version)");
                break;
        }

        return new ForwardResponse
        {
            Status = (uint)result.Status,
            Payload = Google.Protobuf.UnsafeByteOperations.UnsafeWrap(result.Payload),
            LeaderHint = result.LeaderHint,
            Detail = result.Detail,
        };
    }
}
