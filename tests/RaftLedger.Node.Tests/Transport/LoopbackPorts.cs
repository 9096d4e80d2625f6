using System.Net;
using System.Net.Sockets;

namespace RaftLedger.Node.Tests.Transport;

/// <summary>Ephemeral loopback ports for in-process clusters.</summary>
internal static class LoopbackPorts
{
    /// <summary>A port the kernel just handed out as free on 127.0.0.1 (released again before it is returned).</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
