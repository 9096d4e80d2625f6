using RaftLedger.Ledger;
using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

/// <summary>
/// The RocksDB store remembers that nothing expires before some time, so that most applied batches skip the
/// expiry scan. A pending transfer must still expire exactly when the in-memory store expires it.
/// </summary>
public sealed class RocksExpiryTests
{
    private const ulong Second = 1_000_000_000;
    private const ulong Start = 100 * Second;

    [Fact]
    public void A_pending_transfer_expires_on_time_after_batches_that_found_nothing_due()
    {
        using var directory = new TempDirectory();
        var database = Open(directory.PathName);
        var (rocks, memory) = TwoAccountLedgers(database, Start);

        var index = 1UL;
        Create(rocks, memory, ref index, Start + 1, new Transfer { Id = 10, DebitAccountId = 1, CreditAccountId = 2, Amount = 5, Ledger = 1, Code = 1, Flags = TransferFlags.Pending, TimeoutSeconds = 3 });

        // A reopened store knows nothing about expiry times, so the next batches scan, find nothing due yet and
        // remember that: the transfer must still expire when its time comes.
        database.Dispose();
        database = Open(directory.PathName);
        rocks = new LedgerStateMachine(new RocksLedgerStore(database.OpenShard(1)));
        for (var at = 1UL; at <= 2; at++)
        {
            Create(rocks, memory, ref index, Start + (at * Second), new Transfer { Id = 10 + (UInt128)at, DebitAccountId = 2, CreditAccountId = 1, Amount = 1, Ledger = 1, Code = 1 });
            Assert.True(rocks.TryLookupTransfer(10, out _));
            Assert.Equal(5, (int)Account(rocks, 1).DebitsPending);
        }

        Create(rocks, memory, ref index, Start + (4 * Second), new Transfer { Id = 20, DebitAccountId = 2, CreditAccountId = 1, Amount = 1, Ledger = 1, Code = 1 });

        Assert.Equal(0, (int)Account(rocks, 1).DebitsPending);
        Assert.Equal(memory.Fingerprint(), rocks.Fingerprint());
        database.Dispose();
    }

    [Fact]
    public void A_pending_transfer_due_before_the_remembered_earliest_expiry_still_expires_on_time()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var (rocks, memory) = TwoAccountLedgers(database, Start);

        var index = 1UL;
        var payment = new Transfer { DebitAccountId = 2, CreditAccountId = 1, Amount = 1, Ledger = 1, Code = 1 };
        Create(rocks, memory, ref index, Start + Second, new Transfer { Id = 10, DebitAccountId = 1, CreditAccountId = 2, Amount = 5, Ledger = 1, Code = 1, Flags = TransferFlags.Pending, TimeoutSeconds = 5 });
        // Nothing due: the store now remembers transfer 10's expiry as the earliest. A later pending transfer that
        // expires before it must lower that again.
        Create(rocks, memory, ref index, Start + (2 * Second), payment with { Id = 11 });
        Create(rocks, memory, ref index, Start + (3 * Second), new Transfer { Id = 12, DebitAccountId = 1, CreditAccountId = 2, Amount = 7, Ledger = 1, Code = 1, Flags = TransferFlags.Pending, TimeoutSeconds = 1 });
        Assert.True(rocks.TryLookupTransfer(12, out var early));
        Assert.True(rocks.TryLookupTransfer(10, out var late));

        // Exactly at each expiry time, then in between: both stores expire the same transfers at the same batch.
        Create(rocks, memory, ref index, early.Timestamp + Second - 1, payment with { Id = 13 });
        Assert.Equal(12, (int)Account(rocks, 1).DebitsPending);
        Create(rocks, memory, ref index, early.Timestamp + Second, payment with { Id = 14 });
        Assert.Equal(5, (int)Account(rocks, 1).DebitsPending);
        Create(rocks, memory, ref index, late.Timestamp + (5 * Second) - 1, payment with { Id = 15 });
        Assert.Equal(5, (int)Account(rocks, 1).DebitsPending);
        Create(rocks, memory, ref index, late.Timestamp + (5 * Second), payment with { Id = 16 });

        Assert.Equal(0, (int)Account(rocks, 1).DebitsPending);
        Assert.Equal(memory.Fingerprint(), rocks.Fingerprint());
    }

    /// <summary>A RocksDB ledger and an in-memory one, each holding accounts 1 and 2 (created at index 1).</summary>
    private static (LedgerStateMachine Rocks, LedgerStateMachine Memory) TwoAccountLedgers(RocksLedgerDatabase database, ulong at)
    {
        var rocks = new LedgerStateMachine(new RocksLedgerStore(database.OpenShard(1)));
        var memory = new LedgerStateMachine(new InMemoryLedgerStore());
        foreach (var ledger in new[] { rocks, memory })
        {
            var accounts = new[] { new Account { Id = 1, Ledger = 1, Code = 1 }, new Account { Id = 2, Ledger = 1, Code = 1 } };
            ledger.CreateAccounts(accounts, at, new CreateAccountResult[2], 1);
        }

        return (rocks, memory);
    }

    private static Account Account(LedgerStateMachine ledger, UInt128 id)
    {
        Assert.True(ledger.TryLookupAccount(id, out var account));
        return account;
    }

    private static void Create(LedgerStateMachine rocks, LedgerStateMachine memory, ref ulong index, ulong timestamp, Transfer transfer)
    {
        index++;
        var results = new CreateTransferResult[1];
        rocks.CreateTransfers([transfer], timestamp, results, index);
        Assert.Equal(CreateTransferResult.Created, results[0]);
        memory.CreateTransfers([transfer], timestamp, results, index);
        Assert.Equal(CreateTransferResult.Created, results[0]);
    }
}
