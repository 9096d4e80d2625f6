using CsCheck;
using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

/// <summary>
/// The RocksDB store's in-memory mirror of the side table answers exactly as the in-memory store does: point
/// reads, absent keys and ordered enumeration, across reopens, for mirrored and unmirrored tables, and after
/// the mirror outgrew its limits and was dropped.
/// </summary>
public sealed class RocksSideMirrorTests
{
    private const string ProjectPath = "tests/RaftLedger.Storage.Tests/RaftLedger.Storage.Tests.csproj";
    private static readonly byte[] Tables =
    [
        CrossShardTables.Coordinator, CrossShardTables.Prepared, CrossShardTables.Tombstone, CrossShardTables.IdClaim,
        CrossShardTables.Reserved, CrossShardTables.LegHold, CrossShardTables.Expiry, CrossShardTables.Closing,
        CrossShardTables.ExpiryOrder,
    ];

    // What a commit writes directly; the derived tables follow from its Prepared records (WithDerivedRecords).
    private static readonly byte[] WrittenTables = [.. Tables.Where(t => !CrossShardTables.IsDerived(t))];

    private static readonly LegSides[] RandomSides =
    [
        LegSides.Debit, LegSides.Credit, LegSides.Debit | LegSides.Credit, LegSides.Credit | LegSides.Id,
        LegSides.Debit | LegSides.Resolve, LegSides.Credit | LegSides.Resolve | LegSides.Status, LegSides.Id,
    ];

    [Fact]
    public void Random_side_record_writes_read_back_as_in_memory_with_the_mirror_and_after_reopens()
    {
        RunProperty(nameof(Random_side_record_writes_read_back_as_in_memory_with_the_mirror_and_after_reopens), seed =>
            RunAgainstInMemory(seed, RocksLedgerLimits.SideMirrorEntriesMaxDefault, expectMirror: true));
    }

    [Fact]
    public void A_mirror_over_its_entry_limit_is_dropped_and_reads_still_agree()
    {
        RunProperty(nameof(A_mirror_over_its_entry_limit_is_dropped_and_reads_still_agree), seed =>
            RunAgainstInMemory(seed, sideMirrorEntriesMax: 3, expectMirror: false));
    }

    [Fact]
    public void A_dropped_mirror_is_rebuilt_on_reopen_once_the_tables_are_small_again()
    {
        using var directory = new TempDirectory();
        var database = Open(directory.PathName);
        try
        {
            var store = new RocksLedgerStore(database.OpenShard(1), sideMirrorEntriesMax: 2);
            Assert.True(store.SideMirrorActive);
            var index = 0UL;
            Commit(store, ref index, Put(CrossShardTables.Prepared, 1, 10), Put(CrossShardTables.Prepared, 2, 20), Put(CrossShardTables.Coordinator, 3, 30));
            Assert.False(store.SideMirrorActive);
            Assert.True(store.TryGetSideRecord(CrossShardTables.Coordinator, 3, out var value) && value.SequenceEqual(Value(30)));

            Commit(store, ref index, Delete(CrossShardTables.Prepared, 1));
            Assert.False(store.SideMirrorActive); // stays dropped until the next reload
            database.Dispose();
            database = Open(directory.PathName);
            store = new RocksLedgerStore(database.OpenShard(1), sideMirrorEntriesMax: 2);
            Assert.True(store.SideMirrorActive);
            Assert.False(store.TryGetSideRecord(CrossShardTables.Prepared, 1, out _));
            Assert.True(store.TryGetSideRecord(CrossShardTables.Prepared, 2, out value) && value.SequenceEqual(PreparedValue(20)));
        }
        finally
        {
            database.Dispose();
        }
    }

    [Fact]
    public void Values_read_from_the_mirror_are_copies_the_caller_and_the_writer_may_change()
    {
        using var fresh = new FreshStore();
        var store = fresh.Store;
        var written = Value(7);
        fresh.Commit(new SideRecord(CrossShardTables.Coordinator, 5, written));
        written[0] = 0xEE;
        Assert.True(store.TryGetSideRecord(CrossShardTables.Coordinator, 5, out var first));
        first[1] = 0xEE;
        Assert.True(store.TryGetSideRecord(CrossShardTables.Coordinator, 5, out var second));
        Assert.Equal(Value(7), second);
        Assert.True(store.SideMirrorActive);
    }

    [Fact]
    public void A_commit_during_an_enumeration_of_the_mirror_fails_loudly_instead_of_mixing_states()
    {
        using var fresh = new FreshStore();
        fresh.Commit(Put(CrossShardTables.Coordinator, 1, 1), Put(CrossShardTables.Prepared, 2, 2));
        using var records = fresh.Store.EnumerateSideRecords().GetEnumerator();
        Assert.True(records.MoveNext());
        Assert.Equal(CrossShardTables.Coordinator, records.Current.Table);
        fresh.Commit(Delete(CrossShardTables.Prepared, 2));
        Assert.Throws<InvariantViolationException>(() => records.MoveNext());
    }

    private static void RunAgainstInMemory(int seed, int sideMirrorEntriesMax, bool expectMirror)
    {
        using var directory = new TempDirectory();
        var random = new Random(seed);
        var memory = new InMemoryLedgerStore();
        var database = Open(directory.PathName);
        try
        {
            var store = new RocksLedgerStore(database.OpenShard(1), sideMirrorEntriesMax: sideMirrorEntriesMax);
            var index = 0UL;
            for (var step = 0; step < 40; step++)
            {
                var records = new SideRecord[random.Next(1, 12)];
                for (var i = 0; i < records.Length; i++)
                {
                    // Few keys per table, so puts overwrite and deletes hit stored records often.
                    var table = WrittenTables[random.Next(WrittenTables.Length)];
                    var key = (UInt128)random.Next(1, 9);
                    // Tombstones carry no value, as the ledger writes them; a rare one with a value must still read back.
                    var length = table == CrossShardTables.Tombstone && random.Next(20) != 0 ? 0 : random.Next(1, 300);
                    records[i] = random.Next(3) == 0 ? Delete(table, key)
                        : table == CrossShardTables.Prepared ? new SideRecord(table, key, RandomPreparedRecord(random, key))
                        : Put(table, key, random.Next(256), length);
                }

                records = WithDerivedRecords(memory, records);

                Commit(memory, index + 1, records);
                Commit(store, ref index, records);
                AssertSame(memory, store, seed, step);
                if (random.Next(8) == 0)
                {
                    database.Dispose();
                    database = Open(directory.PathName);
                    store = new RocksLedgerStore(database.OpenShard(1), sideMirrorEntriesMax: sideMirrorEntriesMax);
                    AssertSame(memory, store, seed, step);
                }
            }

            Assert.Equal(expectMirror, store.SideMirrorActive);
        }
        finally
        {
            database.Dispose();
        }
    }

    /// <summary>
    /// A prepared record of one to three random legs. As Prepare guarantees, what it holds (event and pending ids,
    /// closing accounts) is its own: those keys are derived from <paramref name="transaction"/>. Reserved totals of
    /// different transactions share accounts 1..8.
    /// </summary>
    private static byte[] RandomPreparedRecord(Random random, UInt128 transaction)
    {
        var legs = new Leg[random.Next(1, 4)];
        for (var i = 0; i < legs.Length; i++)
        {
            var closing = random.Next(4) == 1;
            var own = (transaction * 16) + (UInt128)i;
            legs[i] = new Leg((ushort)i, RandomSides[random.Next(RandomSides.Length)], new Transfer
            {
                Id = own,
                PendingId = own + 8,
                DebitAccountId = closing ? own : (UInt128)random.Next(1, 9),
                CreditAccountId = closing ? own + 8 : (UInt128)random.Next(1, 9),
                Amount = (UInt128)random.Next(0, 1000),
                Flags = closing ? TransferFlags.ClosingDebit | TransferFlags.ClosingCredit : random.Next(3) == 0 ? TransferFlags.Pending : TransferFlags.None,
            });
        }

        return CrossShardCommand.WritePreparedRecord(1, 0, legs);
    }

    /// <summary>
    /// <paramref name="records"/> plus the writes of derived tables that keep them what the Prepared records imply, as
    /// the ledger's own writes do (the RocksDB store keeps only those in memory and rebuilds them on reload).
    /// </summary>
    private static SideRecord[] WithDerivedRecords(InMemoryLedgerStore memory, SideRecord[] records)
    {
        var prepared = memory.EnumerateSideRecords(CrossShardTables.Prepared).ToDictionary(r => r.Key, r => r.Value!);
        foreach (var record in records.Where(r => r.Table == CrossShardTables.Prepared))
        {
            if (record.Value is null)
            {
                prepared.Remove(record.Key);
            }
            else
            {
                prepared[record.Key] = record.Value;
            }
        }

        var after = LedgerStateMachine.DeriveLegRecords(prepared.Select(p => new SideRecord(CrossShardTables.Prepared, p.Key, p.Value)))
            .ToDictionary(r => (r.Table, r.Key), r => r.Value!);
        var before = memory.EnumerateSideRecords().Where(r => CrossShardTables.IsDerived(r.Table)).ToDictionary(r => (r.Table, r.Key), r => r.Value!);
        var writes = new List<SideRecord>(records);
        writes.AddRange(before.Keys.Where(k => !after.ContainsKey(k)).Select(k => Delete(k.Table, k.Key)));
        writes.AddRange(after.Where(a => !before.TryGetValue(a.Key, out var old) || !old.SequenceEqual(a.Value)).Select(a => new SideRecord(a.Key.Table, a.Key.Key, a.Value)));
        return [.. writes];
    }

    private static void AssertSame(InMemoryLedgerStore memory, RocksLedgerStore rocks, int seed, int step)
    {
        var expected = memory.EnumerateSideRecords().ToArray();
        var actual = rocks.EnumerateSideRecords().ToArray();
        Assert.True(expected.Length == actual.Length, $"seed {seed} step {step}: {actual.Length} records, expected {expected.Length}");
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(
                expected[i].Table == actual[i].Table && expected[i].Key == actual[i].Key && expected[i].Value.AsSpan().SequenceEqual(actual[i].Value),
                $"seed {seed} step {step}: record {i} differs: expected table {expected[i].Table} key {expected[i].Key} {Convert.ToHexString(expected[i].Value!)}, got table {actual[i].Table} key {actual[i].Key} {Convert.ToHexString(actual[i].Value!)}");
        }

        foreach (var table in Tables)
        {
            // One table alone, in key order, equals that table's part of the whole enumeration.
            var tableExpected = expected.Where(r => r.Table == table).ToArray();
            foreach (var (name, alone) in new[] { ("rocks", rocks.EnumerateSideRecords(table).ToArray()), ("memory", memory.EnumerateSideRecords(table).ToArray()) })
            {
                Assert.True(
                    tableExpected.Length == alone.Length &&
                    tableExpected.Zip(alone).All(p => p.First.Key == p.Second.Key && p.First.Value.AsSpan().SequenceEqual(p.Second.Value) && p.Second.Table == table),
                    $"seed {seed} step {step}: table {table} alone differs in the {name} store");
            }

            Assert.True(
                tableExpected.Length == rocks.CountSideRecords(table) && tableExpected.Length == memory.CountSideRecords(table),
                $"seed {seed} step {step}: table {table} counted {rocks.CountSideRecords(table)} (rocks) and {memory.CountSideRecords(table)} (memory), expected {tableExpected.Length}");

            for (UInt128 key = 0; key < 10; key++)
            {
                var inMemory = memory.TryGetSideRecord(table, key, out var expectedValue);
                Assert.True(inMemory == rocks.TryGetSideRecord(table, key, out var actualValue), $"seed {seed} step {step}: table {table} key {key} presence");
                Assert.True(expectedValue.AsSpan().SequenceEqual(actualValue), $"seed {seed} step {step}: table {table} key {key} value");
            }
        }
    }

    [Fact]
    public void Tombstones_are_read_from_memory_up_to_their_own_limit_and_from_RocksDB_past_it()
    {
        using var directory = new TempDirectory();
        var database = Open(directory.PathName);
        try
        {
            var store = new RocksLedgerStore(database.OpenShard(1), tombstoneMirrorEntriesMax: 2);
            var index = 0UL;
            Commit(store, ref index, Put(CrossShardTables.Tombstone, 1, 0, length: 0), Put(CrossShardTables.Tombstone, 2, 0, length: 0), Put(CrossShardTables.Prepared, 5, 50));
            Assert.True(store.TombstoneMirrorActive);
            AssertTombstones(store, present: [1, 2], absent: [3]);

            // Past the limit only tombstones go back to RocksDB; the other tables stay mirrored.
            Commit(store, ref index, Put(CrossShardTables.Tombstone, 3, 0, length: 0));
            Assert.False(store.TombstoneMirrorActive);
            Assert.True(store.SideMirrorActive);
            AssertTombstones(store, present: [1, 2, 3], absent: [4]);

            database.Dispose();
            database = Open(directory.PathName);
            store = new RocksLedgerStore(database.OpenShard(1), tombstoneMirrorEntriesMax: 2);
            Assert.False(store.TombstoneMirrorActive); // still three on reload
            store = new RocksLedgerStore(database.OpenShard(1));
            Assert.True(store.TombstoneMirrorActive);
            AssertTombstones(store, present: [1, 2, 3], absent: [4]);
            Assert.Equal([1, 2, 3], store.EnumerateSideRecords(CrossShardTables.Tombstone).Select(r => (int)r.Key));

            // A tombstone with a value (the ledger never writes one) is answered from RocksDB, value and all.
            Commit(store, ref index, Put(CrossShardTables.Tombstone, 4, 7));
            Assert.False(store.TombstoneMirrorActive);
            Assert.True(store.TryGetSideRecord(CrossShardTables.Tombstone, 4, out var value) && value.SequenceEqual(Value(7)));
        }
        finally
        {
            database.Dispose();
        }
    }

    private static void AssertTombstones(RocksLedgerStore store, UInt128[] present, UInt128[] absent)
    {
        Assert.All(present, key => Assert.True(store.TryGetSideRecord(CrossShardTables.Tombstone, key, out var value) && value.Length == 0, $"tombstone {key}"));
        Assert.All(absent, key => Assert.False(store.TryGetSideRecord(CrossShardTables.Tombstone, key, out _), $"no tombstone {key}"));
    }

    private static void Commit(ILedgerStore store, ulong appliedIndex, SideRecord[] records)
    {
        var writes = new LedgerWriteSet { LastTimestamp = 0, AppliedIndex = appliedIndex };
        foreach (var record in records)
        {
            writes.AddSideRecord(record);
        }

        store.Commit(writes);
    }

    private static void Commit(RocksLedgerStore store, ref ulong index, params SideRecord[] records) => Commit(store, ++index, records);

    // A Prepared record's value must be one (its derived records are rebuilt from it): a leg of amount fill.
    private static SideRecord Put(byte table, UInt128 key, int fill, int length = 3) =>
        new(table, key, table == CrossShardTables.Prepared ? PreparedValue(fill) : Enumerable.Repeat((byte)fill, length).ToArray());

    private static SideRecord Delete(byte table, UInt128 key) => new(table, key, null);

    private static byte[] Value(int fill) => Put(0, 0, fill).Value!;

    private static byte[] PreparedValue(int fill) =>
        CrossShardCommand.WritePreparedRecord(1, 0, [new Leg(0, LegSides.Credit, new Transfer { Id = (UInt128)(1000 + fill), CreditAccountId = 1000, Amount = (UInt128)fill })]);

    /// <summary>A store on a new database in a temporary folder, committing at increasing applied indexes.</summary>
    private sealed class FreshStore : IDisposable
    {
        private readonly TempDirectory directory = new();
        private readonly RocksLedgerDatabase database;
        private ulong index;

        public FreshStore()
        {
            database = Open(directory.PathName);
            Store = new RocksLedgerStore(database.OpenShard(1));
        }

        public RocksLedgerStore Store { get; }

        public void Commit(params SideRecord[] records) => RocksSideMirrorTests.Commit(Store, ++index, records);

        public void Dispose()
        {
            database.Dispose();
            directory.Dispose();
        }
    }

    private static void RunProperty(string testName, Action<int> scenario)
    {
        try
        {
            Gen.Int[1, int.MaxValue].Sample(scenario, iter: 20, threads: 1);
        }
        catch (Exception error)
        {
            throw new Xunit.Sdk.XunitException(
                $"{error.Message}\n{error.InnerException?.Message}\nReplay: CsCheck_Seed=<seed above> dotnet test {ProjectPath} -c Release --filter \"FullyQualifiedName~{testName}\"");
        }
    }
}
