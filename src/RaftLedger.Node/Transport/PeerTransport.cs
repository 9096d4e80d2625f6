using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using RaftLedger.Common;
using RaftLedger.Node.Transport.Protos;

namespace RaftLedger.Node.Transport;

/// <summary>Receives the Raft messages that arrive from peers. Called on transport threads; must not block.</summary>
public interface IPeerMessageSink
{
    /// <summary>One Raft message of group <paramref name="groupId"/> from node <paramref name="fromNode"/>.</summary>
    void OnMessage(ulong fromNode, ulong groupId, ReadOnlyMemory<byte> raft);

    /// <summary>
    /// The stream to <paramref name="node"/> ended or could not be opened (refused, reset, closed) and no other
    /// stream to it is attached: on loopback or a LAN that means its process is gone. Reported once per outage
    /// (again only after a stream to it was attached). Hosts use it to fail over without waiting for a timeout.
    /// </summary>
    void OnPeerDown(ulong node)
    {
    }

    /// <summary>
    /// A shard snapshot streamed by <paramref name="fromNode"/>: the sink reads every chunk (the transport has
    /// checked the caller's secret) and answers whether it took the snapshot. The default refuses snapshots.
    /// </summary>
    Task<SnapshotAck> OnSnapshotAsync(ulong fromNode, IAsyncStreamReader<SnapshotChunk> chunks, CancellationToken cancel) =>
        Task.FromResult(new SnapshotAck { Installed = false, Error = "this node does not take snapshots" });

    /// <summary>
    /// A cross-shard protocol message from the leader of <paramref name="fromShard"/> on <paramref name="fromNode"/>
    /// to this node's replica of group <paramref name="groupId"/>. Sinks that host no cross-shard driver drop it.
    /// </summary>
    void OnShardMessage(ulong fromNode, int fromShard, ulong groupId, ReadOnlyMemory<byte> message)
    {
    }

    /// <summary>
    /// A heartbeat bundle from <paramref name="fromNode"/> (<see cref="HeartbeatBundle"/>): one heartbeat or response per
    /// group. Sinks that do not take bundles drop it.
    /// </summary>
    void OnHeartbeats(ulong fromNode, ReadOnlyMemory<byte> bundle)
    {
    }
}

/// <summary>Sends cross-shard protocol messages between shard leaders (best effort: lost, late or duplicated).</summary>
public interface IShardMessageSender
{
    /// <summary>Queues one message for <paramref name="toNode"/>'s replica of group <paramref name="groupId"/>; false when dropped.</summary>
    bool SendShardMessage(ulong toNode, int fromShard, ulong groupId, ReadOnlyMemory<byte> message);
}

/// <summary>Sends encoded Raft messages to other nodes (the peer transport, or a fake in tests).</summary>
public interface IRaftMessageSender
{
    /// <summary>Queues one message; false when it was dropped.</summary>
    bool Send(ulong toNode, ulong groupId, ReadOnlyMemory<byte> raft);

    /// <summary>Queues one heartbeat bundle (<see cref="HeartbeatBundle"/>) for <paramref name="toNode"/>; false when it was dropped.</summary>
    bool SendHeartbeats(ulong toNode, ReadOnlyMemory<byte> bundle);

    /// <summary>True while a stream to the node is attached (the peer's process is up and reachable).</summary>
    bool IsConnected(ulong nodeId);
}

/// <summary>Serves client requests forwarded by other nodes (see peer.proto Forward).</summary>
public interface IForwardHandler
{
    Task<ForwardResponse> HandleAsync(ForwardRequest request, CancellationToken cancel);
}

/// <summary>
/// Node-to-node transport: one bidirectional gRPC stream per node pair, dialed by the node with the lower
/// id and used in both directions; messages for every group queued per destination and sent in batches;
/// the dialer redials with exponential backoff; every stream must present the cluster secret.
/// Lifecycle: construct, <see cref="StartAsync"/> (binds the listen address), <see cref="SetPeer"/> for each
/// peer (any time), <see cref="Send"/> from the host loop, <see cref="DisposeAsync"/>.
/// </summary>
public sealed partial class PeerTransport : IRaftMessageSender, IShardMessageSender, IAsyncDisposable
{
    private readonly TransportOptions options;
    private readonly IPeerMessageSink sink;
    private readonly ILogger logger;
    private readonly byte[] secretBytes;
    private readonly ConcurrentDictionary<ulong, PeerLink> links = new();
    private readonly ConcurrentDictionary<ulong, Task> dialers = new();
    private readonly ConcurrentDictionary<ulong, string> addresses = new();
    private readonly ConcurrentDictionary<ulong, Lazy<GrpcChannel>> forwardChannels = new();
    private readonly CancellationTokenSource stopping = new();
    private WebApplication? server;
    private long rejectedStreams;
    private long receivedBatches;
    private long receivedMessages;

    public PeerTransport(TransportOptions options, IPeerMessageSink sink, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sink);
        options.Validate();
        this.options = options;
        this.sink = sink;
        this.logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        secretBytes = Encoding.UTF8.GetBytes(options.Secret);
    }

    /// <summary>The port the server listens on, once started (useful with port 0).</summary>
    public int Port { get; private set; }

    /// <summary>Streams refused because of a wrong secret or a bad node id.</summary>
    public long RejectedStreams => Interlocked.Read(ref rejectedStreams);

    /// <summary>Batches received from all peers.</summary>
    public long ReceivedBatches => Interlocked.Read(ref receivedBatches);

    /// <summary>Messages received from all peers.</summary>
    public long ReceivedMessages => Interlocked.Read(ref receivedMessages);

    /// <summary>Starts the peer server on <paramref name="listen"/> (port 0 picks a free port; see <see cref="Port"/>).</summary>
    public async Task StartAsync(IPEndPoint listen, CancellationToken cancel = default)
    {
        Invariant.Check(server is null, "StartAsync is called once");
        var builder = Api.NodeWebHost.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(listen, o => o.Protocols = HttpProtocols.Http2);
            kestrel.Limits.MaxRequestBodySize = null;
        });
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = TransportOptions.GrpcMessageBytesMax;
            grpc.MaxSendMessageSize = TransportOptions.GrpcMessageBytesMax;
        });
        builder.Services.AddSingleton(this);
        var app = builder.Build();
        app.MapGrpcService<PeerService>();
        await app.StartAsync(cancel).ConfigureAwait(false);
        server = app;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Port = new Uri(address).Port;
    }

    /// <summary>
    /// Declares peer <paramref name="nodeId"/> at <paramref name="address"/> (host:port). When this node's id is
    /// lower it dials the peer and keeps redialing; otherwise it waits for the peer to dial.
    /// </summary>
    public void SetPeer(ulong nodeId, string address)
    {
        ArgumentOutOfRangeException.ThrowIfZero(nodeId);
        ArgumentException.ThrowIfNullOrEmpty(address);
        if (nodeId == options.NodeId)
        {
            return;
        }

        addresses[nodeId] = address;
        var link = Link(nodeId);
        if (options.NodeId < nodeId)
        {
            dialers.GetOrAdd(nodeId, _ => Task.Run(() => DialLoopAsync(link, address)));
        }
    }

    /// <summary>Queues one message for <paramref name="toNode"/>; false when dropped (too large or queue full).</summary>
    public bool Send(ulong toNode, ulong groupId, ReadOnlyMemory<byte> raft)
    {
        Invariant.Check(toNode != options.NodeId, "a node never sends to itself");
        return Link(toNode).TryEnqueue(groupId, raft);
    }

    /// <summary>Queues one heartbeat bundle for <paramref name="toNode"/>; false when dropped (too large or queue full).</summary>
    public bool SendHeartbeats(ulong toNode, ReadOnlyMemory<byte> bundle)
    {
        Invariant.Check(toNode != options.NodeId, "a node never sends to itself");
        return Link(toNode).TryEnqueue(0, bundle, heartbeats: true);
    }

    /// <summary>Queues one cross-shard protocol message for <paramref name="toNode"/>; false when dropped (too large or queue full).</summary>
    public bool SendShardMessage(ulong toNode, int fromShard, ulong groupId, ReadOnlyMemory<byte> message)
    {
        Invariant.Check(toNode != options.NodeId, "a node never sends to itself");
        Invariant.Check(fromShard >= 0);
        return Link(toNode).TryEnqueue(groupId, message, fromShard);
    }

    /// <summary>Serves requests forwarded by peers; set before peers start forwarding (null refuses them).</summary>
    public IForwardHandler? ForwardHandler { get; set; }

    /// <summary>
    /// Passes a client request to node <paramref name="nodeId"/> (which leads the shard) and returns its answer.
    /// Throws <see cref="RpcException"/> when the node cannot be reached.
    /// </summary>
    public async Task<ForwardResponse> ForwardAsync(ulong nodeId, ForwardRequest request, TimeSpan timeout, CancellationToken cancel)
    {
        if (!addresses.TryGetValue(nodeId, out var address))
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"node {nodeId} has no known address"));
        }

        var channel = forwardChannels.GetOrAdd(nodeId, _ => new Lazy<GrpcChannel>(() => CreateChannel(address))).Value;
        var client = new Peer.PeerClient(channel);
        using var call = client.ForwardAsync(request, Headers(), options.Time.GetUtcNow().UtcDateTime + timeout, cancel);
        return await call.ResponseAsync.ConfigureAwait(false);
    }

    /// <summary>True while a stream to <paramref name="nodeId"/> is attached.</summary>
    public bool IsConnected(ulong nodeId) => links.TryGetValue(nodeId, out var link) && link.IsConnected;

    /// <summary>Messages for <paramref name="nodeId"/> dropped so far.</summary>
    public long DroppedMessages(ulong nodeId) => links.TryGetValue(nodeId, out var link) ? link.DroppedMessages : 0;

    /// <summary>Batches sent to <paramref name="nodeId"/> so far.</summary>
    public long SentBatches(ulong nodeId) => links.TryGetValue(nodeId, out var link) ? link.SentBatches : 0;

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        foreach (var dialer in dialers.Values)
        {
            await dialer.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        foreach (var channel in forwardChannels.Values)
        {
            if (channel.IsValueCreated)
            {
                channel.Value.Dispose();
            }
        }

        if (server is not null)
        {
            await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
        }

        stopping.Dispose();
    }

    private PeerLink Link(ulong nodeId) => links.GetOrAdd(nodeId, id => new PeerLink(id));

    private Metadata Headers() => new()
    {
        { TransportOptions.SecretHeader, options.Secret },
        { TransportOptions.NodeHeader, options.NodeId.ToString(CultureInfo.InvariantCulture) },
    };

    private static GrpcChannel CreateChannel(string address) =>
        GrpcChannel.ForAddress("http://" + address, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = TransportOptions.GrpcMessageBytesMax,
            MaxSendMessageSize = TransportOptions.GrpcMessageBytesMax,
            HttpHandler = new SocketsHttpHandler
            {
                // Pings find a peer that vanished without closing its socket (power loss, partition).
                KeepAlivePingDelay = TimeSpan.FromSeconds(1),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(2),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
                ConnectTimeout = TimeSpan.FromSeconds(2),
            },
        });

    /// <summary>Dials the peer until the transport stops; a new address (the cluster map changed) gets a new channel at the next redial.</summary>
    private async Task DialLoopAsync(PeerLink link, string address)
    {
        while (!stopping.IsCancellationRequested)
        {
            using var channel = CreateChannel(address);
            var client = new Peer.PeerClient(channel);
            var delay = options.ReconnectDelayMin;
            while (!stopping.IsCancellationRequested && addresses.GetValueOrDefault(link.RemoteId, address) == address)
            {
                var connected = await ExchangeOnceAsync(client, link).ConfigureAwait(false);
                delay = connected ? options.ReconnectDelayMin : Min(delay * 2, options.ReconnectDelayMax);
                try
                {
                    await Task.Delay(delay, options.Time, stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            address = addresses.GetValueOrDefault(link.RemoteId, address);
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>One stream's life on the dialing side; true when it carried at least one message back.</summary>
    private async Task<bool> ExchangeOnceAsync(Peer.PeerClient client, PeerLink link)
    {
        using var streamCancel = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
        var headers = Headers();
        try
        {
            using var call = client.Exchange(headers, cancellationToken: streamCancel.Token);
            // Wait for the server's response headers: a refused secret fails here, before anything is queued onto the stream.
            await call.ResponseHeadersAsync.ConfigureAwait(false);
            var pump = link.PumpAsync(call.RequestStream, streamCancel.Token);
            var read = ReceiveAsync(link.RemoteId, call.ResponseStream, streamCancel.Token);
            await Task.WhenAny(pump, read).ConfigureAwait(false);
            await streamCancel.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(pump, read).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            ReportDown(link, read.Exception?.InnerException?.Message ?? "the stream ended");
            return true;
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException or IOException or HttpRequestException)
        {
            logger.LogDebug("stream to node {Node} failed: {Error}", link.RemoteId, e.Message);
            ReportDown(link, e.Message);
            return false;
        }
    }

    /// <summary>Tells the sink that <paramref name="link"/>'s peer is down, once per outage, unless we are stopping.</summary>
    private void ReportDown(PeerLink link, string reason)
    {
        if (stopping.IsCancellationRequested || link.IsConnected || !link.TryMarkDown())
        {
            return;
        }

        logger.LogInformation("peer node {Node} is down: {Reason}", link.RemoteId, reason);
        sink.OnPeerDown(link.RemoteId);
    }

    /// <summary>Delivers every message of every batch read from <paramref name="stream"/> until it ends.</summary>
    internal async Task ReceiveAsync(ulong fromNode, IAsyncStreamReader<PeerBatch> stream, CancellationToken cancel)
    {
        while (await stream.MoveNext(cancel).ConfigureAwait(false))
        {
            var batch = stream.Current;
            Interlocked.Increment(ref receivedBatches);
            foreach (var message in batch.Messages)
            {
                Interlocked.Increment(ref receivedMessages);
                if (message.Heartbeats)
                {
                    sink.OnHeartbeats(fromNode, message.Raft.Memory);
                }
                else if (message.ShardMessage)
                {
                    sink.OnShardMessage(fromNode, (int)message.FromShard, message.GroupId, message.Raft.Memory);
                }
                else
                {
                    sink.OnMessage(fromNode, message.GroupId, message.Raft.Memory);
                }
            }
        }
    }

    /// <summary>Server side of a stream: checks the secret and the caller, then runs it both ways until either side ends.</summary>
    internal async Task AcceptAsync(IAsyncStreamReader<PeerBatch> requests, IServerStreamWriter<PeerBatch> responses, ServerCallContext context)
    {
        var fromNode = Authenticate(context.RequestHeaders);
        await context.WriteResponseHeadersAsync([]).ConfigureAwait(false);
        using var streamCancel = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token, context.CancellationToken);
        var link = Link(fromNode);
        var pump = link.PumpAsync(responses, streamCancel.Token);
        var read = ReceiveAsync(fromNode, requests, streamCancel.Token);
        await Task.WhenAny(pump, read).ConfigureAwait(false);
        await streamCancel.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(pump, read).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        ReportDown(link, read.Exception?.InnerException?.Message ?? "the stream ended");
    }

    /// <summary>Server side of a forwarded request: checks the secret, then hands it to the host.</summary>
    internal Task<ForwardResponse> ServeForwardAsync(ForwardRequest request, ServerCallContext context)
    {
        Authenticate(context.RequestHeaders);
        var handler = ForwardHandler ?? throw new RpcException(new Status(StatusCode.Unavailable, "this node is starting; retry shortly"));
        return handler.HandleAsync(request, context.CancellationToken);
    }

    private ulong Authenticate(Metadata headers)
    {
        var secret = headers.GetValue(TransportOptions.SecretHeader);
        var presented = Encoding.UTF8.GetBytes(secret ?? string.Empty);
        if (!CryptographicOperations.FixedTimeEquals(presented, secretBytes))
        {
            Interlocked.Increment(ref rejectedStreams);
            throw new RpcException(new Status(StatusCode.Unauthenticated, "wrong cluster secret: start every node with the same --secret"));
        }

        if (!ulong.TryParse(headers.GetValue(TransportOptions.NodeHeader), CultureInfo.InvariantCulture, out var fromNode) ||
            fromNode == 0 || fromNode == options.NodeId)
        {
            Interlocked.Increment(ref rejectedStreams);
            throw new RpcException(new Status(StatusCode.InvalidArgument, "missing or invalid x-raftledger-node header: give every node a distinct id ≥ 1"));
        }

        return fromNode;
    }
}

/// <summary>The gRPC endpoint of <see cref="PeerTransport"/>.</summary>
internal sealed class PeerService(PeerTransport transport) : Peer.PeerBase
{
    public override Task Exchange(IAsyncStreamReader<PeerBatch> requestStream, IServerStreamWriter<PeerBatch> responseStream, ServerCallContext context) =>
        transport.AcceptAsync(requestStream, responseStream, context);

    public override Task<ForwardResponse> Forward(ForwardRequest request, ServerCallContext context) =>
        transport.ServeForwardAsync(request, context);

    public override Task<SnapshotAck> InstallSnapshot(IAsyncStreamReader<SnapshotChunk> requestStream, ServerCallContext context) =>
        transport.ServeInstallSnapshotAsync(requestStream, context);
}
