using System.CommandLine;

namespace RaftLedger.Cli;

/// <summary>The <c>raftledger</c> command: each subcommand is added by the issue that builds it.</summary>
public static class Program
{
    /// <summary>
    /// How long a command may take to finish after Ctrl+C or SIGTERM before the process exits anyway: long enough for
    /// <c>cluster up</c> to stop its nodes cleanly (each hands off its leaderships, bounded by a few seconds).
    /// </summary>
    public static readonly TimeSpan TerminationGrace = TimeSpan.FromSeconds(15);

    // The asynchronous invocation: only it turns Ctrl+C and SIGTERM into the actions' cancellation token (the synchronous
    // one let the signal kill the process at once, so `cluster up` never stopped its nodes and lost their last log lines).
    public static Task<int> Main(string[] args) =>
        BuildRoot().Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TerminationGrace });

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("RaftLedger: a replicated, sharded double-entry payment ledger.")
        {
            NodeCommand.Create(),
            ClusterCommand.Create(),
            DemoCommand.Create(),
            BenchCommand.Create(),
            StatusCommand.Create(),
            SimCommand.Create(),
            VerifyCommand.Create(),
        };
        return root;
    }
}
