using RaftLedger.Storage.Rocks;

namespace RaftLedger.Storage.Tests.Rocks;

public sealed class RocksKeyOrderTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 1)]
    [InlineData(3, 50)]
    [InlineData(4, 5000)]
    public void Sort_orders_by_key_and_keeps_equal_keys_in_their_original_order(int seed, int count)
    {
        // Few distinct keys, so that long runs of equal keys exercise the unstable sort's run fix-up.
        var random = new Random(seed);
        var keys = new UInt128[count];
        for (var i = 0; i < count; i++)
        {
            keys[i] = new UInt128((ulong)random.Next(3), (ulong)random.Next(Math.Max(count / 20, 1)));
        }

        var order = new RocksKeyOrder().Sort(count, new ArrayKeys(keys)).ToArray();

        Assert.Equal(Enumerable.Range(0, count), order.Order());
        for (var i = 1; i < count; i++)
        {
            var (before, after) = (order[i - 1], order[i]);
            Assert.True(keys[before] < keys[after] || (keys[before] == keys[after] && before < after),
                $"seed {seed}: positions {before} (key {keys[before]}) and {after} (key {keys[after]}) are out of order");
        }
    }

    [Fact]
    public void Sort_reuses_its_buffers_and_forgets_the_previous_batch()
    {
        var order = new RocksKeyOrder();
        order.Sort(100, new ArrayKeys([.. Enumerable.Range(0, 100).Select(i => (UInt128)(100 - i))]));

        var second = order.Sort(3, new ArrayKeys([7, 5, 6])).ToArray();

        Assert.Equal([1, 2, 0], second);
    }

    [Fact]
    public void Keys_already_in_order_keep_their_positions()
    {
        UInt128[] keys = [1, 2, 2, 2, 9, 10, 10];

        var order = new RocksKeyOrder().Sort(keys.Length, new ArrayKeys(keys)).ToArray();

        Assert.Equal([0, 1, 2, 3, 4, 5, 6], order);
    }

    private readonly struct ArrayKeys(UInt128[] keys) : RocksKeyOrder.IKeySource
    {
        public UInt128 KeyAt(int index) => keys[index];
    }
}
