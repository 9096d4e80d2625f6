using RaftLedger.Storage.Rocks;
using RocksDbSharp;

namespace RaftLedger.Storage.Tests.Rocks;

/// <summary>
/// RocksDbSharp's option objects free their native part in a finalizer, and a native call takes only their handle: an
/// object whose last use is reading its handle can be finalized while RocksDB still reads it. That crashed a CI test
/// host (SIGSEGV in <c>rocksdb_get_options_from_string</c>, copying the base options for the memtable insert hints).
/// </summary>
[Collection(RocksOptionsLifetimeCollection.Name)]
public sealed class RocksOptionsLifetimeTests
{
    // Without the KeepAlive the process crashed within 500 to 3,000 builds (5 of 5 runs): a regression fails this test
    // by crashing its host, which test.sh reports with the crashed stack.
    private const int BuildsWhileCollecting = 4_000;

    [Fact]
    public void Options_built_while_the_finalizer_thread_runs_without_pause_keep_every_setting()
    {
        var ledgerOptions = new RocksLedgerOptions { DirectoryPath = "unused", WriteBufferBytes = 256 * 1024, BlockCacheBytes = 1 << 20 };
        var cache = Cache.CreateLru(1 << 20);
        using var stop = new CancellationTokenSource();
        var collector = new Thread(() => CollectUntil(stop.Token)) { IsBackground = true, Name = "collector" };
        collector.Start();
        try
        {
            for (var i = 0; i < BuildsWhileCollecting; i++)
            {
                var options = RocksLedgerDatabase.BuildOptions(ledgerOptions, cache);
                var writeBuffer = (ulong)Native.Instance.rocksdb_options_get_write_buffer_size(options.Handle);
                var writeBuffers = Native.Instance.rocksdb_options_get_max_write_buffer_number(options.Handle);
                GC.KeepAlive(options);
                Assert.True(writeBuffer == ledgerOptions.WriteBufferBytes && writeBuffers == 4, $"build {i}: write buffer {writeBuffer} bytes × {writeBuffers}");
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }

        GC.KeepAlive(cache);
    }

    // Full collections back to back, each waiting for the finalizers it queued: the widest window for a finalizer to
    // run during a native call.
    private static void CollectUntil(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }
}

/// <summary>Runs alone: back-to-back full collections stop every thread of the test process while they run.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RocksOptionsLifetimeCollection
{
    public const string Name = "finalizer pressure";
}
