using System.Net;
using System.Net.Sockets;

namespace RaftLedger.Cli.Processes;

/// <summary>
/// Free loopback ports for child nodes. The OS picks each port (bind to 0) and we release it
/// right away; another program could take it before the child binds, which the child then
/// reports as a bind failure (the caller sees the node exit and can retry with new ports).
/// </summary>
public static class FreePorts
{
    public static int[] Take(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        // Hold every listener until all ports are chosen, so one call never returns a port twice.
        var listeners = new TcpListener[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                listeners[i] = new TcpListener(IPAddress.Loopback, 0);
                listeners[i].Start();
            }

            return Array.ConvertAll(listeners, listener => ((IPEndPoint)listener.LocalEndpoint).Port);
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener?.Stop();
            }
        }
    }
}
