using System.Diagnostics;
using System.Runtime.InteropServices;

namespace RaftLedger.Cli.Processes;

/// <summary>
/// One <c>raftledger node</c> child process. Its output goes to <see cref="LogPath"/>. It is
/// stopped by its own pid only (never by name), with SIGTERM (clean) or SIGKILL (crash).
/// </summary>
public sealed class NodeProcess : IDisposable
{
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

        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, line) => WriteLine(log, line.Data);
        process.ErrorDataReceived += (_, line) => WriteLine(log, line.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new NodeProcess(process, log, logPath);
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
