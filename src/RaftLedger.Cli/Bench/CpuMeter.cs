using System.Diagnostics;
using System.Globalization;

namespace RaftLedger.Cli.Bench;

/// <summary>CPU seconds used during the run: by the bench, by its child node processes, and by the whole machine.</summary>
public readonly record struct CpuUsage(double BenchSeconds, double NodesSeconds, double MachineBusySeconds, double MachineSeconds)
{
    /// <summary>What everything else on the machine (other programs) used meanwhile.</summary>
    public double OthersSeconds => Math.Max(0, MachineBusySeconds - BenchSeconds - NodesSeconds);
}

/// <summary>
/// Where the CPU goes during a run, read from Linux's /proc (no profiler needed): this process's
/// own time, its children's (the local nodes: live ones from /proc/[pid]/stat, killed and reaped
/// ones from this process's cutime/cstime), and the machine's busy and total time from /proc/stat.
/// On other systems, or for a remote cluster's nodes, the figures it cannot read are 0.
/// </summary>
public sealed class CpuMeter
{
    private static readonly double TicksPerSecond = 100; // USER_HZ: 100 on every Linux architecture .NET runs on.
    private readonly Snapshot start = Take();

    public CpuUsage Stop()
    {
        var end = Take();
        return new CpuUsage(
            end.Bench - start.Bench,
            end.Nodes - start.Nodes,
            end.MachineBusy - start.MachineBusy,
            end.MachineTotal - start.MachineTotal);
    }

    private readonly record struct Snapshot(double Bench, double Nodes, double MachineBusy, double MachineTotal);

    private static Snapshot Take()
    {
        var bench = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        if (!OperatingSystem.IsLinux())
        {
            return new Snapshot(bench, 0, 0, 0);
        }

        try
        {
            var self = Environment.ProcessId;
            var own = StatFields(File.ReadAllText($"/proc/{self}/stat"));
            // Fields 16 and 17 (cutime, cstime): children this process has waited for, i.e. nodes that were killed.
            var nodes = (Parse(own[13]) + Parse(own[14])) / TicksPerSecond;
            foreach (var directory in Directory.EnumerateDirectories("/proc"))
            {
                nodes += ChildSeconds(directory, self);
            }

            var (busy, total) = Machine();
            return new Snapshot(bench, nodes, busy, total);
        }
        catch (IOException)
        {
            return new Snapshot(bench, 0, 0, 0);
        }
    }

    private static double ChildSeconds(string directory, int parent)
    {
        if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            return 0;
        }

        try
        {
            var fields = StatFields(File.ReadAllText(Path.Combine(directory, "stat")));
            // Fields 4 (ppid), 14 and 15 (utime, stime), counted from the state field after the name.
            return Parse(fields[1]) == parent ? (Parse(fields[11]) + Parse(fields[12])) / TicksPerSecond : 0;
        }
        catch (IOException)
        {
            return 0; // The process ended while we looked.
        }
        catch (UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>The fields after "pid (name)": the name may hold spaces, so split after its closing parenthesis.</summary>
    private static string[] StatFields(string stat) => stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

    private static (double Busy, double Total) Machine()
    {
        var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        double total = 0;
        for (var i = 1; i < cpu.Length; i++)
        {
            total += Parse(cpu[i]);
        }

        // idle (4th number) and iowait (5th) are not busy time.
        var idle = Parse(cpu[4]) + Parse(cpu[5]);
        return ((total - idle) / TicksPerSecond, total / TicksPerSecond);
    }

    private static long Parse(string text) => long.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
}
