using System.Buffers.Binary;
using System.IO.Hashing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftLedger.Ledger;
using RaftLedger.Node.Api;
using RaftLedger.Node.Meta;
using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport;
using RaftLedger.Node.Transport.Protos;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// One running node: the cluster map, the node log, a replica (Raft core + ledger) of each shard placed on this
/// node, the multi-raft scheduler, the peer transport and the client-facing <see cref="ILedgerService"/>.
/// Start with <see cref="StartAsync"/>; <see cref="DisposeAsync"/> stops it cleanly.
/// </summary>
public sealed partial class NodeHost : IForwardHandler, IAsyncDisposable
{
    private readonly INodeStorage log;
    private readonly ILogger logger;
    private readonly ClusterMap localMap;

    private NodeHost(HostOptions options, ClusterMap map, INodeStorage log, MultiRaftHost scheduler, PeerTransport transport, ILogger logger)
    {
        Options = options;
        localMap = map;
        this.log = log;
        Scheduler = scheduler;
        Transport = transport;
        this.logger = logger;
        var router = new ShardRequestRouter(options, map, scheduler, transport);
        Service = new NodeLedgerService(options, map, scheduler, transport, router);
    }

    public HostOptions Options { get; }

    /// <summary>
    /// The cluster map this node runs with: the meta group's latest applied map, or (until this node has one) the map
    /// in its data folder or its bootstrap map. Placement is fixed at bootstrap, so only addresses can change.
    /// </summary>
    public ClusterMap Map => Scheduler.LatestMeta.Map ?? localMap;

    public MultiRaftHost Scheduler { get; }

    public PeerTransport Transport { get; }

    /// <summary>The client API's view of the cluster, served through this node.</summary>
    public ILedgerService Service { get; }

    /// <summary>Starts a node: loads or bootstraps the cluster map, opens storage, starts the transport and the scheduler.</summary>
    public static async Task<NodeHost> StartAsync(HostOptions options, ILogger? logger = null, CancellationToken cancel = default, StartupTimeline? timeline = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        logger ??= NullLogger.Instance;
        timeline ??= StartupTimeline.None;
        var (map, metaState, created, ignored) = ClusterMapFile.LoadOrCreate(options.DataDirectory, BootstrapMap(options));
        timeline.Mark("cluster map loaded");
        foreach (var flag in ignored)
        {
            logger.LogWarning("ignoring {Flag}: this node's data folder already holds the cluster's configuration", flag);
        }

        if (map.Node(options.NodeId) is null)
        {
            throw new InvalidOperationException($"node {options.NodeId} is not a member of the cluster in {options.DataDirectory}; use an id from its cluster map or an empty data folder");
        }

        var rejoining = options.Durable ? RejoinMarker.Begin(options.DataDirectory, options.Rejoin) : options.Rejoin;
        if (rejoining)
        {
            logger.LogWarning("rejoining after a wipe: this node's groups neither vote nor campaign until each has caught up with its leader");
        }

        INodeStorage log = options.Durable ? new DurableNodeStorage(options.DataDirectory, timeline, options.WalSegmentBytes) : new MemoryNodeStorage();
        List<ShardReplica> replicas;
        MetaReplica? metaReplica;
        var voters = MetaState.Voters(map.Nodes.Select(n => n.Id));
        // The in-memory log forgets the meta group at every start: the meta state then starts empty too.
        metaState = options.Durable ? metaState : new MetaState(null, 0, 0);
        try
        {
            replicas = CreateReplicas(options, map, log, rejoining, logger);
            metaReplica = voters.Contains(options.NodeId) ? CreateMetaReplica(options, voters, map, metaState, log, rejoining, logger) : null;
            timeline.Mark("ledger stores and Raft cores opened", ReplayDetail(replicas));
        }
        catch
        {
            log.Dispose();
            throw;
        }

        var scheduler = new MultiRaftHost(options, map.ShardCount, replicas, log, logger)
        {
            Timeline = timeline,
            RoundMetrics = NodeMetrics.ForNode(options.NodeId),
        };
        scheduler.UseMeta(metaReplica, voters, map, metaState);
        scheduler.Rejoining = rejoining;
        var transport = new PeerTransport(new TransportOptions { NodeId = options.NodeId, Secret = options.Secret, Time = options.Time }, scheduler, logger);
        scheduler.UseCrossShard(new ShardMessenger(map), transport);
        var node = new NodeHost(options, map, log, scheduler, transport, logger);
        transport.ForwardHandler = node;
        await transport.StartAsync(options.Listen, cancel).ConfigureAwait(false);
        timeline.Mark("peer transport listening");
        foreach (var member in map.Nodes)
        {
            transport.SetPeer(member.Id, member.PeerAddress);
        }

        scheduler.MetaChanged = node.OnMetaChanged;
        scheduler.Start(transport);
        NodeMetrics.Track(options.NodeId, scheduler, transport);
        node.StartMetaClient();
        logger.LogInformation("node {Node} started ({State}): {Shards} shards, {Local} replicas here, peer port {Port}",
            options.NodeId, StartKind(created, rejoining), map.ShardCount, replicas.Count, transport.Port);
        return node;
    }

    /// <summary>
    /// What the start line says this node is doing. A wiped node started with <c>--rejoin</c> bootstraps its empty folder
    /// from the flags like a new cluster's first start, but it joins a running cluster, and "new cluster" there misled
    /// operators reading the log.
    /// </summary>
    internal static string StartKind(bool created, bool rejoining) => (created, rejoining) switch
    {
        (_, true) => "rejoining",
        (true, false) => "new cluster",
        (false, false) => "existing cluster",
    };

    /// <summary>How much committed log the replicas re-apply at start (their ledger state lags the log after a crash).</summary>
    private static string ReplayDetail(List<ShardReplica> replicas)
    {
        ulong toApply = 0;
        ulong logged = 0;
        foreach (var replica in replicas)
        {
            var status = replica.Raft.Status();
            toApply += status.Commit - Math.Min(status.Commit, replica.Applied);
            logged += status.LastIndex - Math.Min(status.LastIndex, replica.Applied);
        }

        return $"{replicas.Count} shard replicas, {toApply} committed entries to re-apply, {logged} logged entries after the ledger state";
    }

    private static ClusterMap BootstrapMap(HostOptions options)
    {
        var nodes = options.Peers.Select(p => new ClusterNode(p.Key, p.Value,
            options.ApiAddresses.GetValueOrDefault(p.Key, p.Key == options.NodeId ? options.ApiAddress : ""),
            options.GrpcAddresses.GetValueOrDefault(p.Key, p.Key == options.NodeId ? options.GrpcAddress : ""))).ToList();
        return ClusterMap.Bootstrap(nodes, options.ShardCount, Math.Min(options.Replication, nodes.Count));
    }

    private static List<ShardReplica> CreateReplicas(HostOptions options, ClusterMap map, INodeStorage log, bool rejoining, ILogger logger)
    {
        var replicas = new List<ShardReplica>();
        foreach (var placement in map.ShardsOn(options.NodeId))
        {
            var groupId = ClusterMap.GroupOf(placement.Shard);
            var storage = log.Group(groupId);
            var (store, applied) = log.OpenLedger(placement.Shard);
            var ledger = new LedgerStateMachine(store);
            var raft = new RaftNode(options.RaftConfig(applied, rejoining), storage, new DeterministicRandom(Seed(options, groupId)));
            if (storage.LastIndex == 0 && storage.HardState.IsEmpty)
            {
                // A founding member of a new group: every founder writes the same membership (the placement).
                raft.Bootstrap(placement.Replicas);
                logger.LogInformation("shard {Shard}: bootstrapped with replicas {Replicas}", placement.Shard, string.Join(",", placement.Replicas));
            }

            var replica = new ShardReplica(placement.Shard, placement.Replicas, raft, ledger, applied, options.Time);
            replica.EnableCrossShard(map.ShardCount, options.CrossShard);
            replicas.Add(replica);
        }

        return replicas;
    }

    /// <summary>Election randomness: distinct per node, group and start, so nodes do not time out in lockstep.</summary>
    private static ulong Seed(HostOptions options, ulong groupId)
    {
        Span<byte> bytes = stackalloc byte[24];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, options.NodeId);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[8..], groupId);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[16..], options.Time.GetTimestamp());
        return XxHash64.HashToUInt64(bytes);
    }

    /// <summary>Serves a request another node forwarded here because this node leads the shard (no further hops).</summary>
    async Task<ForwardResponse> IForwardHandler.HandleAsync(ForwardRequest request, CancellationToken cancel)
    {
        if (request.Shard == MetaForwardShard)
        {
            return await HandleMetaAsync(request, cancel).ConfigureAwait(false);
        }

        var kind = (ShardRequestKind)request.Kind;
        if (request.Shard >= (uint)Map.ShardCount || !Enum.IsDefined(kind) || !ShardPayload.IsWellFormed(kind, request.Payload.Length))
        {
            return new ForwardResponse { Status = (uint)ShardCallStatus.Unavailable, Detail = $"malformed forwarded request ({kind}, shard {request.Shard}); the nodes run different versions" };
        }

        var result = await Scheduler.ExecuteAsync((int)request.Shard, kind, request.Payload.Memory, cancel).ConfigureAwait(false);
        return new ForwardResponse
        {
            Status = (uint)result.Status,
            Payload = Google.Protobuf.UnsafeByteOperations.UnsafeWrap(result.Payload),
            LeaderHint = result.LeaderHint,
            Detail = result.Detail,
        };
    }

    public async ValueTask DisposeAsync()
    {
        logger.LogInformation("node {Node} stopping", Options.NodeId);
        await StopMetaClientAsync().ConfigureAwait(false);
        NodeMetrics.Untrack(Options.NodeId, Scheduler, Transport);
        await Scheduler.DisposeAsync().ConfigureAwait(false);
        await Transport.DisposeAsync().ConfigureAwait(false);
        log.Dispose();
    }
}
