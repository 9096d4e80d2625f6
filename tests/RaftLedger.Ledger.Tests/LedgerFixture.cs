using RaftLedger.Ledger;

namespace RaftLedger.Ledger.Tests;

/// <summary>
/// A ledger on an in-memory store with a logical clock: each batch gets timestamp
/// max(clock, last + events), as the Raft leader will assign it.
/// </summary>
internal sealed class LedgerFixture
{
    public const ulong StartNanoseconds = 1_000_000_000_000;

    public LedgerFixture()
    {
        Store = new InMemoryLedgerStore();
        Ledger = new LedgerStateMachine(Store);
    }

    public InMemoryLedgerStore Store { get; }

    public LedgerStateMachine Ledger { get; }

    /// <summary>Logical cluster time in ns; the next batch's timestamp is at least this, and it becomes the batch's timestamp.</summary>
    public ulong ClockNanoseconds { get; set; } = StartNanoseconds;

    public void AdvanceSeconds(ulong seconds) => ClockNanoseconds += seconds * LedgerLimits.NanosecondsPerSecond;

    public ulong NextBatchTimestamp(int eventCount) =>
        Math.Max(ClockNanoseconds, Ledger.LastTimestamp + (ulong)Math.Max(eventCount, 1));

    // The clock moves to each batch's timestamp, so AdvanceSeconds counts from the last batch.
    public CreateAccountResult[] CreateAccounts(params Account[] accounts)
    {
        var results = new CreateAccountResult[accounts.Length];
        ClockNanoseconds = NextBatchTimestamp(accounts.Length);
        Ledger.CreateAccounts(accounts, ClockNanoseconds, results);
        return results;
    }

    public CreateTransferResult[] CreateTransfers(params Transfer[] transfers)
    {
        var results = new CreateTransferResult[transfers.Length];
        ClockNanoseconds = NextBatchTimestamp(transfers.Length);
        Ledger.CreateTransfers(transfers, ClockNanoseconds, results);
        return results;
    }

    public CreateAccountResult CreateAccount(Account account) => CreateAccounts(account)[0];

    public CreateTransferResult CreateTransfer(Transfer transfer) => CreateTransfers(transfer)[0];

    public Account AccountOf(UInt128 id)
    {
        Assert.True(Ledger.TryLookupAccount(id, out var account), $"account {id} exists");
        return account;
    }

    public Transfer TransferOf(UInt128 id)
    {
        Assert.True(Ledger.TryLookupTransfer(id, out var transfer), $"transfer {id} exists");
        return transfer;
    }

    public static Account NewAccount(UInt128 id, uint ledger = 1, AccountFlags flags = AccountFlags.None) =>
        new() { Id = id, Ledger = ledger, Code = 10, Flags = flags };

    public static Transfer NewTransfer(UInt128 id, UInt128 debit, UInt128 credit, UInt128 amount, TransferFlags flags = TransferFlags.None, uint ledger = 1) =>
        new() { Id = id, DebitAccountId = debit, CreditAccountId = credit, Amount = amount, Ledger = ledger, Code = 1, Flags = flags };

    public static Transfer Post(UInt128 id, UInt128 pendingId, UInt128 amount) =>
        new() { Id = id, PendingId = pendingId, Amount = amount, Flags = TransferFlags.PostPendingTransfer };

    public static Transfer Void(UInt128 id, UInt128 pendingId) =>
        new() { Id = id, PendingId = pendingId, Flags = TransferFlags.VoidPendingTransfer };

    /// <summary>Creates accounts 1..count on ledger 1 (no flags) and asserts they were created.</summary>
    public void CreatePlainAccounts(int count)
    {
        var accounts = new Account[count];
        for (var i = 0; i < count; i++)
        {
            accounts[i] = NewAccount((UInt128)(i + 1));
        }

        Assert.All(CreateAccounts(accounts), result => Assert.Equal(CreateAccountResult.Created, result));
    }
}
