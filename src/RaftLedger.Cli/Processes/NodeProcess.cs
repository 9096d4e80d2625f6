using System.Diagnostics;
using System.Runtime.InteropServices;

namespace RaftLedger.Cli.Processes;

/// <summary>
/// One <c>raftledger node</c> child process. Its output goes to <see cref="LogPath"/>. It is
/// stopped by its own pid only (never by name), with SIGTERM (clean) or SIGKILL (crash).
/// </summary>
public sealed class NodeProcess : IDisposable
{
    /// <summary>
    /// The smallest gen0 budget a started process gets (<c>DOTNET_GCgen0size</c>) unless the environment names one.
    /// The runtime derives it from the CPU's last-level cache; where a VM does not report that cache (the test
    /// machine), it falls back to 256 KiB and a node collects gen0 hundreds of times a second under load. 32 MiB was
    /// the best of the 8, 32 and 64 MiB tried (docs/PERFORMANCE.md, "Thirtieth session"): larger budgets collect less
    /// but walk more memory that is no longer in cache. A GC setting without a runtimeconfig name, so it is only read
    /// from the environment at process start.
    /// </summary>
    public const long Gen0BudgetBytes = 32L << 20;

    private static readonly string[] Gen0BudgetVariables = ["DOTNET_GCgen0size", "COMPlus_GCgen0size"];

    private const int SigTerm = 15;
    private const int SigCont = 18;
    private const int SigStop = 19;
    private readonly Process process;
    private readonly StreamWriter log;

    private NodeProcess(Process process, StreamWriter log, string logPath)
    {
        this.process = process;
        this.log = log;
        LogPath = logPath;
    }

    public int ProcessId => process.Id;

    public string LogPath { get; }

    public bool HasExited => process.HasExited;

    /// <summary>Starts <c>raftledger</c> with <paramref name="arguments"/>, appending its output to <paramref name="logPath"/>.</summary>
    public static NodeProcess Start(IReadOnlyList<string> arguments, string logPath, IReadOnlyDictionary<string, string>? environment = null)
    {
        var (fileName, prefix) = SelfCommand();
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in prefix.Concat(arguments))
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        ApplyGen0Budget(info.Environment);

        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, line) => WriteLine(log, line.Data);
        process.ErrorDataReceived += (_, line) => WriteLine(log, line.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new NodeProcess(process, log, logPath);
    }

    /// <summary>Names <see cref="Gen0BudgetBytes"/> in <paramref name="environment"/> unless it already names a gen0 budget.</summary>
    public static void ApplyGen0Budget(IDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (!Gen0BudgetVariables.Any(environment.ContainsKey))
        {
            environment[Gen0BudgetVariables[0]] = $"0x{Gen0BudgetBytes:X}"; // Hexadecimal, as the runtime reads it.
        }
    }

    private static void WriteLine(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            // Output can still arrive after Dispose closed the log; it is dropped then.
            if (log.BaseStream.CanWrite)
            {
                log.WriteLine(line);
            }
        }
    }

    /// <summary>
    /// How to run this same program: the apphost next to the assembly when there is one,
    /// otherwise <c>dotnet raftledger.dll</c> (e.g. when started from a test's output folder).
    /// </summary>
    public static (string FileName, string[] Prefix) SelfCommand()
    {
        var assembly = typeof(NodeProcess).Assembly.Location;
        var apphost = Path.Combine(Path.GetDirectoryName(assembly)!, OperatingSystem.IsWindows() ? "raftledger.exe" : "raftledger");
        if (File.Exists(apphost))
        {
            return (apphost, []);
        }

        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return (string.IsNullOrEmpty(dotnet) ? "dotnet" : dotnet, [assembly]);
    }

    /// <summary>SIGKILL: the node gets no chance to flush anything (a crash or power loss).</summary>
    public void Kill()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: false);
        }
    }

    /// <summary>
    /// SIGSTOP: the node freezes mid-instruction (a long GC pause or a stalled VM) while its sockets stay open.
    /// False when the signal could not be sent (the process is gone, or this is Windows).
    /// </summary>
    public bool Pause() => !OperatingSystem.IsWindows() && !process.HasExited && SendSignal(process.Id, SigStop) == 0;

    /// <summary>SIGCONT: a paused node resumes where it stopped, unaware that time passed.</summary>
    public bool Resume() => !OperatingSystem.IsWindows() && !process.HasExited && SendSignal(process.Id, SigCont) == 0;

    /// <summary>SIGTERM, then SIGKILL if the node has not exited within <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (process.HasExited)
        {
            return;
        }

        // A paused (SIGSTOP) node would not act on SIGTERM until continued.
        Resume();
        if (OperatingSystem.IsWindows() || SendSignal(process.Id, SigTerm) != 0)
        {
            Kill();
        }

        using var timeout = new CancellationTokenSource(grace);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
        }

        await WaitForExitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Waits at most <paramref name="timeout"/> for the process to end; true if it did.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public int ExitCode => process.ExitCode;

    public void Dispose()
    {
        Kill();
        process.WaitForExit(TimeSpan.FromSeconds(10));
        process.Dispose();
        lock (log)
        {
            log.Dispose();
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code enabled for one call.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);
#pragma warning restore SYSLIB1054
}
