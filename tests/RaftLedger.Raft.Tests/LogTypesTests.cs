using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

public class LogTypesTests
{
    [Fact]
    public void Invariant_check_throws_with_the_failed_expression()
    {
        var lastIndex = 3;
        var ex = Assert.Throws<InvariantViolationException>(() => Invariant.Check(lastIndex < 2));
        Assert.Contains("lastIndex < 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Conf_state_refuses_node_id_zero()
    {
        Assert.Throws<InvariantViolationException>(() => ConfState.OfVoters(1, 0, 3));
        Assert.Equal([1UL, 2UL, 3UL], ConfState.OfVoters(1, 2, 3).Voters);
    }

    [Fact]
    public void Entry_size_counts_payload_and_fixed_overhead()
    {
        var entry = new Entry(1, 1, EntryType.Normal, new byte[100]);
        Assert.Equal(Entry.OverheadBytes + 100, entry.SizeBytes);
    }
}
