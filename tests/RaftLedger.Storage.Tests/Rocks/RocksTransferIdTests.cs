using RaftLedger.Ledger;
using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

/// <summary>
/// The store answers "this id is new" without a RocksDB read when the id is above every stored id; these tests pin
/// that the highest stored id is right after a reopen and after a snapshot install replaced the state underneath.
/// </summary>
public sealed class RocksTransferIdTests
{
    private const ulong BatchTimestampStep = 1_000_000;

    [Fact]
    public void Stored_and_burnt_ids_below_the_highest_one_are_still_refused_after_a_reopen()
    {
        using var directory = new TempDirectory();
        var database = Open(directory.PathName);
        try
        {
            var ledger = NewLedger(database, 1);
            var timestamp = CreateAccounts(ledger, appliedIndex: 1);

            // 500 is burnt (transient failure: no such debit account), 100 and 300 are created; 500 is the highest key.
            var results = Apply(ledger, ref timestamp, appliedIndex: 2, Transfer(100, 1, 2), Transfer(500, 99, 2), Transfer(300, 2, 1));
            Assert.Equal([CreateTransferResult.Created, CreateTransferResult.DebitAccountNotFound, CreateTransferResult.Created], results);

            for (var reopen = 0; reopen < 2; reopen++)
            {
                results = Apply(ledger, ref timestamp, appliedIndex: (ulong)(3 + reopen), Transfer(300, 2, 1), Transfer(500, 1, 2), Transfer(100, 1, 2));
                Assert.Equal([CreateTransferResult.Exists, CreateTransferResult.IdAlreadyFailed, CreateTransferResult.Exists], results);
                database.Dispose();
                database = Open(directory.PathName);
                ledger = NewLedger(database, 1);
            }

            results = Apply(ledger, ref timestamp, appliedIndex: 5, Transfer(501, 1, 2), Transfer(200, 2, 1));
            Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], results);
        }
        finally
        {
            database.Dispose();
        }
    }

    [Fact]
    public void A_store_opened_before_a_snapshot_install_finds_the_installed_transfers()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var source = NewLedger(database, 1);
        var sourceTimestamp = CreateAccounts(source, appliedIndex: 1);
        Apply(source, ref sourceTimestamp, appliedIndex: 2, Transfer(700, 1, 2), Transfer(900, 2, 1));

        // The target's store sees an empty shard first (every id new), then the install replaces the state.
        var target = NewLedger(database, 2);
        var targetTimestamp = CreateAccounts(target, appliedIndex: 1);
        using var stream = new MemoryStream();
        using (var snapshot = database.OpenShard(1).CreateSnapshot())
        {
            snapshot.WriteTo(stream);
        }

        stream.Position = 0;
        database.OpenShard(2).InstallSnapshot(stream);

        targetTimestamp = Math.Max(targetTimestamp, sourceTimestamp);
        var results = Apply(target, ref targetTimestamp, appliedIndex: 3, Transfer(900, 2, 1), Transfer(700, 1, 2), Transfer(901, 1, 2));
        Assert.Equal([CreateTransferResult.Exists, CreateTransferResult.Exists, CreateTransferResult.Created], results);
    }

    [Fact]
    public void A_batch_read_in_one_multiget_gets_the_same_statuses_as_point_reads()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var ledger = NewLedger(database, 1);
        var timestamp = CreateAccounts(ledger, appliedIndex: 1);

        // 1000 is the highest stored id, so every id below it is looked up; 10..40 step 2 exist, 11 and 13 are burnt.
        var seed = new List<Transfer> { Transfer(1000, 1, 2), Transfer(11, 99, 2), Transfer(13, 1, 99) };
        for (ulong id = 10; id <= 40; id += 2)
        {
            seed.Add(Transfer(id, 1, 2));
        }

        Apply(ledger, ref timestamp, appliedIndex: 2, [.. seed]);

        // More lookups than the prefetch threshold, in no order, with a repeat inside the batch and an id above the highest.
        var batch = new List<Transfer>();
        var expected = new List<CreateTransferResult>();
        for (ulong id = 41; id >= 9; id--)
        {
            batch.Add(Transfer(id, 2, 1));
            expected.Add(id is 11 or 13 ? CreateTransferResult.IdAlreadyFailed
                : id % 2 == 0 && id <= 40 ? CreateTransferResult.ExistsWithDifferentDebitAccountId
                : CreateTransferResult.Created);
        }

        batch.Add(Transfer(41, 2, 1));
        expected.Add(CreateTransferResult.Exists);
        batch.Add(Transfer(2000, 1, 2));
        expected.Add(CreateTransferResult.Created);
        Assert.True(batch.Count >= RocksLedgerStore.PrefetchLookupsMin);
        Assert.Equal(expected, Apply(ledger, ref timestamp, appliedIndex: 3, [.. batch]));

        // The next batch must see what the previous one created, not the previous prefetch's answers.
        var again = batch.Select(t => t with { }).ToArray();
        var results = Apply(ledger, ref timestamp, appliedIndex: 4, again);
        Assert.All(results.Select((r, i) => (r, i)), x => Assert.True(
            x.r is CreateTransferResult.Exists or CreateTransferResult.IdAlreadyFailed or CreateTransferResult.ExistsWithDifferentDebitAccountId,
            $"event {x.i} (id {again[x.i].Id}) got {x.r}"));
        Assert.Equal(CreateTransferResult.Exists, results[0]);
    }

    private static LedgerStateMachine NewLedger(RocksLedgerDatabase database, uint shardId) =>
        new(new RocksLedgerStore(database.OpenShard(shardId)));

    private static ulong CreateAccounts(LedgerStateMachine ledger, ulong appliedIndex)
    {
        var timestamp = BatchTimestampStep;
        var results = new CreateAccountResult[2];
        ledger.CreateAccounts([new Account { Id = 1, Ledger = 1, Code = 1 }, new Account { Id = 2, Ledger = 1, Code = 1 }], timestamp, results, appliedIndex);
        Assert.Equal([CreateAccountResult.Created, CreateAccountResult.Created], results);
        return timestamp;
    }

    private static CreateTransferResult[] Apply(LedgerStateMachine ledger, ref ulong timestamp, ulong appliedIndex, params Transfer[] transfers)
    {
        timestamp += BatchTimestampStep;
        var results = new CreateTransferResult[transfers.Length];
        ledger.CreateTransfers(transfers, timestamp, results, appliedIndex);
        return results;
    }

    private static Transfer Transfer(ulong id, ulong debit, ulong credit) =>
        new() { Id = id, DebitAccountId = debit, CreditAccountId = credit, Amount = 1, Ledger = 1, Code = 1 };
}
