using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

/// <summary>The cross-shard side table and foreign-account transfers on RocksDB behave as in memory, and survive a reopen.</summary>
public sealed class RocksCrossShardTests
{
    private static readonly UInt128 TransactionId = ((UInt128)3 << 64) | 1;

    [Fact]
    public void Cross_shard_commands_give_the_in_memory_fingerprint_and_side_records_survive_a_reopen()
    {
        using var directory = new TempDirectory();
        var memory = new LedgerStateMachine(new InMemoryLedgerStore());
        var database = Open(directory.PathName);
        try
        {
            var rocks = new LedgerStateMachine(new RocksLedgerStore(database.OpenShard(1)));
            var clock = 1_000_000_000_000UL;
            var index = 0UL;
            void Both(byte[] command)
            {
                clock = Math.Max(clock + 1_000, memory.LastTimestamp + (ulong)LedgerCommand.TimestampCount(command));
                LedgerCommand.SetBatchTimestamp(command, clock);
                var expected = new byte[LedgerLimits.ResultBytesMax];
                var actual = new byte[LedgerLimits.ResultBytesMax];
                var count = memory.Apply(command, expected, ++index).EventCount;
                Assert.Equal(count, rocks.Apply(command, actual, index).EventCount);
                Assert.Equal(expected.AsSpan(0, count).ToArray(), actual.AsSpan(0, count).ToArray());
                Assert.Equal(memory.Fingerprint(), rocks.Fingerprint());
            }

            Both(LedgerCommand.EncodeCreateAccounts(0, [new Account { Id = 1, Ledger = 1, Code = 1 }, new Account { Id = 2, Ledger = 1, Code = 1, Flags = AccountFlags.History }]));
            // Account 2 is here; 900 lives on another shard.
            var leg = new Leg(0, LegSides.Credit, new Transfer { Id = 500, DebitAccountId = 900, CreditAccountId = 2, Amount = 40, Ledger = 1, Code = 1 });
            Both(CrossShardCommand.EncodePrepare([new PrepareItem(TransactionId, 0, [leg])]));
            Both(CrossShardCommand.EncodeAbortIfUndecided([TransactionId + 1]));

            // The leg hold and reserved total are in memory only; the Prepared record is what RocksDB keeps.
            Assert.True(rocks.Store.TryGetSideRecord(CrossShardTables.LegHold, 500, out _));
            Assert.True(rocks.Store.TryGetSideRecord(CrossShardTables.Reserved, 2, out _));
            Assert.Equal([CrossShardTables.Prepared, CrossShardTables.Tombstone], StoredSideTags(database));

            database.Dispose();
            database = Open(directory.PathName);
            rocks = new LedgerStateMachine(new RocksLedgerStore(database.OpenShard(1)));
            Assert.Equal(memory.Fingerprint(), rocks.Fingerprint());
            Assert.Null(rocks.DerivedLegRecordsMismatch());
            Assert.Equal([.. memory.Store.EnumerateSideRecords()], [.. rocks.Store.EnumerateSideRecords()], new SideRecordComparer());
            Assert.True(CrossShardCommand.TryGetPreparedRecord(rocks.Store, TransactionId, out var record));
            Assert.Equal((UInt128)40, record.Legs[0].Transfer.Amount);

            Both(CrossShardCommand.EncodeFinish([new FinishItem(TransactionId, Commit: true, CrossShardLimits.ParticipantLegsMax)]));
            Assert.False(CrossShardCommand.TryGetPreparedRecord(rocks.Store, TransactionId, out _));
            var into = new Transfer[4];
            var filter = new AccountFilter { AccountId = 2, Limit = 4, Flags = AccountFilterFlags.Credits };
            Assert.Equal(1, rocks.GetAccountTransfers(filter, into));
            Assert.Equal((UInt128)500, into[0].Id);
            Assert.Equal([.. memory.Store.EnumerateSideRecords()], [.. rocks.Store.EnumerateSideRecords()], new SideRecordComparer());

            // The copy's debit account lives on another shard: the per-account index has an entry for account 2 only.
            Assert.Equal([(UInt128)2], IndexedAccounts(database));
            var foreign = filter with { AccountId = 900, Flags = AccountFilterFlags.Debits | AccountFilterFlags.Credits };
            Assert.Equal(memory.GetAccountTransfers(foreign, into), rocks.GetAccountTransfers(foreign, into));
        }
        finally
        {
            database.Dispose();
        }
    }

    [Fact]
    public void Derived_records_an_older_build_stored_are_deleted_on_open_and_never_read()
    {
        using var directory = new TempDirectory();
        var database = Open(directory.PathName);
        try
        {
            // As a build that stored them would have left them: a leg hold with no Prepared record behind it.
            using (var batch = database.OpenShard(1).NewBatch())
            {
                batch.Put(RocksTable.SideRecords, [CrossShardTables.LegHold, .. new byte[16]], new byte[16]);
                batch.Commit(1);
            }

            var store = new RocksLedgerStore(database.OpenShard(1));
            Assert.False(store.TryGetSideRecord(CrossShardTables.LegHold, 0, out _));
            Assert.Empty(store.EnumerateSideRecords());
            Assert.Empty(StoredSideTags(database));
        }
        finally
        {
            database.Dispose();
        }
    }

    /// <summary>The accounts that shard 1's per-account transfer index has records for, ascending and distinct.</summary>
    private static UInt128[] IndexedAccounts(RocksLedgerDatabase database)
    {
        var accounts = new SortedSet<UInt128>();
        using var cursor = database.OpenShard(1).NewCursor(RocksTable.AccountTransfers);
        while (cursor.MoveNext())
        {
            accounts.Add(System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(cursor.Key));
        }

        return [.. accounts];
    }

    /// <summary>The side-table tags RocksDB itself holds for shard 1, ascending and distinct.</summary>
    private static byte[] StoredSideTags(RocksLedgerDatabase database)
    {
        var tags = new SortedSet<byte>();
        using var cursor = database.OpenShard(1).NewCursor(RocksTable.SideRecords);
        while (cursor.MoveNext())
        {
            tags.Add(cursor.Key[0]);
        }

        return [.. tags];
    }

    private sealed class SideRecordComparer : IEqualityComparer<SideRecord>
    {
        public bool Equals(SideRecord x, SideRecord y) => x.Table == y.Table && x.Key == y.Key && x.Value.AsSpan().SequenceEqual(y.Value);

        public int GetHashCode(SideRecord obj) => HashCode.Combine(obj.Table, obj.Key);
    }
}
