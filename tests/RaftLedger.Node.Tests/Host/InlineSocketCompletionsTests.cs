using RaftLedger.Node.Host;

namespace RaftLedger.Node.Tests.Host;

public sealed class InlineSocketCompletionsTests
{
    [Theory]
    [InlineData(null, "1")]
    [InlineData("", "1")]
    [InlineData("0", "0")]
    [InlineData("1", "1")]
    public void A_node_runs_socket_completions_inline_unless_the_operator_set_the_variable(string? operatorValue, string expected) =>
        Assert.Equal(expected, InlineSocketCompletions.Choose(operatorValue));
}
