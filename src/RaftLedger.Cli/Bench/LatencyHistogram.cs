using System.Diagnostics;
using RaftLedger.Common;

namespace RaftLedger.Cli.Bench;

/// <summary>
/// A log-bucketed latency histogram in microseconds (HdrHistogram's layout): values below 128 µs
/// have their own bucket; above, each power of two is split into 64 buckets, so a reported
/// percentile is at most 1/64 (1.6 %) above the true value. Recording is a few instructions and
/// two interlocked adds on a fixed array: no allocation per sample, safe from any thread. The
/// maximum is kept exactly.
/// </summary>
public sealed class LatencyHistogram
{
    /// <summary>Sub-buckets per power of two above the linear range (precision 1/64).</summary>
    public const int SubBucketCount = 64;

    /// <summary>Largest recordable value: 2^40 µs, about 12.7 days; larger values are clamped.</summary>
    public const long ValueMicrosecondsMax = 1L << 40;

    private const int SubBucketBits = 6;
    private const int LinearCount = 2 * SubBucketCount;
    public static readonly int BucketCount = IndexOf(ValueMicrosecondsMax) + 1;

    // Invariant: total == sum of counts (between concurrent Record calls, each updates counts first).
    private readonly long[] counts = new long[BucketCount];
    private long total;
    private long maxMicroseconds;

    public long Count => Interlocked.Read(ref total);

    public long MaxMicroseconds => Interlocked.Read(ref maxMicroseconds);

    /// <summary>The bucket of <paramref name="microseconds"/> (values below 0 count as 0).</summary>
    public static int IndexOf(long microseconds)
    {
        var value = Math.Clamp(microseconds, 0, ValueMicrosecondsMax);
        if (value < LinearCount)
        {
            return (int)value;
        }

        var exponent = 63 - (int)long.LeadingZeroCount(value) - SubBucketBits;
        var index = (exponent * SubBucketCount) + (int)(value >> exponent);
        Invariant.Check(index >= LinearCount);
        return index;
    }

    /// <summary>The largest value that falls in bucket <paramref name="index"/>.</summary>
    public static long HighestInBucket(int index)
    {
        Invariant.Check(index >= 0 && index < BucketCount);
        if (index < LinearCount)
        {
            return index;
        }

        var exponent = (index / SubBucketCount) - 1;
        var mantissa = (index % SubBucketCount) + SubBucketCount;
        return ((long)(mantissa + 1) << exponent) - 1;
    }

    public void Record(long microseconds, long count = 1)
    {
        Invariant.Check(count >= 0);
        Interlocked.Add(ref counts[IndexOf(microseconds)], count);
        Interlocked.Add(ref total, count);
        var seen = Interlocked.Read(ref maxMicroseconds);
        while (microseconds > seen)
        {
            var previous = Interlocked.CompareExchange(ref maxMicroseconds, microseconds, seen);
            if (previous == seen)
            {
                break;
            }

            seen = previous;
        }
    }

    /// <summary>Records the time since <paramref name="startedTimestamp"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public void RecordSince(long startedTimestamp, long count = 1) =>
        Record(ToMicroseconds(Stopwatch.GetTimestamp() - startedTimestamp), count);

    public static long ToMicroseconds(long stopwatchTicks) => (long)(stopwatchTicks * (1_000_000.0 / Stopwatch.Frequency));

    /// <summary>A copy of the bucket counts (for windows: subtract an earlier copy).</summary>
    public long[] Snapshot()
    {
        var copy = new long[BucketCount];
        for (var i = 0; i < copy.Length; i++)
        {
            copy[i] = Interlocked.Read(ref counts[i]);
        }

        return copy;
    }

    /// <summary>
    /// The value at <paramref name="quantile"/> (0..1]: the highest value of the bucket holding the
    /// sample of rank ceil(quantile × count), capped at the exact maximum; 0 when empty.
    /// </summary>
    public long Percentile(double quantile) => Math.Min(Percentile(Snapshot(), quantile), MaxMicroseconds);

    /// <summary>The same over bucket counts (e.g. the difference of two snapshots).</summary>
    public static long Percentile(long[] bucketCounts, double quantile)
    {
        ArgumentNullException.ThrowIfNull(bucketCounts);
        Invariant.Check(quantile > 0 && quantile <= 1);
        long sum = 0;
        foreach (var count in bucketCounts)
        {
            sum += count;
        }

        if (sum == 0)
        {
            return 0;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(quantile * sum));
        long seen = 0;
        for (var i = 0; i < bucketCounts.Length; i++)
        {
            seen += bucketCounts[i];
            if (seen >= rank)
            {
                return HighestInBucket(i);
            }
        }

        throw new InvariantViolationException("percentile rank beyond the histogram's count");
    }

    /// <summary>Non-empty buckets as (lowest value, highest value, count), for reports and charts.</summary>
    public List<(long Low, long High, long Count)> Buckets()
    {
        var snapshot = Snapshot();
        var buckets = new List<(long, long, long)>();
        for (var i = 0; i < snapshot.Length; i++)
        {
            if (snapshot[i] > 0)
            {
                buckets.Add((i == 0 ? 0 : HighestInBucket(i - 1) + 1, HighestInBucket(i), snapshot[i]));
            }
        }

        return buckets;
    }
}
