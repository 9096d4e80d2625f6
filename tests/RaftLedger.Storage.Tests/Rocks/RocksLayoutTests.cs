using System.Buffers.Binary;
using RaftLedger.Ledger;
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
    public void Only_account_keyed_tables_reach_the_memtable_hint_prefix_and_it_covers_the_whole_account_id()
    {
        const int prefix = RocksLedgerLimits.MemtableHintPrefixBytes;
        const int id = RocksLedgerLimits.IdBytes;
        const int table = RocksLedgerLimits.TablePrefixBytes;
        Assert.Equal(prefix, table + id + RocksLedgerLimits.AccountKeySuffixBytes); // an account key is exactly one prefix
        Assert.True(table + id + sizeof(ulong) >= prefix); // account id then timestamp: index and balance keys
        Assert.True(table + id < prefix); // transfers and pending statuses share the sequential position
        Assert.True(table + 1 + id < prefix); // side records (side table tag, key) too
        Assert.True(table + sizeof(ulong) < prefix); // the timestamp index too
    }

    [Fact]
    public void An_account_is_stored_under_its_id_and_the_zero_suffix()
    {
        using var directory = new TempDirectory();
        using var database = RocksTestSupport.Open(directory.PathName);
        var shard = database.OpenShard(3);
        var ledger = new LedgerStateMachine(new RocksLedgerStore(shard, accountCacheEntriesMax: 8));
        var id = ((UInt128)0xA1 << 64) | 7;
        var results = new CreateAccountResult[1];
        ledger.CreateAccounts([new Account { Id = id, Ledger = 1, Code = 1 }], batchTimestamp: 10, results);
        Assert.Equal(CreateAccountResult.Created, results[0]);

        var key = new byte[RocksLedgerLimits.IdBytes + RocksLedgerLimits.AccountKeySuffixBytes];
        BinaryPrimitives.WriteUInt128BigEndian(key, id);
        Assert.True(shard.TryGet(RocksTable.Accounts, key, new byte[LedgerLimits.RecordSizeBytes], out var length));
        Assert.Equal(LedgerLimits.RecordSizeBytes, length);
        Assert.False(shard.TryGet(RocksTable.Accounts, key.AsSpan(0, RocksLedgerLimits.IdBytes), [], out _));
        var reopened = new RocksLedgerStore(shard, accountCacheEntriesMax: 8); // no cached copy: read from RocksDB
        Assert.True(reopened.TryGetAccount(id, out var read));
        Assert.Equal(id, read.Id);
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
        Assert.Contains($"memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.{RocksLedgerLimits.MemtableHintPrefixBytes}", text, StringComparison.Ordinal);
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
