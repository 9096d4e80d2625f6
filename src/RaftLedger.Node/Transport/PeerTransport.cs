using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
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

    /// <summary>
    /// Messages queued from now on wait for <see cref="ReleaseSends"/> instead of being written at once, so that what
    /// one phase of the host's round sends to a peer leaves as one frame. For the host's loop only (it sends from no
    /// other place); a sender that does not batch ignores it.
    /// </summary>
    void HoldSends()
    {
    }

    /// <summary>Writes what was queued since <see cref="HoldSends"/> and stops holding.</summary>
    void ReleaseSends()
    {
    }
}

/// <summary>Serves client requests forwarded by other nodes (see peer.proto Forward).</summary>
public interface IForwardHandler
{
    Task<ForwardResponse> HandleAsync(ForwardRequest request, CancellationToken cancel);
}

/// <summary>
/// Node-to-node transport: one plain TCP connection per node pair (<see cref="PeerFrames"/>, on the same port as the
/// peer gRPC server, which keeps snapshots and forwarded requests), dialed by the node with the lower id and used in
/// both directions; messages for every group queued per destination and sent in batches, one frame each; the dialer
/// redials with exponential backoff; every connection must present the cluster secret in its hello.
/// Lifecycle: construct, <see cref="StartAsync"/> (binds the listen address), <see cref="SetPeer"/> for each
/// peer (any time), <see cref="Send"/> from the host loop, <see cref="DisposeAsync"/>.
/// </summary>
public sealed partial class PeerTransport : IRaftMessageSender, IShardMessageSender, IAsyncDisposable
{
    /// <summary>What a refused hello with the wrong secret means, and what to do (both sides log it).</summary>
    private const string SecretRemedy = "the nodes have different cluster secrets; start every node with the same --secret";

    private readonly TransportOptions options;
    private readonly IPeerMessageSink sink;
    private readonly ILogger logger;
    private readonly byte[] secretBytes;
    private readonly ConcurrentDictionary<ulong, PeerLink> links = new();
    private readonly ConcurrentDictionary<ulong, Task> dialers = new();
    private readonly ConcurrentDictionary<ulong, string> addresses = new();
    private readonly ConcurrentDictionary<ulong, Lazy<GrpcChannel>> forwardChannels = new();
    private readonly CancellationTokenSource stopping = new();
    private readonly RefusalWarnings refusalWarnings;

    // Set by the host's loop while it holds its sends (HoldSends); other senders' messages then wait for the release too.
    private bool holdingSends;
    private WebApplication? server;
    private long rejectedStreams;
    private long refusedDials;
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
        refusalWarnings = new RefusalWarnings(options.Time);
    }

    /// <summary>The port the server listens on, once started (useful with port 0).</summary>
    public int Port { get; private set; }

    /// <summary>Streams and calls this node refused because of a wrong secret, a bad node id or a malformed hello.</summary>
    public long RejectedStreams => Interlocked.Read(ref rejectedStreams);

    /// <summary>Connections this node dialed that the peer refused (it has another secret, or finds our node id bad).</summary>
    public long RefusedDials => Interlocked.Read(ref refusedDials);

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
            kestrel.Listen(listen, o =>
            {
                o.Protocols = HttpProtocols.Http2;
                // Peer connections (our preface) are served here; HTTP/2 (snapshots, forwarded requests) passes on.
                o.Use(next => connection => ServeConnectionAsync(connection, next));
            });
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

    /// <summary>
    /// True while <paramref name="nodeId"/> is reported down (<see cref="IPeerMessageSink.OnPeerDown"/>: its stream ended
    /// or could not be opened, and none is attached since). False for a peer never dialed or never seen.
    /// </summary>
    public bool IsReportedDown(ulong nodeId) => links.TryGetValue(nodeId, out var link) && link.IsReportedDown;

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

    private PeerLink Link(ulong nodeId) => links.GetOrAdd(nodeId, id => new PeerLink(id, () => Volatile.Read(ref holdingSends)));

    /// <inheritdoc/>
    public void HoldSends() => Volatile.Write(ref holdingSends, true);

    /// <inheritdoc/>
    public void ReleaseSends()
    {
        // A full fence: a sender that queued while this was still set, and so left its message to us, is seen below.
        Interlocked.Exchange(ref holdingSends, false);
        foreach (var link in links.Values)
        {
            link.Kick();
        }
    }

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

    /// <summary>Dials the peer until the transport stops, at its current address (the cluster map may change it).</summary>
    private async Task DialLoopAsync(PeerLink link, string address)
    {
        var delay = options.ReconnectDelayMin;
        while (!stopping.IsCancellationRequested)
        {
            address = addresses.GetValueOrDefault(link.RemoteId, address);
            var connected = await ConnectOnceAsync(link, address).ConfigureAwait(false);
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
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>One connection's life on the dialing side; true when the peer accepted the hello.</summary>
    private async Task<bool> ConnectOnceAsync(PeerLink link, string address)
    {
        using var watchdog = new PeerWatchdog(options, stopping.Token);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            var endpoint = new Uri("http://" + address);
            await socket.ConnectAsync(endpoint.IdnHost, endpoint.Port, watchdog.Token).ConfigureAwait(false);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            // The pipes are not completed at the end: completing the writer would flush what a cancelled write left
            // buffered, which can block on a peer that stopped reading. Closing the stream and socket ends them.
            var input = PipeReader.Create(stream);
            var output = PipeWriter.Create(stream);
            // A refused hello ends the attempt here, before anything queued is written.
            var answer = await HelloAsync(input, output, watchdog).ConfigureAwait(false);
            if (answer != PeerHelloAnswer.Accepted)
            {
                OnRefusedByPeer(link, address, answer);
                return false;
            }

            var reason = await new PeerConnection(link, input, output, watchdog, Deliver).RunAsync().ConfigureAwait(false);
            ReportDown(link, reason);
            return true;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or InvalidDataException or UriFormatException)
        {
            logger.LogDebug("connection to node {Node} failed: {Error}", link.RemoteId, e.Message);
            ReportDown(link, e.Message);
            return false;
        }
    }

    /// <summary>
    /// The peer refused our hello: the cluster is misconfigured (a wrong --secret or --id), which no redial fixes, so
    /// the operator is told at warning level (rate-limited per peer; the dialer keeps redialing meanwhile).
    /// </summary>
    private void OnRefusedByPeer(PeerLink link, string address, PeerHelloAnswer answer)
    {
        Interlocked.Increment(ref refusedDials);
        var remedy = answer == PeerHelloAnswer.WrongSecret
            ? SecretRemedy
            : $"our node id {options.NodeId} is 0 or its own; give every node a distinct id ≥ 1";
        if (refusalWarnings.ShouldWarn(link.RemoteId))
        {
            logger.LogWarning("peer node {Node} at {Address} refused this node's connection: {Remedy} (logged at most every {Interval} s per peer)",
                link.RemoteId, address, remedy, RefusalWarnings.IntervalSeconds);
        }

        ReportDown(link, remedy);
    }

    /// <summary>Sends this node's hello and returns the peer's answer; throws when the connection ends first.</summary>
    private async Task<PeerHelloAnswer> HelloAsync(PipeReader input, PipeWriter output, PeerWatchdog watchdog)
    {
        PeerFrames.WriteHello(output, options.NodeId, secretBytes);
        await output.FlushAsync(watchdog.Token).ConfigureAwait(false);
        while (true)
        {
            var result = await input.ReadAsync(watchdog.Token).ConfigureAwait(false);
            var buffer = result.Buffer;
            var answered = PeerFrames.TryReadAnswer(ref buffer, out var answer);
            // Bytes after the answer (the peer's first frame) are not examined yet: the next read must return them at once.
            input.AdvanceTo(buffer.Start, answered ? buffer.Start : buffer.End);
            if (answered)
            {
                watchdog.NoteReceived();
                return answer;
            }

            if (result.IsCompleted)
            {
                throw new IOException("the peer closed the connection before answering the hello");
            }
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

    /// <summary>Hands every message of one received frame to the sink (pings only prove the peer is alive).</summary>
    private void Deliver(ulong fromNode, List<PeerFrameMessage> frame)
    {
        var delivered = 0;
        foreach (var message in frame)
        {
            switch (message.Kind)
            {
                case PeerMessageKind.Raft:
                    sink.OnMessage(fromNode, message.GroupId, message.Payload);
                    break;
                case PeerMessageKind.Heartbeats:
                    sink.OnHeartbeats(fromNode, message.Payload);
                    break;
                case PeerMessageKind.Shard:
                    sink.OnShardMessage(fromNode, message.FromShard, message.GroupId, message.Payload);
                    break;
                default:
                    continue;
            }

            delivered++;
        }

        if (delivered > 0)
        {
            Interlocked.Increment(ref receivedBatches);
            Interlocked.Add(ref receivedMessages, delivered);
        }
    }

    /// <summary>
    /// Kestrel connection middleware: a connection whose first byte is our preface's is a peer connection; any other
    /// (HTTP/2 starts with "PRI") goes to <paramref name="next"/> with nothing consumed.
    /// </summary>
    private async Task ServeConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        var input = connection.Transport.Input;
        var result = await input.ReadAsync(connection.ConnectionClosed).ConfigureAwait(false);
        var ours = !result.Buffer.IsEmpty && result.Buffer.FirstSpan[0] == PeerFrames.Preface[0];
        // Consumed and examined nothing: the next read (ours or HTTP/2's) sees the same bytes at once.
        input.AdvanceTo(result.Buffer.Start);
        if (!ours)
        {
            await next(connection).ConfigureAwait(false);
            return;
        }

        try
        {
            // Kestrel closes the connection when this returns.
            await AcceptAsync(connection).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidDataException or ConnectionResetException)
        {
            logger.LogDebug("peer connection from {Remote} failed: {Error}", connection.RemoteEndPoint, e.Message);
        }
    }

    /// <summary>Accepting side of a peer connection: checks the hello, answers, then runs the connection.</summary>
    private async Task AcceptAsync(ConnectionContext connection)
    {
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token, connection.ConnectionClosed);
        using var watchdog = new PeerWatchdog(options, closed.Token);
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        var (answer, fromNode) = await ReadHelloAsync(input, watchdog, connection.RemoteEndPoint?.ToString() ?? "an unknown address").ConfigureAwait(false);
        PeerFrames.WriteAnswer(output, answer);
        await output.FlushAsync(watchdog.Token).ConfigureAwait(false);
        if (answer != PeerHelloAnswer.Accepted)
        {
            return;
        }

        var link = Link(fromNode);
        var reason = await new PeerConnection(link, input, output, watchdog, Deliver).RunAsync().ConfigureAwait(false);
        // Abort rather than close: a write the peer stopped reading would otherwise hold the close until Kestrel's
        // shutdown timeout; the peer is gone, broken or we are stopping, so nothing in flight is worth delivering.
        connection.Abort(new ConnectionAbortedException(reason));
        ReportDown(link, reason);
    }

    /// <summary>Reads and checks a dialer's hello; a malformed one counts as a refused stream (as a wrong secret does).</summary>
    private async Task<(PeerHelloAnswer Answer, ulong FromNode)> ReadHelloAsync(PipeReader input, PeerWatchdog watchdog, string remote)
    {
        while (true)
        {
            var result = await input.ReadAsync(watchdog.Token).ConfigureAwait(false);
            var buffer = result.Buffer;
            var status = PeerFrames.TryReadHello(ref buffer, out var fromNode, out var secret);
            // As in HelloAsync: what follows the hello is the first frame, for the connection's next read.
            input.AdvanceTo(buffer.Start, status == PeerReadStatus.Complete ? buffer.Start : buffer.End);
            if (status == PeerReadStatus.Complete)
            {
                watchdog.NoteReceived();
                return (Authenticate(secret, fromNode, remote), fromNode);
            }

            if (status == PeerReadStatus.Malformed || result.IsCompleted)
            {
                Interlocked.Increment(ref rejectedStreams);
                throw new InvalidDataException("a connection sent no valid peer hello");
            }
        }
    }

    /// <summary>
    /// Checks a caller's secret (in fixed time) and node id; anything but Accepted is counted in
    /// <see cref="RejectedStreams"/> and logged as a warning (rate-limited per claimed node id).
    /// </summary>
    private PeerHelloAnswer Authenticate(byte[] presentedSecret, ulong fromNode, string remote)
    {
        var answer = !CryptographicOperations.FixedTimeEquals(presentedSecret, secretBytes) ? PeerHelloAnswer.WrongSecret
            : fromNode == 0 || fromNode == options.NodeId ? PeerHelloAnswer.BadNodeId
            : PeerHelloAnswer.Accepted;
        if (answer != PeerHelloAnswer.Accepted)
        {
            Interlocked.Increment(ref rejectedStreams);
            WarnRefused(answer, fromNode, remote);
        }

        return answer;
    }

    private void WarnRefused(PeerHelloAnswer answer, ulong fromNode, string remote)
    {
        if (!refusalWarnings.ShouldWarn(fromNode))
        {
            return;
        }

        var remedy = answer == PeerHelloAnswer.WrongSecret
            ? SecretRemedy
            : $"its node id is 0 or this node's own ({options.NodeId}); give every node a distinct id ≥ 1";
        logger.LogWarning("refused a peer connection from {Remote} claiming to be node {Node}: {Remedy} (logged at most every {Interval} s per peer)",
            remote, fromNode, remedy, RefusalWarnings.IntervalSeconds);
    }

    /// <summary>Server side of a forwarded request: checks the secret, then hands it to the host.</summary>
    internal Task<ForwardResponse> ServeForwardAsync(ForwardRequest request, ServerCallContext context)
    {
        Authenticate(context);
        var handler = ForwardHandler ?? throw new RpcException(new Status(StatusCode.Unavailable, "this node is starting; retry shortly"));
        return handler.HandleAsync(request, context.CancellationToken);
    }

    private ulong Authenticate(ServerCallContext context)
    {
        var headers = context.RequestHeaders;
        var presented = Encoding.UTF8.GetBytes(headers.GetValue(TransportOptions.SecretHeader) ?? string.Empty);
        _ = ulong.TryParse(headers.GetValue(TransportOptions.NodeHeader), CultureInfo.InvariantCulture, out var fromNode);
        return Authenticate(presented, fromNode, context.Peer) switch
        {
            PeerHelloAnswer.Accepted => fromNode,
            PeerHelloAnswer.WrongSecret => throw new RpcException(new Status(StatusCode.Unauthenticated, "wrong cluster secret: start every node with the same --secret")),
            _ => throw new RpcException(new Status(StatusCode.InvalidArgument, "missing or invalid x-raftledger-node header: give every node a distinct id ≥ 1")),
        };
    }
}

/// <summary>The gRPC endpoint of <see cref="PeerTransport"/>.</summary>
internal sealed class PeerService(PeerTransport transport) : Peer.PeerBase
{
    public override Task<ForwardResponse> Forward(ForwardRequest request, ServerCallContext context) =>
        transport.ServeForwardAsync(request, context);

    public override Task<SnapshotAck> InstallSnapshot(IAsyncStreamReader<SnapshotChunk> requestStream, ServerCallContext context) =>
        transport.ServeInstallSnapshotAsync(requestStream, context);
}
