using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace RaftLedger.Cli.Verify.Proxy;

/// <summary>
/// A TCP proxy from one node to another (the dialing node's side of a link) that the harness can cut, one
/// direction at a time. A cut direction becomes a black hole: bytes are read and discarded, so the sender sees
/// an open socket that never answers, as in a real partition (no reset, no refusal). A connection that lost
/// bytes carries a corrupted stream, so healing closes it and the nodes redial through the proxy.
/// Forward = bytes from the connecting side (the dialer) to the target; backward = the answers.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    /// <summary>Bytes moved per read; a node's peer stream sends batches of up to a few MiB, in pieces.</summary>
    public const int BufferBytes = 64 * 1024;

    private readonly TcpListener listener;
    private readonly IPEndPoint target;
    private readonly ConcurrentDictionary<ProxiedConnection, byte> connections = new();
    private readonly CancellationTokenSource stopping = new();
    private readonly Task acceptLoop;

    // Read by the pumps on every chunk; written by the harness. Volatile so a cut takes effect on the next chunk.
    private volatile bool forwardCut;
    private volatile bool backwardCut;
    private long forwardedBytes;
    private long discardedBytes;
    private long acceptedConnections;

    public FaultProxy(IPEndPoint target)
    {
        ArgumentNullException.ThrowIfNull(target);
        this.target = target;
        listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Listen = (IPEndPoint)listener.LocalEndpoint;
        acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The loopback address the dialing node connects to.</summary>
    public IPEndPoint Listen { get; }

    public IPEndPoint Target => target;

    public bool ForwardCut => forwardCut;

    public bool BackwardCut => backwardCut;

    /// <summary>Bytes delivered in either direction so far.</summary>
    public long ForwardedBytes => Interlocked.Read(ref forwardedBytes);

    /// <summary>Bytes swallowed by a cut so far.</summary>
    public long DiscardedBytes => Interlocked.Read(ref discardedBytes);

    public long AcceptedConnections => Interlocked.Read(ref acceptedConnections);

    /// <summary>Connections currently open through the proxy.</summary>
    public int OpenConnections => connections.Count;

    /// <summary>
    /// Cuts (true) or restores (false) each direction. Restoring a direction closes every connection that lost
    /// bytes in it: resuming a stream with a hole in it would only feed the receiver garbage.
    /// </summary>
    public void SetCut(bool forward, bool backward)
    {
        forwardCut = forward;
        backwardCut = backward;
        foreach (var connection in connections.Keys)
        {
            if ((connection.LostForward && !forward) || (connection.LostBackward && !backward))
            {
                connection.Close();
            }
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref acceptedConnections);
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        try
        {
            await upstream.ConnectAsync(target, stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The target node is down: the dialer sees its connection closed, as it would see a refusal.
            client.Dispose();
            upstream.Dispose();
            return;
        }

        var connection = new ProxiedConnection(client, upstream);
        connections[connection] = 0;
        try
        {
            var forward = PumpAsync(connection, client, upstream, isForward: true);
            var backward = PumpAsync(connection, upstream, client, isForward: false);
            await Task.WhenAny(forward, backward).ConfigureAwait(false);
        }
        finally
        {
            connection.Close();
            connections.TryRemove(connection, out _);
        }
    }

    /// <summary>Copies <paramref name="from"/> to <paramref name="to"/> until either ends; while the direction is cut, discards.</summary>
    private async Task PumpAsync(ProxiedConnection connection, Socket from, Socket to, bool isForward)
    {
        var buffer = new byte[BufferBytes];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, stopping.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    return;
                }

                if (isForward ? forwardCut : backwardCut)
                {
                    connection.MarkLost(isForward);
                    Interlocked.Add(ref discardedBytes, read);
                    continue;
                }

                await SendAllAsync(to, buffer.AsMemory(0, read)).ConfigureAwait(false);
                Interlocked.Add(ref forwardedBytes, read);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Either side closed, or the proxy is stopping: the connection ends.
        }
    }

    private async Task SendAllAsync(Socket to, ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var sent = await to.SendAsync(bytes, SocketFlags.None, stopping.Token).ConfigureAwait(false);
            bytes = bytes[sent..];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        listener.Stop();
        await acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        foreach (var connection in connections.Keys)
        {
            connection.Close();
        }

        stopping.Dispose();
    }

    /// <summary>Both sockets of one proxied connection.</summary>
    private sealed class ProxiedConnection(Socket client, Socket upstream)
    {
        private int closed;

        // Set by a pump that discarded bytes: that direction's stream is corrupt from then on and must not resume.
        private volatile bool lostForward;
        private volatile bool lostBackward;

        public bool LostForward => lostForward;

        public bool LostBackward => lostBackward;

        public void MarkLost(bool forward)
        {
            if (forward)
            {
                lostForward = true;
            }
            else
            {
                lostBackward = true;
            }
        }

        public void Close()
        {
            if (Interlocked.Exchange(ref closed, 1) == 0)
            {
                client.Dispose();
                upstream.Dispose();
            }
        }
    }
}
