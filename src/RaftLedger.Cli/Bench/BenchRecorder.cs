using System.Collections.Concurrent;
using System.Diagnostics;
using RaftLedger.Common;

namespace RaftLedger.Cli.Bench;

/// <summary>A stretch with no committed transfer on one shard (as the bench's callers saw it).</summary>
public readonly record struct CommitGap(int Shard, double StartSeconds, double EndSeconds)
{
    public double Seconds => EndSeconds - StartSeconds;
}

/// <summary>
/// Everything the callers measure, thread-safe and cheap on the hot path: counters, the two latency
/// histograms, errors and retries by kind, and per shard the stretches between committed answers
/// longer than <see cref="GapRecordedSecondsMin"/> (to find failover gaps afterwards).
/// </summary>
public sealed class BenchRecorder
{
    /// <summary>Shorter stretches between commits are normal and not kept.</summary>
    public const double GapRecordedSecondsMin = 0.05;

    /// <summary>
    /// A gap starting this soon after a kill still belongs to it: answers the victim sent just before it died reach
    /// the callers, and are recorded, a little after the kill's timestamp, so the shard's last commit can come after it.
    /// </summary>
    public const double KillAnswerSlackSeconds = 0.1;

    private readonly long startedTimestamp;
    private readonly long[] lastCommitTimestamp;
    private readonly List<CommitGap> gaps = [];
    private long committed;
    private long requests;
    private long lastAnyCommitTimestamp;
    private double longestAnyGapSeconds;

    public BenchRecorder(int shardCount, long startedTimestamp)
    {
        Invariant.Check(shardCount >= 1);
        this.startedTimestamp = startedTimestamp;
        lastCommitTimestamp = new long[shardCount];
        Array.Fill(lastCommitTimestamp, startedTimestamp);
        lastAnyCommitTimestamp = startedTimestamp;
    }

    public long StartedTimestamp => startedTimestamp;

    /// <summary>Time from a transfer's creation by its caller to its final answer (retries included).</summary>
    public LatencyHistogram TransferLatency { get; } = new();

    /// <summary>Time of each request attempt, from send to answer (empty in --clients mode: the SDK sends).</summary>
    public LatencyHistogram RequestLatency { get; } = new();

    /// <summary>Transfers the caller saw fail, by kind: ledger statuses other than created, or unanswered by the deadline.</summary>
    public ConcurrentDictionary<string, long> Errors { get; } = new();

    /// <summary>Request attempts that failed and were retried with the same ids, by kind.</summary>
    public ConcurrentDictionary<string, long> Retries { get; } = new();

    public long Committed => Interlocked.Read(ref committed);

    public long Requests => Interlocked.Read(ref requests);

    public double SecondsSinceStart(long timestamp) => Stopwatch.GetElapsedTime(startedTimestamp, timestamp).TotalSeconds;

    public void RequestSent() => Interlocked.Increment(ref requests);

    public void Error(string kind, long transfers) => Errors.AddOrUpdate(kind, transfers, (_, count) => count + transfers);

    public void Retry(string kind) => Retries.AddOrUpdate(kind, 1, (_, count) => count + 1);

    /// <summary>
    /// <paramref name="created"/> transfers homed on <paramref name="shard"/> were answered created at
    /// <paramref name="timestamp"/>; created in the ledger at some point before that.
    /// </summary>
    public void Commit(int shard, long created, long timestamp)
    {
        if (created <= 0)
        {
            return;
        }

        Interlocked.Add(ref committed, created);
        var previous = Interlocked.Exchange(ref lastCommitTimestamp[shard], timestamp);
        if (previous < timestamp)
        {
            NoteGap(shard, previous, timestamp);
        }

        var previousAny = Interlocked.Exchange(ref lastAnyCommitTimestamp, timestamp);
        if (previousAny < timestamp)
        {
            var seconds = Stopwatch.GetElapsedTime(previousAny, timestamp).TotalSeconds;
            lock (gaps)
            {
                longestAnyGapSeconds = Math.Max(longestAnyGapSeconds, seconds);
            }
        }
    }

    private void NoteGap(int shard, long from, long to)
    {
        var gap = new CommitGap(shard, SecondsSinceStart(from), SecondsSinceStart(to));
        if (gap.Seconds < GapRecordedSecondsMin)
        {
            return;
        }

        lock (gaps)
        {
            gaps.Add(gap);
        }
    }

    /// <summary>The longest stretch with no commit on any shard.</summary>
    public double LongestGapAnyShardSeconds
    {
        get
        {
            lock (gaps)
            {
                return longestAnyGapSeconds;
            }
        }
    }

    /// <summary>
    /// The longest commit gap of <paramref name="shard"/> that spans <paramref name="atSeconds"/>
    /// (a kill) or starts at most <see cref="KillAnswerSlackSeconds"/> after it, or, if the shard committed nothing
    /// since then, the time from its last commit to <paramref name="endSeconds"/>. 0 when no recorded gap spans that
    /// moment (shorter than <see cref="GapRecordedSecondsMin"/>).
    /// </summary>
    public double GapAround(int shard, double atSeconds, double endSeconds) => GapSpanning(shard, atSeconds, endSeconds).Seconds;

    /// <summary>The gap <see cref="GapAround"/> measures, with its start and end (both at the kill when there is none).</summary>
    public CommitGap GapSpanning(int shard, double atSeconds, double endSeconds)
    {
        var last = SecondsSinceStart(Interlocked.Read(ref lastCommitTimestamp[shard]));
        if (last <= atSeconds)
        {
            return new CommitGap(shard, last, endSeconds);
        }

        lock (gaps)
        {
            var longest = new CommitGap(shard, atSeconds, atSeconds);
            foreach (var gap in gaps)
            {
                if (gap.Shard == shard && gap.StartSeconds <= atSeconds + KillAnswerSlackSeconds && gap.EndSeconds >= atSeconds &&
                    gap.Seconds > longest.Seconds)
                {
                    longest = gap;
                }
            }

            return longest;
        }
    }

    /// <summary>
    /// Every recorded gap of at least <paramref name="secondsMin"/>, plus each shard's stretch from its last commit to
    /// <paramref name="endSeconds"/> when that long; ordered by start, then shard.
    /// </summary>
    public List<CommitGap> GapsAtLeast(double secondsMin, double endSeconds)
    {
        var found = new List<CommitGap>();
        lock (gaps)
        {
            found.AddRange(gaps.Where(gap => gap.Seconds >= secondsMin));
        }

        for (var shard = 0; shard < lastCommitTimestamp.Length; shard++)
        {
            var tail = new CommitGap(shard, SecondsSinceStart(Interlocked.Read(ref lastCommitTimestamp[shard])), endSeconds);
            if (tail.Seconds >= secondsMin)
            {
                found.Add(tail);
            }
        }

        return [.. found.OrderBy(gap => gap.StartSeconds).ThenBy(gap => gap.Shard)];
    }

    public Dictionary<string, long> ErrorsSnapshot() => new(Errors);

    public Dictionary<string, long> RetriesSnapshot() => new(Retries);
}
