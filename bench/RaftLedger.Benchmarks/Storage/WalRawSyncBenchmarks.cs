using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Microsoft.Win32.SafeHandles;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Benchmarks.Storage;

/// <summary>
/// The disk's own limit: a loop of one small (128-byte) write and one sync into a zero-filled file, as
/// the WAL does. Compares fdatasync (what the WAL calls) with .NET's FlushToDisk (fsync).
/// Run: <c>dotnet run -c Release --project bench/RaftLedger.Benchmarks -- --filter '*WalRawSync*'</c>.
/// </summary>
[Config(typeof(WalBenchmarkConfig))]
public class WalRawSyncBenchmarks
{
    private const int WritesPerInvocation = 1000;
    private const int WriteBytes = 128;
    private const long FileBytes = 64L * 1024 * 1024;

    private readonly byte[] _payload = new byte[WriteBytes];
    private readonly LatencyRecorder _recorder = new();
    private string _directory = "";
    private SafeFileHandle? _handle;
    private long _offset;

    [Params("fdatasync", "fsync")]
    public string SyncCall { get; set; } = "fdatasync";

    [GlobalSetup]
    public void Setup()
    {
        _directory = WalBenchmarkPaths.NewDirectory("raw");
        var path = Path.Combine(_directory, WalFiles.SegmentName(1));
        WalFiles.CreateZeroFilled(path, FileBytes);
        _handle = WalFiles.OpenSegment(path);
        Random.Shared.NextBytes(_payload);
    }

    [Benchmark(OperationsPerInvoke = WritesPerInvocation)]
    public void WriteAndSync()
    {
        var latencies = new long[WritesPerInvocation];
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < WritesPerInvocation; i++)
        {
            var before = Stopwatch.GetTimestamp();
            RandomAccess.Write(_handle!, _payload, _offset);
            if (SyncCall == "fdatasync")
            {
                WalFiles.SyncData(_handle!);
            }
            else
            {
                RandomAccess.FlushToDisk(_handle!);
            }

            latencies[i] = Stopwatch.GetTimestamp() - before;
            _offset = (_offset + WriteBytes) % FileBytes;
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        _recorder.AddInvocation(latencies, seconds, WritesPerInvocation, WritesPerInvocation * WriteBytes, WritesPerInvocation);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _recorder.Report($"raw-write+{SyncCall}");
        _handle?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
