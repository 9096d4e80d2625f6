using RaftLedger.Cli.Bench;
using RaftLedger.Raft;

namespace RaftLedger.Node.Tests.Bench;

public sealed class LatencyHistogramTests
{
    [Fact]
    public void Every_bucket_holds_the_values_between_its_neighbours_highest_values()
    {
        for (var index = 0; index < LatencyHistogram.BucketCount; index++)
        {
            var high = LatencyHistogram.HighestInBucket(index);
            Assert.Equal(index, LatencyHistogram.IndexOf(high));
            if (index < LatencyHistogram.BucketCount - 1)
            {
                Assert.Equal(index + 1, LatencyHistogram.IndexOf(high + 1));
            }
        }
    }

    [Fact]
    public void Values_beyond_the_range_are_clamped_to_the_ends()
    {
        Assert.Equal(0, LatencyHistogram.IndexOf(-5));
        Assert.Equal(LatencyHistogram.BucketCount - 1, LatencyHistogram.IndexOf(long.MaxValue));
    }

    [Theory]
    [InlineData(1UL, 1)]
    [InlineData(2UL, 1_000)]
    [InlineData(3UL, 100_000)]
    public void Percentiles_are_within_one_sixty_fourth_above_a_sorted_array_oracle(ulong seed, int samples)
    {
        var random = new DeterministicRandom(seed);
        var histogram = new LatencyHistogram();
        var values = new long[samples];
        for (var i = 0; i < samples; i++)
        {
            // Log-uniform from 1 µs to 100 s, as latencies spread over orders of magnitude.
            values[i] = (long)Math.Pow(10, random.NextDouble() * 8);
            histogram.Record(values[i]);
        }

        Array.Sort(values);
        Assert.Equal(samples, histogram.Count);
        Assert.Equal(values[^1], histogram.MaxMicroseconds);
        foreach (var quantile in new[] { 0.5, 0.9, 0.99, 0.999, 1.0 })
        {
            var exact = values[(int)Math.Ceiling(quantile * samples) - 1];
            var reported = histogram.Percentile(quantile);
            Assert.True(reported >= exact && reported <= exact + (exact / 64) + 1,
                $"q{quantile}: histogram {reported} µs, exact {exact} µs (seed {seed}; replay: dotnet test --filter Percentiles_are_within)");
        }
    }

    [Fact]
    public void Counts_added_at_once_weigh_like_single_samples()
    {
        var histogram = new LatencyHistogram();
        histogram.Record(100, count: 98);
        histogram.Record(5_000, count: 2);

        Assert.Equal(100, histogram.Count);
        Assert.Equal(100, histogram.Percentile(0.98));
        Assert.Equal(5_000, histogram.Percentile(0.99));
        Assert.Equal(0, new LatencyHistogram().Percentile(0.5));
    }

    [Fact]
    public void A_window_is_the_difference_of_two_snapshots()
    {
        var histogram = new LatencyHistogram();
        histogram.Record(10_000, count: 50);
        var before = histogram.Snapshot();
        histogram.Record(20, count: 10);
        var after = histogram.Snapshot();
        var window = after.Zip(before, (a, b) => a - b).ToArray();

        Assert.Equal(20, LatencyHistogram.Percentile(window, 0.99));
        Assert.True(LatencyHistogram.Percentile(after, 0.99) >= 10_000);
    }

    [Fact]
    public void Recording_from_many_threads_loses_no_sample()
    {
        var histogram = new LatencyHistogram();
        Parallel.For(0, 8, thread =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                histogram.Record((thread * 10_000) + i);
            }
        });

        Assert.Equal(80_000, histogram.Count);
        Assert.Equal(80_000, histogram.Snapshot().Sum());
        Assert.Equal(79_999, histogram.MaxMicroseconds);
    }
}
