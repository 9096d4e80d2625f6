using RaftLedger.Cli.Processes;

namespace RaftLedger.Node.Tests.Cluster;

public sealed class NodeProcessEnvironmentTests
{
    [Fact]
    public void A_started_process_gets_the_gen0_budget_in_hexadecimal_when_its_environment_names_none()
    {
        var environment = new Dictionary<string, string?> { ["PATH"] = "/usr/bin" };
        NodeProcess.ApplyGen0Budget(environment);
        Assert.Equal("0x2000000", environment["DOTNET_GCgen0size"]);
        Assert.Equal(NodeProcess.Gen0BudgetBytes, Convert.ToInt64(environment["DOTNET_GCgen0size"], 16));
    }

    [Theory]
    [InlineData("DOTNET_GCgen0size")]
    [InlineData("COMPlus_GCgen0size")]
    public void A_gen0_budget_the_operator_set_is_kept(string variable)
    {
        var environment = new Dictionary<string, string?> { [variable] = "0x1000000" };
        NodeProcess.ApplyGen0Budget(environment);
        Assert.Equal("0x1000000", environment[variable]);
        Assert.Single(environment);
    }
}
