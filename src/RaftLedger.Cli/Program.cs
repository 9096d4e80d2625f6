using System.CommandLine;

namespace RaftLedger.Cli;

/// <summary>The <c>raftledger</c> command: each subcommand is added by the issue that builds it.</summary>
public static class Program
{
    public static int Main(string[] args) => BuildRoot().Parse(args).Invoke();

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
