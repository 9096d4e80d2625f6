using System.Net;
using System.Net.Sockets;
using RaftLedger.Cli.Verify.Proxy;

namespace RaftLedger.Node.Tests.Verify;

/// <summary>The fault proxy on loopback: a target that echoes what it receives behind one proxy.</summary>
public sealed class FaultProxyTests : IAsyncLifetime
{
    private static readonly TimeSpan WaitMax = TimeSpan.FromSeconds(20);
    private readonly TcpListener target = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource stop = new();
    private long targetReceivedBytes;
    private FaultProxy? proxy;
    private Task? server;

    private FaultProxy Proxy => proxy!;

    public ValueTask InitializeAsync()
    {
        target.Start();
        proxy = new FaultProxy((IPEndPoint)target.LocalEndpoint);
        server = Task.Run(ServeAsync);
        return ValueTask.CompletedTask;
    }

    /// <summary>Every accepted connection first sends "hi!" and then echoes every byte back.</summary>
    private async Task ServeAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await target.AcceptSocketAsync(stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using (socket)
                {
                    var buffer = new byte[4096];
                    try
                    {
                        await socket.SendAsync("hi!"u8.ToArray(), SocketFlags.None);
                        int read;
                        while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token)) > 0)
                        {
                            Interlocked.Add(ref targetReceivedBytes, read);
                            await socket.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, stop.Token);
                        }
                    }
                    catch (Exception e) when (e is SocketException or OperationCanceledException)
                    {
                    }
                }
            });
        }
    }

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(Proxy.Listen, TestContext.Current.CancellationToken);
        return socket;
    }

    private static async Task<string> ReadExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        using var timeout = new CancellationTokenSource(WaitMax);
        var got = 0;
        while (got < count)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, timeout.Token);
            Assert.True(read > 0, "the connection closed before the expected bytes arrived");
            got += read;
        }

        return System.Text.Encoding.ASCII.GetString(buffer);
    }

    /// <summary>Polls a counter until it reaches a value (bounded): the proxy's counters are the synchronization, not time.</summary>
    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + WaitMax;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}");
            await Task.Yield();
            await Task.Delay(1, TestContext.Current.CancellationToken);
        }
    }

    private static async Task<bool> IsClosedAsync(Socket socket, CancellationToken cancel)
    {
        try
        {
            return await socket.ReceiveAsync(new byte[16], SocketFlags.None, cancel) == 0;
        }
        catch (SocketException exception) when (exception.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }

    [Fact]
    public async Task Proxy_forwards_bytes_both_ways()
    {
        using var socket = await ConnectAsync();
        Assert.Equal("hi!", await ReadExactlyAsync(socket, 3));
        await socket.SendAsync("ping"u8.ToArray(), SocketFlags.None);
        Assert.Equal("ping", await ReadExactlyAsync(socket, 4));
        Assert.Equal(0, Proxy.DiscardedBytes);
    }

    [Fact]
    public async Task Cut_link_drops_bytes_in_both_directions_without_closing()
    {
        using var socket = await ConnectAsync();
        Assert.Equal("hi!", await ReadExactlyAsync(socket, 3));
        Proxy.SetCut(forward: true, backward: true);
        await socket.SendAsync("lost"u8.ToArray(), SocketFlags.None);
        await UntilAsync(() => Proxy.DiscardedBytes == 4, "the proxy discarded the 4 bytes");

        // Discarded bytes are gone: the target never received them, and the socket is still open.
        Assert.Equal(0, Interlocked.Read(ref targetReceivedBytes));
        Assert.True(socket.Connected);
    }

    [Fact]
    public async Task One_way_cut_drops_only_the_cut_direction()
    {
        Proxy.SetCut(forward: true, backward: false);
        using var socket = await ConnectAsync();

        // The target's greeting travels backward, which is open; the client's bytes travel forward, which is cut.
        Assert.Equal("hi!", await ReadExactlyAsync(socket, 3));
        await socket.SendAsync("gone"u8.ToArray(), SocketFlags.None);
        await UntilAsync(() => Proxy.DiscardedBytes == 4, "the proxy discarded the forward bytes");
        Assert.Equal(0, Interlocked.Read(ref targetReceivedBytes));
    }

    [Fact]
    public async Task Heal_closes_connections_that_lost_bytes_and_new_connections_work()
    {
        using var damaged = await ConnectAsync();
        Assert.Equal("hi!", await ReadExactlyAsync(damaged, 3));
        Proxy.SetCut(forward: true, backward: true);
        await damaged.SendAsync("lost"u8.ToArray(), SocketFlags.None);
        await UntilAsync(() => Proxy.DiscardedBytes == 4, "the proxy discarded the bytes");

        Proxy.SetCut(forward: false, backward: false);
        using var timeout = new CancellationTokenSource(WaitMax);
        // Closed by the heal (an orderly end or a reset, as unread bytes remain): a stream with a hole must not resume.
        Assert.True(await IsClosedAsync(damaged, timeout.Token));

        using var fresh = await ConnectAsync();
        Assert.Equal("hi!", await ReadExactlyAsync(fresh, 3));
        await fresh.SendAsync("back"u8.ToArray(), SocketFlags.None);
        Assert.Equal("back", await ReadExactlyAsync(fresh, 4));
    }

    [Fact]
    public async Task Mesh_cuts_a_directed_link_on_both_proxies_that_carry_it()
    {
        await using var mesh = new ProxyMesh(new Dictionary<ulong, IPEndPoint>
        {
            [1] = (IPEndPoint)target.LocalEndpoint,
            [2] = (IPEndPoint)target.LocalEndpoint,
            [3] = (IPEndPoint)target.LocalEndpoint,
        });
        mesh.SetCut([(1UL, 2UL)]);

        // 1 → 2 travels forward on 1's dial of 2 and backward on 2's dial of 1; nothing else is cut.
        Assert.True(mesh.Proxy(1, 2).ForwardCut);
        Assert.False(mesh.Proxy(1, 2).BackwardCut);
        Assert.True(mesh.Proxy(2, 1).BackwardCut);
        Assert.False(mesh.Proxy(2, 1).ForwardCut);
        Assert.False(mesh.Proxy(1, 3).ForwardCut || mesh.Proxy(3, 1).BackwardCut);
        mesh.HealAll();
        Assert.Empty(mesh.CutLinks);
        Assert.False(mesh.Proxy(1, 2).ForwardCut || mesh.Proxy(2, 1).BackwardCut);
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        target.Stop();
        await Proxy.DisposeAsync();
        await server!;
        stop.Dispose();
    }
}
