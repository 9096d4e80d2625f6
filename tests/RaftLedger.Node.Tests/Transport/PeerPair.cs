using RaftLedger.Node.Transport;

namespace RaftLedger.Node.Tests.Transport;

/// <summary>Two started peer transports, nodes 1 and 2, with their sinks; disposing stops both (node 2 first).</summary>
internal sealed class PeerPair<TSink>(PeerTransport one, TSink sinkOne, PeerTransport two, TSink sinkTwo) : IAsyncDisposable
{
    /// <summary>Starts node 1, then node 2, each with <paramref name="start"/>; they know nothing of each other yet.</summary>
    public static async Task<PeerPair<TSink>> StartAsync(Func<ulong, Task<(PeerTransport Transport, TSink Sink)>> start)
    {
        var (first, firstSink) = await start(1);
        try
        {
            var (second, secondSink) = await start(2);
            return new PeerPair<TSink>(first, firstSink, second, secondSink);
        }
        catch
        {
            await first.DisposeAsync();
            throw;
        }
    }

    public static string Address(PeerTransport transport) => $"127.0.0.1:{transport.Port}";

    /// <summary>Each node learns the other's address (node 1, the lower id, dials).</summary>
    public void Connect()
    {
        one.SetPeer(2, Address(two));
        two.SetPeer(1, Address(one));
    }

    public void Deconstruct(out PeerTransport first, out TSink firstSink, out PeerTransport second, out TSink secondSink) =>
        (first, firstSink, second, secondSink) = (one, sinkOne, two, sinkTwo);

    public async ValueTask DisposeAsync()
    {
        await two.DisposeAsync();
        await one.DisposeAsync();
    }
}
