using System.Diagnostics;
using System.Text;
using RaftLedger.Storage.Rocks;

namespace RaftLedger.Storage.Tests.Rocks;

/// <summary>A directory deleted at the end of a test.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        PathName = Path.Combine(Path.GetTempPath(), "raftledger-rocks-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(PathName);
    }

    public string PathName { get; }

    public string Sub(string name) => Path.Combine(PathName, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(PathName, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless; never fail a test on cleanup.
        }
    }
}

internal static class RocksTestSupport
{
    public static RocksLedgerDatabase Open(string path, ulong writeBufferBytes = RocksLedgerLimits.WriteBufferBytesDefault,
        RocksWalMode walMode = RocksWalMode.Disabled) =>
        RocksLedgerDatabase.Open(new RocksLedgerOptions
        {
            DirectoryPath = path,
            WriteBufferBytes = writeBufferBytes,
            BlockCacheBytes = 8 * 1024 * 1024,
            DisableAutoCompactions = true,
            WalMode = walMode,
        });

    /// <summary>
    /// What a crash right now would leave on disk: a copy of the database directory, taken once RocksDB has no
    /// flush pending or running (compactions are off in tests), so the copy is a consistent file set. Memtable
    /// contents that were never flushed are not in any file, exactly as after a SIGKILL or power loss.
    /// </summary>
    public static void TakeCrashImage(RocksLedgerDatabase database, string source, string destination)
    {
        WaitForNoFlush(database);
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.GetFiles(source))
        {
            var name = Path.GetFileName(file);
            if (name == "LOCK")
            {
                continue;
            }

            File.Copy(file, Path.Combine(destination, name));
        }
    }

    // A barrier on RocksDB's own state (not a timed sleep): loop until both counters are zero, bounded.
    private static void WaitForNoFlush(RocksLedgerDatabase database)
    {
        var watch = Stopwatch.StartNew();
        while (database.GetProperty("rocksdb.num-immutable-mem-table") != "0" ||
               database.GetProperty("rocksdb.num-running-flushes") != "0")
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException("RocksDB background flush did not finish within 60 s");
            }

            Thread.Yield();
        }
    }

    public static byte[] Key(ulong n)
    {
        var key = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(key.AsSpan(8), n);
        return key;
    }

    public static byte[] Value(string text) => Encoding.UTF8.GetBytes(text);

    public static UInt128 Fingerprint(RocksShard shard)
    {
        using var snapshot = shard.CreateSnapshot();
        return snapshot.ContentFingerprint();
    }

    /// <summary>All (table, key, value) of a shard's data tables, for exact comparisons in tests.</summary>
    public static List<(RocksTable Table, string Key, string Value)> Dump(RocksShard shard)
    {
        var rows = new List<(RocksTable, string, string)>();
        for (var table = RocksTable.Accounts; table <= RocksKeys.TableMax; table++)
        {
            using var cursor = shard.NewCursor(table);
            while (cursor.MoveNext())
            {
                rows.Add((table, Convert.ToHexString(cursor.Key), Convert.ToHexString(cursor.Value)));
            }
        }

        return rows;
    }
}
