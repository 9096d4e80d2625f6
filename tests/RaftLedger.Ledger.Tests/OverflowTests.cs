using RaftLedger.Ledger;
using static RaftLedger.Ledger.Tests.LedgerFixture;

namespace RaftLedger.Ledger.Tests;

public sealed class OverflowTests
{
    private static readonly UInt128 Max = UInt128.MaxValue;
    private static readonly UInt128 Half = UInt128.One << 127;

    private static LedgerFixture WithAccounts(int count)
    {
        var f = new LedgerFixture();
        f.CreatePlainAccounts(count);
        return f;
    }

    [Fact]
    public void Pending_debits_overflow_before_pending_credits()
    {
        var f = WithAccounts(4);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, Max, TransferFlags.Pending)));
        Assert.Equal(Max, f.AccountOf(1).DebitsPending);

        // Both sides would overflow: the debit side is reported first.
        Assert.Equal(CreateTransferResult.OverflowsDebitsPending, f.CreateTransfer(NewTransfer(11, 1, 2, 1, TransferFlags.Pending)));
        Assert.Equal(CreateTransferResult.OverflowsCreditsPending, f.CreateTransfer(NewTransfer(12, 3, 2, 1, TransferFlags.Pending)));
        Assert.Equal(Max, f.AccountOf(2).CreditsPending);
        Assert.Equal(UInt128.Zero, f.AccountOf(3).DebitsPending);
    }

    [Fact]
    public void Posted_debits_overflow_before_posted_credits()
    {
        var f = WithAccounts(4);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, Max)));
        Assert.Equal(CreateTransferResult.OverflowsDebitsPosted, f.CreateTransfer(NewTransfer(11, 1, 2, 1)));
        Assert.Equal(CreateTransferResult.OverflowsCreditsPosted, f.CreateTransfer(NewTransfer(12, 3, 2, 1)));

        // A pending transfer is refused too: posting it later could not fit.
        Assert.Equal(CreateTransferResult.OverflowsDebitsPosted, f.CreateTransfer(NewTransfer(13, 1, 3, 1, TransferFlags.Pending)));
    }

    [Fact]
    public void Pending_overflow_takes_precedence_over_posted_overflow()
    {
        var f = WithAccounts(4);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 3, Max, TransferFlags.Pending)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(11, 4, 2, Max)));

        // Debits pending of 1 and credits posted of 2 would both overflow.
        Assert.Equal(CreateTransferResult.OverflowsDebitsPending, f.CreateTransfer(NewTransfer(12, 1, 2, 1, TransferFlags.Pending)));
    }

    [Fact]
    public void Sum_of_pending_and_posted_debits_overflows_though_each_fits()
    {
        var f = WithAccounts(4);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, Half, TransferFlags.Pending)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(11, 1, 3, Half - 1)));
        var account = f.AccountOf(1);
        Assert.Equal(Max, account.DebitsPending + account.DebitsPosted);
        Assert.Equal(CreateTransferResult.OverflowsDebits, f.CreateTransfer(NewTransfer(12, 1, 4, 1)));
    }

    [Fact]
    public void Sum_of_pending_and_posted_credits_overflows_though_each_fits()
    {
        var f = WithAccounts(4);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 2, 1, Half, TransferFlags.Pending)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(11, 3, 1, Half - 1)));
        Assert.Equal(CreateTransferResult.OverflowsCredits, f.CreateTransfer(NewTransfer(12, 4, 1, 1)));
    }

    [Fact]
    public void Debits_total_overflow_precedes_credits_total_overflow()
    {
        var f = WithAccounts(4);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, Half, TransferFlags.Pending)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(11, 1, 2, Half - 1)));
        Assert.Equal(CreateTransferResult.OverflowsDebits, f.CreateTransfer(NewTransfer(12, 1, 2, 1)));
    }

    [Fact]
    public void Timeout_that_reaches_past_2_pow_63_ns_overflows()
    {
        var f = WithAccounts(2);
        f.ClockNanoseconds = LedgerLimits.TimestampMax - (100 * LedgerLimits.NanosecondsPerSecond);
        var pending = NewTransfer(10, 1, 2, 1, TransferFlags.Pending);
        pending.TimeoutSeconds = 101;
        Assert.Equal(CreateTransferResult.OverflowsTimeout, f.CreateTransfer(pending));
        pending.Id = 11;
        pending.TimeoutSeconds = 99;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(pending));
    }

    [Fact]
    public void Largest_timeout_is_fine_at_ordinary_cluster_time()
    {
        var f = WithAccounts(2);
        var pending = NewTransfer(10, 1, 2, 1, TransferFlags.Pending);
        pending.TimeoutSeconds = uint.MaxValue;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(pending));
    }

    [Fact]
    public void Overflow_is_reported_before_limits()
    {
        var f = new LedgerFixture();
        Assert.All(f.CreateAccounts(NewAccount(1, flags: AccountFlags.DebitsMustNotExceedCredits), NewAccount(2), NewAccount(3)), r => Assert.Equal(CreateAccountResult.Created, r));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 2, 1, Max)));
        Assert.Equal(CreateTransferResult.OverflowsCreditsPosted, f.CreateTransfer(NewTransfer(11, 3, 1, 1)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(12, 1, 2, Max)));

        // 1 may not debit more than its credits (Max) and its posted debits would overflow: overflow wins.
        Assert.Equal(CreateTransferResult.OverflowsDebitsPosted, f.CreateTransfer(NewTransfer(13, 1, 3, 1)));
    }

    [Fact]
    public void Closed_account_is_reported_before_overflow()
    {
        var f = WithAccounts(3);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, Max)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(11, 3, 1, 0, TransferFlags.Pending | TransferFlags.ClosingCredit)));
        Assert.Equal(CreateTransferResult.DebitAccountAlreadyClosed, f.CreateTransfer(NewTransfer(12, 1, 2, 1)));
    }

    [Fact]
    public void Posting_a_maximal_reservation_fits()
    {
        var f = WithAccounts(2);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 1, 2, Max, TransferFlags.Pending)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Post(11, 10, Max)));
        Assert.Equal(Max, f.AccountOf(1).DebitsPosted);
        Assert.Equal(Max, f.AccountOf(2).CreditsPosted);
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPending);
    }
}
