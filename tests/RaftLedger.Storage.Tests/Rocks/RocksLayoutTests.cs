using RaftLedger.Storage.Rocks;

namespace RaftLedger.Storage.Tests.Rocks;

public sealed class RocksLayoutTests
{
    [Fact]
    public void Limits_relate_so_that_any_record_fits_in_one_chunk()
    {
        Assert.True(RocksLedgerLimits.SnapshotRecordBytesMax <= RocksLedgerLimits.SnapshotChunkPayloadBytesMax);
        Assert.True(RocksLedgerLimits.TableKeyBytesMax <= ushort.MaxValue);
        Assert.Equal(RocksLedgerLimits.ShardPrefixBytes + 1, RocksLedgerLimits.TablePrefixBytes);
        Assert.True(RocksSnapshotFormat.BeginPayloadBytes <= RocksLedgerLimits.SnapshotChunkPayloadBytesMax);
        Assert.True(RocksLedgerLimits.WriteBufferBytesDefault >= (ulong)RocksLedgerLimits.SnapshotChunkPayloadBytesMax);
    }

    [Fact]
    public void The_database_runs_with_the_ledgers_memtable_and_compression_options()
    {
        // RocksDB writes the options it actually uses to an OPTIONS file; some of ours are set through its
        // options string, which would otherwise fail silently if a name changed.
        using var directory = new TempDirectory();
        using (RocksTestSupport.Open(directory.PathName))
        {
        }

        var optionsFile = Directory.GetFiles(directory.PathName, "OPTIONS-*").Order(StringComparer.Ordinal).Last();
        var text = File.ReadAllText(optionsFile);
        Assert.Contains($"memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.{RocksLedgerLimits.TablePrefixBytes}", text, StringComparison.Ordinal);
        Assert.Contains("allow_concurrent_memtable_write=false", text, StringComparison.Ordinal);
        Assert.Contains("memtable_batch_lookup_optimization=true", text, StringComparison.Ordinal);
        Assert.Contains("compression_per_level=kNoCompression:kLZ4Compression", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1u)]
    [InlineData(255u)]
    [InlineData(256u)]
    [InlineData(uint.MaxValue - 1)]
    [InlineData(uint.MaxValue)]
    public void Every_table_key_of_a_shard_lies_inside_the_shard_range_and_outside_its_neighbours(uint shardId)
    {
        var start = RocksKeys.ShardStart(shardId);
        var end = RocksKeys.ShardEnd(shardId);
        var longest = new byte[RocksLedgerLimits.TableKeyBytesMax];
        Array.Fill(longest, (byte)0xFF);
        for (var table = RocksTable.Meta; table <= RocksKeys.TableMax; table++)
        {
            foreach (var tableKey in new[] { Array.Empty<byte>(), longest })
            {
                var key = new byte[RocksLedgerLimits.TablePrefixBytes + tableKey.Length];
                RocksKeys.Write(key, shardId, table, tableKey);
                Assert.True(key.AsSpan().SequenceCompareTo(start) >= 0);
                Assert.True(key.AsSpan().SequenceCompareTo(end) < 0);
                Assert.True(key.AsSpan().SequenceCompareTo(RocksKeys.TableStart(shardId, table)) >= 0);
                Assert.True(key.AsSpan().SequenceCompareTo(RocksKeys.TableEnd(shardId, table)) < 0);
                Assert.Equal(shardId, RocksKeys.ShardOf(key));
                Assert.Equal(table, RocksKeys.TableOf(key));
            }
        }

        if (shardId < uint.MaxValue)
        {
            Assert.Equal(RocksKeys.ShardStart(shardId + 1), end);
        }
    }

    [Fact]
    public void Shard_ids_sort_numerically_because_they_are_big_endian()
    {
        Assert.True(RocksKeys.ShardStart(255).AsSpan().SequenceCompareTo(RocksKeys.ShardStart(256)) < 0);
        Assert.True(RocksKeys.ShardStart(1).AsSpan().SequenceCompareTo(RocksKeys.ShardStart(16_777_216)) < 0);
    }
}
