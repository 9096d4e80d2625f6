using RaftLedger.Common;
using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

public sealed class RocksShardTests
{
    [Fact]
    public void Committed_batch_is_readable_and_its_applied_index_survives_a_clean_reopen()
    {
        using var directory = new TempDirectory();
        using (var database = Open(directory.PathName))
        {
            var shard = database.OpenShard(7);
            Assert.Equal(0UL, shard.AppliedIndex);
            using var batch = shard.NewBatch();
            batch.Put(RocksTable.Accounts, Key(1), Value("alice"));
            batch.Put(RocksTable.Transfers, Key(2), Value("t2"));
            batch.Commit(appliedIndex: 12);
            Assert.Equal(12UL, shard.AppliedIndex);
            var buffer = new byte[64];
            Assert.True(shard.TryGet(RocksTable.Accounts, Key(1), buffer, out var length));
            Assert.Equal("alice", System.Text.Encoding.UTF8.GetString(buffer, 0, length));
            Assert.False(shard.TryGet(RocksTable.Transfers, Key(1), buffer, out _));
        }

        using (var reopened = Open(directory.PathName))
        {
            var shard = reopened.OpenShard(7);
            Assert.Equal(12UL, shard.AppliedIndex);
            Assert.Equal(12UL, shard.DurableAppliedIndex);
            Assert.True(shard.Contains(RocksTable.Transfers, Key(2)));
        }
    }

    [Fact]
    public void Applied_index_must_grow_with_every_batch()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var shard = database.OpenShard(1);
        using var batch = shard.NewBatch();
        batch.Commit(5);
        batch.Put(RocksTable.Accounts, Key(1), Value("x"));
        Assert.Throws<InvariantViolationException>(() => batch.Commit(5));
        Assert.False(shard.Contains(RocksTable.Accounts, Key(1)));
        Assert.Equal(5UL, shard.AppliedIndex);
    }

    [Fact]
    public void Shards_on_one_database_do_not_see_each_others_keys()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var one = database.OpenShard(1);
        var two = database.OpenShard(2);
        using (var batch = one.NewBatch())
        {
            batch.Put(RocksTable.Accounts, Key(1), Value("one"));
            batch.Commit(1);
        }

        using (var batch = two.NewBatch())
        {
            batch.Put(RocksTable.Accounts, Key(2), Value("two"));
            batch.Put(RocksTable.Transfers, Key(3), Value("t"));
            batch.Commit(9);
        }

        Assert.False(two.Contains(RocksTable.Accounts, Key(1)));
        Assert.Equal([(RocksTable.Accounts, Convert.ToHexString(Key(1)), Convert.ToHexString(Value("one")))], Dump(one));
        Assert.Equal(2, Dump(two).Count);
        Assert.Equal(1UL, one.AppliedIndex);
        Assert.Equal(9UL, two.AppliedIndex);
        Assert.Same(one, database.OpenShard(1));
    }

    [Fact]
    public void Cursor_walks_one_table_in_key_order_from_a_start_key()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var shard = database.OpenShard(3);
        using (var batch = shard.NewBatch())
        {
            foreach (var n in new ulong[] { 5, 1, 9, 3 })
            {
                batch.Put(RocksTable.Transfers, Key(n), Value($"v{n}"));
            }

            batch.Put(RocksTable.Accounts, Key(4), Value("other table"));
            batch.Commit(1);
        }

        var seen = new List<string>();
        using var cursor = shard.NewCursor(RocksTable.Transfers, Key(3));
        while (cursor.MoveNext())
        {
            seen.Add(System.Text.Encoding.UTF8.GetString(cursor.Value));
        }

        Assert.Equal(["v3", "v5", "v9"], seen);
    }

    [Fact]
    public void Deleted_keys_are_gone_after_commit()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var shard = database.OpenShard(3);
        using var batch = shard.NewBatch();
        batch.Put(RocksTable.Expiry, Key(1), Value("p"));
        batch.Commit(1);
        batch.Delete(RocksTable.Expiry, Key(1));
        Assert.True(shard.Contains(RocksTable.Expiry, Key(1)));
        batch.Commit(2);
        Assert.False(shard.Contains(RocksTable.Expiry, Key(1)));
    }
}
