using System.Net.Sockets;
using Grpc.Core;
using RaftLedger.Common;
using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport;
using RaftLedger.Node.Transport.Protos;

namespace RaftLedger.Node.Host;

/// <summary>
/// Sends one shard request to the shard's leader wherever it is: this node's own replica when it leads, or the
/// leader node through the peer Forward call. Follows leader hints, and while a shard has no leader (an election
/// is running) retries until the request timeout before giving up with NoLeader. Only attempts that applied nothing
/// are retried: a write whose outcome is unknown goes back to the caller (504), so that an `exists` in a first answer
/// always means the transfer was there before the request, never that an attempt the node made on its own created it.
/// </summary>
internal sealed class ShardRequestRouter(HostOptions options, ClusterMap map, IShardCallPaths paths)
{
    /// <summary>Attempts per request (hops to hinted leaders and retries during elections) at most.</summary>
    private const int AttemptsMax = 256;

    public ShardRequestRouter(HostOptions options, ClusterMap map, MultiRaftHost host, PeerTransport transport)
        : this(options, map, new HostCallPaths(host, transport))
    {
    }

    public async Task<ShardCallResult> CallAsync(int shard, ShardRequestKind kind, ReadOnlyMemory<byte> payload, CancellationToken cancel)
    {
        Invariant.Check(shard >= 0 && shard < map.ShardCount);
        // While a shard elects a leader, requests wait for it, up to the request timeout, rather than fail at once.
        var waitForLeaderUntil = options.Time.GetUtcNow() + options.RequestTimeout;
        var replicas = map.Shards[shard].Replicas;
        var target = Guess(shard, 0);
        var last = ShardCallResult.Fail(ShardCallStatus.NoLeader, $"shard {shard} has no leader; retry shortly");
        for (var attempt = 0; attempt < AttemptsMax && !cancel.IsCancellationRequested; attempt++)
        {
            last = target == options.NodeId
                ? await paths.ExecuteAsync(shard, kind, payload, cancel).ConfigureAwait(false)
                : await ForwardAsync(target, shard, kind, payload, cancel).ConfigureAwait(false);
            if (last.Status == ShardCallStatus.NotLeader && last.LeaderHint != 0 && last.LeaderHint != target)
            {
                target = last.LeaderHint;
                continue;
            }

            // Only "nothing applied" outcomes are retried here, so no earlier attempt can have applied anything. An
            // outcome-unknown write (a forwarded call that broke, a leader lost mid-transaction) is the caller's to
            // retry: its retry then knows that `exists` may be its own first attempt.
            if (last.Status is not (ShardCallStatus.NotLeader or ShardCallStatus.NoLeader or ShardCallStatus.Unavailable) ||
                options.Time.GetUtcNow() >= waitForLeaderUntil)
            {
                break;
            }

            // No leader known, or the one we knew is gone: wait a tick for the election, then try the next replica.
            await Task.Delay(options.TickInterval, options.Time, cancel).ConfigureAwait(false);
            target = Guess(shard, attempt + 1);
        }

        return last;

        ulong Guess(int s, int attempt)
        {
            var view = paths.View(s);
            return view.Hosted && view.Leader != 0 ? view.Leader : replicas[attempt % replicas.Length];
        }
    }

    private async Task<ShardCallResult> ForwardAsync(ulong node, int shard, ShardRequestKind kind, ReadOnlyMemory<byte> payload, CancellationToken cancel)
    {
        if (paths.IsReportedDown(node))
        {
            // The peer connection to the node closed (its process stopped, or it went silent) and has not come back:
            // nothing is sent, so nothing can have been proposed there, and the router waits for the election. A call
            // would only fail, or, to a node that is dying, break after the request went out and answer 504.
            return ShardCallResult.Fail(ShardCallStatus.Unavailable, $"node {node} (leader of shard {shard}) is down; not forwarded");
        }

        var request = new ForwardRequest { Shard = (uint)shard, Kind = (uint)kind, Payload = Google.Protobuf.UnsafeByteOperations.UnsafeWrap(payload) };
        try
        {
            var response = await paths.ForwardAsync(node, request, options.RequestTimeout + options.TickInterval, cancel).ConfigureAwait(false);
            return new ShardCallResult((ShardCallStatus)response.Status, response.Payload.Memory, response.LeaderHint, response.Detail);
        }
        catch (RpcException e) when (NeverReachedTheNode(e))
        {
            return ShardCallResult.Fail(ShardCallStatus.Unavailable, $"node {node} (leader of shard {shard}) is unreachable: {e.Status.Detail}");
        }
        catch (RpcException e)
        {
            // The call may have reached the node and proposed the write before failing (connection lost, deadline).
            return kind is ShardRequestKind.CreateAccounts or ShardRequestKind.CreateTransfers
                ? ShardCallResult.Fail(ShardCallStatus.OutcomeUnknown, $"the request forwarded to node {node} ended with {e.StatusCode}; retry with the same ids")
                : ShardCallResult.Fail(ShardCallStatus.Unavailable, $"the read forwarded to node {node} ended with {e.StatusCode}; retry");
        }
    }

    /// <summary>
    /// True only when the failed call provably never reached the node's Forward handler: no connection to it could be
    /// made. Anything else (a connection that broke after the request went out, a deadline, a cancellation, an error
    /// status from the node) may have proposed a write there, so it is not retried (see <see cref="CallAsync"/>).
    /// </summary>
    internal static bool NeverReachedTheNode(RpcException e) => e.StatusCode == StatusCode.Unavailable && e.Status.DebugException switch
    {
        // SocketsHttpHandler could not open a connection. It retries by itself, on a new connection, a stream the
        // server refused (REFUSED_STREAM) or left out of its GOAWAY, so those end here too when the node is gone;
        // when they surface otherwise (an HttpProtocolException) they stay unknown, since a GOAWAY's error code
        // arrives in the same form for streams the server may have run.
        HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } => true,

        // Grpc.Net.Client's subchannel could not connect its socket: the call failed while picking a connection,
        // before any HTTP request existed ("Error connecting to subchannel."). This is how a node that has just
        // stopped answers: its port refuses. The subchannel dials the socket itself and reports the socket's error
        // bare; errors of a connection that was open reach us wrapped (HttpRequestException, IOException), never so.
        SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostDown } => true,
        _ => false,
    };
}

/// <summary>How a request reaches a shard's leader: this node's replica or the peer Forward call (a seam for tests).</summary>
internal interface IShardCallPaths
{
    /// <summary>What this node knows of <paramref name="shard"/> (whether it hosts a replica, the leader it knows).</summary>
    ShardView View(int shard);

    /// <summary>Runs the request on this node's replica (<see cref="MultiRaftHost.ExecuteAsync"/>).</summary>
    Task<ShardCallResult> ExecuteAsync(int shard, ShardRequestKind kind, ReadOnlyMemory<byte> payload, CancellationToken cancel);

    /// <summary>Passes the request to <paramref name="node"/>; throws <see cref="RpcException"/> when the call fails.</summary>
    Task<ForwardResponse> ForwardAsync(ulong node, ForwardRequest request, TimeSpan timeout, CancellationToken cancel);

    /// <summary>True while the peer transport reports <paramref name="node"/> down (<see cref="PeerTransport.IsReportedDown"/>).</summary>
    bool IsReportedDown(ulong node);
}

internal sealed class HostCallPaths(MultiRaftHost host, PeerTransport transport) : IShardCallPaths
{
    public ShardView View(int shard) => host.View(shard);

    public Task<ShardCallResult> ExecuteAsync(int shard, ShardRequestKind kind, ReadOnlyMemory<byte> payload, CancellationToken cancel) =>
        host.ExecuteAsync(shard, kind, payload, cancel);

    public Task<ForwardResponse> ForwardAsync(ulong node, ForwardRequest request, TimeSpan timeout, CancellationToken cancel) =>
        transport.ForwardAsync(node, request, timeout, cancel);

    public bool IsReportedDown(ulong node) => transport.IsReportedDown(node);
}
