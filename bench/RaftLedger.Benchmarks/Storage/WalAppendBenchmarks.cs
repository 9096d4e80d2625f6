using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Benchmarks.Storage;

/// <summary>
/// WAL appends of 128-byte entries: each appender is one Raft group appending batches (plus a hard state,
/// as a Ready carries) and awaiting durability before its next batch. Entries/s shows group commit at work.
/// Run: <c>dotnet run -c Release --project bench/RaftLedger.Benchmarks -- --filter '*WalAppend*'</c>.
/// </summary>
[Config(typeof(WalBenchmarkConfig))]
public class WalAppendBenchmarks
{
    private const int EntryBytes = 128;
    private const long EntriesPerInvocationTarget = 400_000;
    private const int AppendsPerAppenderMin = 4;
    private const int AppendsPerAppenderMax = 400;

    private readonly byte[] _payload = new byte[EntryBytes];
    private readonly LatencyRecorder _recorder = new();
    private string _directory = "";
    private WriteAheadLog? _wal;
    private ulong[] _next = [];
    private int _appendsPerAppender;
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _rawFile;
    private long _rawOffset;
    private const int RawSyncsPerIteration = 200;

    [Params(1, 100, 8189)]
    public int BatchSize { get; set; }

    [Params(1, 16)]
    public int Appenders { get; set; }

    /// <summary>
    /// The writer's group-commit gather wait (<see cref="WalOptions.GroupCommitGatherMicroseconds"/>): the default
    /// only, or with <c>WAL_BENCH_GATHER_AB=1</c> both 0 (no wait) and the default, side by side in one run.
    /// </summary>
    [ParamsSource(nameof(GatherValues))]
    public int GatherMicroseconds { get; set; }

    public static IEnumerable<int> GatherValues =>
        Environment.GetEnvironmentVariable("WAL_BENCH_GATHER_AB") == "1"
            ? [0, WalOptions.GroupCommitGatherMicrosecondsDefault]
            : [WalOptions.GroupCommitGatherMicrosecondsDefault];

    [GlobalSetup]
    public void Setup()
    {
        _directory = WalBenchmarkPaths.NewDirectory("append");
        _wal = WriteAheadLog.Open(new WalOptions { Directory = _directory, GroupCommitGatherMicroseconds = GatherMicroseconds, Log = static _ => { } });
        _next = new ulong[Appenders + 1];
        Array.Fill(_next, 1UL);
        Random.Shared.NextBytes(_payload);
        var perAppender = EntriesPerInvocationTarget / Appenders / BatchSize;
        _appendsPerAppender = (int)Math.Clamp(perAppender, AppendsPerAppenderMin, AppendsPerAppenderMax);
        var rawPath = Path.Combine(_directory, "raw-baseline");
        WalFiles.CreateZeroFilled(rawPath, 1 << 20);
        _rawFile = WalFiles.OpenSegment(rawPath);
    }

    // The disk's rate drifts with other load on this shared machine: measure the raw write+fdatasync loop
    // right before every invocation so each WAL figure has a baseline from the same moment.
    [IterationSetup]
    public void MeasureRawBaseline()
    {
        var latencies = new long[RawSyncsPerIteration];
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < latencies.Length; i++)
        {
            var before = Stopwatch.GetTimestamp();
            RandomAccess.Write(_rawFile!, _payload, _rawOffset);
            WalFiles.SyncData(_rawFile!);
            latencies[i] = Stopwatch.GetTimestamp() - before;
            _rawOffset = (_rawOffset + EntryBytes) % (1 << 20);
        }

        _recorder.AddBaseline(latencies, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    public int EntriesPerInvocation => Appenders * _appendsPerAppender * BatchSize;

    [Benchmark]
    public void Append()
    {
        var flushesBefore = _wal!.Statistics.Flushes;
        var latencies = new long[Appenders * _appendsPerAppender];
        var started = Stopwatch.GetTimestamp();
        var tasks = new Task[Appenders];
        for (var a = 0; a < Appenders; a++)
        {
            var appender = a;
            tasks[a] = Task.Run(() => RunAppender(appender, latencies));
        }

        Task.WaitAll(tasks);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var entries = (long)EntriesPerInvocation;
        _recorder.AddInvocation(latencies, seconds, entries, entries * EntryBytes, _wal.Statistics.Flushes - flushesBefore);
        CompactAll();
    }

    private async Task RunAppender(int appender, long[] latencies)
    {
        var groupId = (ulong)appender + 1;
        for (var i = 0; i < _appendsPerAppender; i++)
        {
            var first = _next[groupId];
            var entries = new Entry[BatchSize];
            for (var e = 0; e < BatchSize; e++)
            {
                entries[e] = new Entry(1, first + (ulong)e, EntryType.Normal, _payload);
            }

            var last = first + (ulong)BatchSize - 1;
            var before = Stopwatch.GetTimestamp();
            await _wal!.AppendAsync(new WalGroupWrite(groupId, entries, new HardState(1, 1, first - 1), null)).ConfigureAwait(false);
            latencies[(appender * _appendsPerAppender) + i] = Stopwatch.GetTimestamp() - before;
            _next[groupId] = last + 1;
        }
    }

    // Outside the timed part: snapshot every group so old segments are deleted and the disk does not fill.
    private void CompactAll()
    {
        for (ulong g = 1; g <= (ulong)Appenders; g++)
        {
            var last = _next[g] - 1;
            _wal!.SetCompactableIndex(g, last);
            _wal.AppendAsync(new WalGroupWrite(g, [], null, new SnapshotMetadata(last, 1, ConfState.OfVoters(1)))).GetAwaiter().GetResult();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _recorder.Report($"wal-append batch={BatchSize} appenders={Appenders} gather={GatherMicroseconds}us");
        _wal?.Dispose();
        _rawFile?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
