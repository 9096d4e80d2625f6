using RaftLedger.Cli.Processes;

namespace RaftLedger.Node.Tests.Cluster;

public sealed class FreePortsTests
{
    [Fact]
    public void Ports_are_distinct_and_below_the_kernels_ephemeral_range_where_outgoing_connections_take_theirs()
    {
        var ports = FreePorts.Take(30);
        Assert.Equal(30, ports.Distinct().Count());
        const string range = "/proc/sys/net/ipv4/ip_local_port_range";
        if (File.Exists(range))
        {
            var ephemeralStart = int.Parse(File.ReadAllText(range).Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
            Assert.All(ports, port => Assert.InRange(port, FreePorts.OutsideRangeLowestPort, ephemeralStart - 1));
        }
    }
}
