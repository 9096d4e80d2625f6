using RaftLedger.Ledger;
using static RaftLedger.Ledger.Tests.LedgerFixture;

namespace RaftLedger.Ledger.Tests;

public sealed class LinkedChainTests
{
    private const TransferFlags Linked = TransferFlags.Linked;

    private static LedgerFixture WithGuardedAccount()
    {
        var f = new LedgerFixture();
        Assert.All(f.CreateAccounts(NewAccount(1), NewAccount(2), NewAccount(3, flags: AccountFlags.DebitsMustNotExceedCredits)), r => Assert.Equal(CreateAccountResult.Created, r));
        return f;
    }

    [Fact]
    public void Chain_whose_last_event_fails_rolls_back_the_events_that_had_succeeded()
    {
        var f = WithGuardedAccount();
        var before = f.Ledger.Fingerprint();

        // 1 -> 3 funds account 3 with 5, 3 -> 2 spends 5 (fine only after the funding), then 3 -> 2
        // spends 1 more, which exceeds its credits: the whole chain is undone.
        var results = f.CreateTransfers(
            NewTransfer(10, 1, 3, 5, Linked),
            NewTransfer(11, 3, 2, 5, Linked | TransferFlags.Pending),
            NewTransfer(12, 3, 2, 1));
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.LinkedEventFailed, CreateTransferResult.ExceedsCredits], results);
        Assert.False(f.Ledger.TryLookupTransfer(10, out _));
        Assert.False(f.Ledger.TryLookupTransfer(11, out _));
        Assert.Equal(PendingStatus.None, f.Ledger.GetPendingStatus(11));
        Assert.Equal(UInt128.Zero, f.AccountOf(3).CreditsPosted);
        Assert.Equal(UInt128.Zero, f.AccountOf(3).DebitsPending);

        // Only the failing id is burnt; the rolled-back ones can be created later.
        Assert.Equal(CreateTransferResult.IdAlreadyFailed, f.CreateTransfer(NewTransfer(12, 1, 2, 1)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, 1)));
        Assert.NotEqual(before, f.Ledger.Fingerprint());
    }

    [Fact]
    public void Chain_that_fails_first_fails_every_later_event_and_the_next_event_runs()
    {
        var f = WithGuardedAccount();
        var results = f.CreateTransfers(
            NewTransfer(10, 1, 99, 5, Linked),
            NewTransfer(11, 1, 2, 5, Linked),
            NewTransfer(12, 0, 0, 0),
            NewTransfer(13, 1, 2, 7));
        Assert.Equal([CreateTransferResult.CreditAccountNotFound, CreateTransferResult.LinkedEventFailed, CreateTransferResult.LinkedEventFailed, CreateTransferResult.Created], results);
        Assert.Equal((UInt128)7, f.AccountOf(1).DebitsPosted);
    }

    [Fact]
    public void Chain_left_open_at_the_end_of_the_batch_fails_with_chain_open()
    {
        var f = WithGuardedAccount();
        var results = f.CreateTransfers(
            NewTransfer(10, 1, 2, 5),
            NewTransfer(11, 1, 2, 5, Linked),
            NewTransfer(12, 1, 2, 5, Linked));
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.LinkedEventFailed, CreateTransferResult.LinkedEventChainOpen], results);
        Assert.Equal((UInt128)5, f.AccountOf(1).DebitsPosted);
    }

    [Fact]
    public void Single_linked_event_at_the_end_is_chain_open_even_if_it_is_invalid()
    {
        var f = WithGuardedAccount();
        Assert.Equal([CreateTransferResult.LinkedEventChainOpen], f.CreateTransfers(NewTransfer(0, 0, 0, 0, Linked)));
    }

    [Fact]
    public void Broken_chain_reports_linked_event_failed_before_an_events_own_error()
    {
        var f = WithGuardedAccount();
        var results = f.CreateTransfers(
            NewTransfer(10, 1, 2, 5, Linked | TransferFlags.PostPendingTransfer | TransferFlags.Pending),
            NewTransfer(0, 1, 2, 5, Linked),
            NewTransfer(12, 1, 2, 5, Linked));
        Assert.Equal([CreateTransferResult.FlagsAreMutuallyExclusive, CreateTransferResult.LinkedEventFailed, CreateTransferResult.LinkedEventFailed], results);
    }

    [Fact]
    public void Chain_can_create_a_pending_transfer_and_post_it()
    {
        var f = WithGuardedAccount();
        var results = f.CreateTransfers(
            NewTransfer(10, 1, 2, 5, Linked | TransferFlags.Pending),
            new Transfer { Id = 11, PendingId = 10, Flags = TransferFlags.PostPendingTransfer });
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.Created], results);
        Assert.Equal((UInt128)5, f.AccountOf(1).DebitsPosted);
        Assert.Equal(PendingStatus.Posted, f.Ledger.GetPendingStatus(10));
    }

    [Fact]
    public void Rolled_back_post_leaves_the_pending_transfer_pending()
    {
        var f = WithGuardedAccount();
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, 5, TransferFlags.Pending)));
        var results = f.CreateTransfers(
            new Transfer { Id = 11, PendingId = 10, Flags = TransferFlags.PostPendingTransfer | Linked },
            NewTransfer(12, 3, 2, 1));
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.ExceedsCredits], results);
        Assert.Equal(PendingStatus.Pending, f.Ledger.GetPendingStatus(10));
        Assert.Equal((UInt128)5, f.AccountOf(1).DebitsPending);
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPosted);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Post(13, 10, 0)));
    }

    [Fact]
    public void Rolled_back_closing_transfer_leaves_the_account_open()
    {
        var f = WithGuardedAccount();
        var results = f.CreateTransfers(
            NewTransfer(10, 1, 2, 0, Linked | TransferFlags.Pending | TransferFlags.ClosingDebit),
            NewTransfer(11, 3, 2, 1));
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.ExceedsCredits], results);
        Assert.Equal(AccountFlags.None, f.AccountOf(1).Flags);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(12, 1, 2, 1)));
    }

    [Fact]
    public void Second_chain_succeeds_after_the_first_failed()
    {
        var f = WithGuardedAccount();
        var results = f.CreateTransfers(
            NewTransfer(10, 1, 2, 5, Linked),
            NewTransfer(11, 3, 2, 1),
            NewTransfer(12, 1, 2, 5, Linked),
            NewTransfer(13, 2, 1, 2));
        Assert.Equal([CreateTransferResult.LinkedEventFailed, CreateTransferResult.ExceedsCredits, CreateTransferResult.Created, CreateTransferResult.Created], results);
        Assert.Equal((UInt128)5, f.AccountOf(1).DebitsPosted);
        Assert.Equal((UInt128)2, f.AccountOf(1).CreditsPosted);
    }

    [Fact]
    public void Account_chain_is_all_or_nothing()
    {
        var f = new LedgerFixture();
        var results = f.CreateAccounts(
            NewAccount(1, flags: AccountFlags.Linked),
            NewAccount(2, flags: AccountFlags.Linked),
            NewAccount(1),
            NewAccount(4));
        // Account 1 exists by the third event (created earlier in the chain, without `linked`), so it fails and so does the chain.
        Assert.Equal([CreateAccountResult.LinkedEventFailed, CreateAccountResult.LinkedEventFailed, CreateAccountResult.ExistsWithDifferentFlags, CreateAccountResult.Created], results);
        Assert.False(f.Ledger.TryLookupAccount(1, out _));
        Assert.False(f.Ledger.TryLookupAccount(2, out _));
        Assert.True(f.Ledger.TryLookupAccount(4, out _));
    }

    [Fact]
    public void Account_chain_left_open_fails()
    {
        var f = new LedgerFixture();
        var results = f.CreateAccounts(NewAccount(1), NewAccount(2, flags: AccountFlags.Linked), NewAccount(3, flags: AccountFlags.Linked));
        Assert.Equal([CreateAccountResult.Created, CreateAccountResult.LinkedEventFailed, CreateAccountResult.LinkedEventChainOpen], results);
        Assert.Equal(1, f.Store.AccountCount);
    }

    [Fact]
    public void Linked_results_share_their_values_between_accounts_and_transfers()
    {
        // The batch driver writes one byte per event for both operations.
        Assert.Equal((byte)CreateAccountResult.Created, (byte)CreateTransferResult.Created);
        Assert.Equal((byte)CreateAccountResult.LinkedEventFailed, (byte)CreateTransferResult.LinkedEventFailed);
        Assert.Equal((byte)CreateAccountResult.LinkedEventChainOpen, (byte)CreateTransferResult.LinkedEventChainOpen);
    }
}
