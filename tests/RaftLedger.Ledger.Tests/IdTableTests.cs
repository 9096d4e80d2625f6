using RaftLedger.Ledger;

namespace RaftLedger.Ledger.Tests;

public sealed class IdTableTests
{
    [Fact]
    public void Table_agrees_with_a_dictionary_through_adds_removes_growth_and_clears()
    {
        var random = new Prng(7);
        var table = new IdTable(4);
        var reference = new Dictionary<UInt128, int>();
        for (var step = 0; step < 20_000; step++)
        {
            // Few distinct ids, some sequential and some huge, so that clusters and collisions happen.
            var id = random.Percent(50) ? (UInt128)random.Below(300) : UInt128.MaxValue - (UInt128)random.Below(300);
            switch (random.Below(10))
            {
                case < 5:
                    table.GetOrAdd(id, out var added) = step;
                    Assert.Equal(!reference.ContainsKey(id), added);
                    reference[id] = step;
                    break;
                case < 8 when reference.ContainsKey(id):
                    table.Remove(id);
                    reference.Remove(id);
                    break;
                case 9 when random.Percent(2):
                    table.Clear();
                    reference.Clear();
                    break;
                default:
                    break;
            }

            Assert.Equal(reference.Count, table.Count);
            Assert.Equal(reference.TryGetValue(id, out var expected), table.TryGetValue(id, out var actual));
            Assert.Equal(expected, actual);
        }

        foreach (var (id, value) in reference)
        {
            Assert.True(table.TryGetValue(id, out var actual));
            Assert.Equal(value, actual);
        }
    }
}
