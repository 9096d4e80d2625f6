using System.Net;
using System.Net.Sockets;

namespace RaftLedger.Cli.Processes;

/// <summary>
/// Free loopback ports for child nodes. Ports are chosen below the kernel's ephemeral range when it is known
/// (Linux: /proc/sys/net/ipv4/ip_local_port_range), because the kernel hands ports of that range to outgoing
/// connections: a port chosen there and released could become the source port of one node's connection to another
/// before the node that owns it binds its listener (seen in CI: a node's client API failed to bind). Each port is
/// checked free by binding it; every listener is held until all ports are chosen, so one call never returns a port
/// twice. Another program could still bind a chosen port before the child does; the child then reports a bind failure.
/// </summary>
public static class FreePorts
{
    /// <summary>Lowest port chosen outside the ephemeral range (above the well-known and most registered services).</summary>
    public const int OutsideRangeLowestPort = 10_000;

    /// <summary>Random picks tried before falling back to ports the kernel chooses.</summary>
    private const int AttemptsPerPortMax = 50;

    public static int[] Take(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var listeners = new List<TcpListener>(count);
        try
        {
            var below = EphemeralRangeStart();
            while (listeners.Count < count)
            {
                listeners.Add(TryBindBelow(below) ?? Bind(0));
            }

            return listeners.ConvertAll(listener => ((IPEndPoint)listener.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
            }
        }
    }

    // A free port in [OutsideRangeLowestPort, below), or null when none was found (or the range is unknown).
    private static TcpListener? TryBindBelow(int? below)
    {
        if (below is not { } end || end <= OutsideRangeLowestPort + 1)
        {
            return null;
        }

        for (var attempt = 0; attempt < AttemptsPerPortMax; attempt++)
        {
            try
            {
                return Bind(Random.Shared.Next(OutsideRangeLowestPort, end));
            }
            catch (SocketException)
            {
                // Taken: try another.
            }
        }

        return null;
    }

    private static TcpListener Bind(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        return listener;
    }

    // The first port of the kernel's ephemeral range, or null when it cannot be read.
    private static int? EphemeralRangeStart()
    {
        try
        {
            var text = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range");
            var first = text.Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[0];
            return int.TryParse(first, out var port) ? port : null;
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
