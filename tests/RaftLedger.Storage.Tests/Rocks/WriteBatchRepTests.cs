using RaftLedger.Storage.Rocks;
using RocksDbSharp;

namespace RaftLedger.Storage.Tests.Rocks;

public sealed class WriteBatchRepTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_managed_batch_serializes_exactly_as_the_native_one(int seed)
    {
        var random = new Random(seed);
        var managed = new WriteBatchRep();
        using var native = new WriteBatch();
        for (var round = 0; round < 2; round++)
        {
            managed.Clear();
            native.Clear();
            for (var i = random.Next(0, 500); i > 0; i--)
            {
                // Lengths across the one- and two-byte varint boundary (127/128) and a large value.
                var key = RandomBytes(random, random.Next(0, 200));
                if (random.Next(5) == 0)
                {
                    managed.Delete(key);
                    native.Delete(key);
                    continue;
                }

                var value = RandomBytes(random, random.Next(10) == 0 ? 70_000 : random.Next(0, 300));
                managed.Put(key, value);
                native.Put(key, value);
            }

            using var built = managed.ToNative();
            Assert.True(native.ToBytes().AsSpan().SequenceEqual(built.ToBytes()),
                $"seed {seed}: managed and native batches differ (replay: dotnet test tests/RaftLedger.Storage.Tests -c Release --filter A_managed_batch_serializes_exactly_as_the_native_one)");
            Assert.Equal(native.Count(), managed.Count);
        }
    }

    [Fact]
    public void An_empty_batch_is_a_valid_native_batch()
    {
        using var built = new WriteBatchRep().ToNative();

        Assert.Equal(0, built.Count());
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
