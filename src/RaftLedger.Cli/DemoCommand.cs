using System.CommandLine;

namespace RaftLedger.Cli;

/// <summary><c>raftledger demo</c>: the main job (see <see cref="Demo.DemoRun"/>).</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Run a local 3-node cluster, pay, kill a leader, and check nothing was lost.");
        command.SetAction(async (parse, cancellationToken) => await Task.FromResult(3));
        return command;
    }
}
