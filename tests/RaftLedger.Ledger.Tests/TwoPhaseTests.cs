using RaftLedger.Ledger;
using static RaftLedger.Ledger.Tests.LedgerFixture;

namespace RaftLedger.Ledger.Tests;

public sealed class TwoPhaseTests
{
    private static LedgerFixture WithPending(UInt128 amount, uint timeoutSeconds = 0, TransferFlags extra = TransferFlags.None)
    {
        var f = new LedgerFixture();
        f.CreatePlainAccounts(3);
        var pending = NewTransfer(100, 1, 2, amount, TransferFlags.Pending | extra);
        pending.TimeoutSeconds = timeoutSeconds;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(pending));
        Assert.Equal(amount, f.AccountOf(1).DebitsPending);
        Assert.Equal(amount, f.AccountOf(2).CreditsPending);
        Assert.Equal(PendingStatus.Pending, f.Ledger.GetPendingStatus(100));
        return f;
    }

    [Fact]
    public void Partial_post_posts_the_amount_and_returns_the_rest()
    {
        var f = WithPending(100);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Post(101, 100, 60)));
        var dr = f.AccountOf(1);
        var cr = f.AccountOf(2);
        Assert.Equal((UInt128)0, dr.DebitsPending);
        Assert.Equal((UInt128)60, dr.DebitsPosted);
        Assert.Equal((UInt128)0, cr.CreditsPending);
        Assert.Equal((UInt128)60, cr.CreditsPosted);
        var post = f.TransferOf(101);
        Assert.Equal((UInt128)60, post.Amount);
        Assert.Equal((UInt128)1, post.DebitAccountId);
        Assert.Equal((UInt128)2, post.CreditAccountId);
        Assert.Equal(1u, post.Ledger);
        Assert.Equal(PendingStatus.Posted, f.Ledger.GetPendingStatus(100));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Post_with_amount_zero_or_max_posts_the_full_pending_amount(bool useMax)
    {
        var f = WithPending(100);
        var amount = useMax ? UInt128.MaxValue : UInt128.Zero;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Post(101, 100, amount)));
        Assert.Equal((UInt128)100, f.AccountOf(1).DebitsPosted);
        Assert.Equal((UInt128)100, f.TransferOf(101).Amount);

        // Retrying the same post is `exists`, though the stored amount is the resolved one.
        Assert.Equal(CreateTransferResult.Exists, f.CreateTransfer(Post(101, 100, amount)));
        Assert.Equal(CreateTransferResult.Exists, f.CreateTransfer(Post(101, 100, 100)));
        Assert.Equal(CreateTransferResult.ExistsWithDifferentAmount, f.CreateTransfer(Post(101, 100, 99)));
    }

    [Fact]
    public void Void_releases_the_reservation()
    {
        var f = WithPending(100);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Void(101, 100)));
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPending);
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPosted);
        Assert.Equal(UInt128.Zero, f.AccountOf(2).CreditsPending);
        Assert.Equal((UInt128)100, f.TransferOf(101).Amount);
        Assert.Equal(PendingStatus.Voided, f.Ledger.GetPendingStatus(100));
    }

    [Fact]
    public void Void_must_name_the_full_amount_or_zero()
    {
        var f = WithPending(100);
        var partialVoid = Void(101, 100);
        partialVoid.Amount = 40;
        Assert.Equal(CreateTransferResult.PendingTransferHasDifferentAmount, f.CreateTransfer(partialVoid));
        partialVoid.Id = 102;
        partialVoid.Amount = 101;
        Assert.Equal(CreateTransferResult.ExceedsPendingTransferAmount, f.CreateTransfer(partialVoid));
        partialVoid.Id = 103;
        partialVoid.Amount = 100;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(partialVoid));
    }

    [Fact]
    public void Second_post_is_already_posted_and_void_after_post_too()
    {
        var f = WithPending(100);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Post(101, 100, 10)));
        Assert.Equal(CreateTransferResult.PendingTransferAlreadyPosted, f.CreateTransfer(Post(102, 100, 10)));
        Assert.Equal(CreateTransferResult.PendingTransferAlreadyPosted, f.CreateTransfer(Void(103, 100)));
        Assert.Equal((UInt128)10, f.AccountOf(1).DebitsPosted);
    }

    [Fact]
    public void Post_after_void_is_already_voided()
    {
        var f = WithPending(100);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Void(101, 100)));
        Assert.Equal(CreateTransferResult.PendingTransferAlreadyVoided, f.CreateTransfer(Post(102, 100, 0)));
        Assert.Equal(CreateTransferResult.PendingTransferAlreadyVoided, f.CreateTransfer(Void(103, 100)));
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPosted);
    }

    [Fact]
    public void Double_post_in_one_batch_posts_once()
    {
        var f = WithPending(100);
        var results = f.CreateTransfers(Post(101, 100, 30), Post(102, 100, 30));
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.PendingTransferAlreadyPosted], results);
        Assert.Equal((UInt128)30, f.AccountOf(1).DebitsPosted);
    }

    [Fact]
    public void Pending_transfer_expires_at_the_exact_second_of_its_timeout()
    {
        // One nanosecond before the deadline the post succeeds...
        var early = WithPending(100, timeoutSeconds: 2);
        var created = early.TransferOf(100).Timestamp;
        early.ClockNanoseconds = created + (2 * LedgerLimits.NanosecondsPerSecond) - 1;
        Assert.Equal(CreateTransferResult.Created, early.CreateTransfer(Post(101, 100, 0)));

        // ...at the deadline it has expired, and its reservation is released.
        var late = WithPending(100, timeoutSeconds: 2);
        late.ClockNanoseconds = created + (2 * LedgerLimits.NanosecondsPerSecond);
        Assert.Equal(CreateTransferResult.PendingTransferExpired, late.CreateTransfer(Post(101, 100, 0)));
        Assert.Equal(PendingStatus.Expired, late.Ledger.GetPendingStatus(100));
        Assert.Equal(UInt128.Zero, late.AccountOf(1).DebitsPending);
        Assert.Equal(UInt128.Zero, late.AccountOf(2).CreditsPending);
        Assert.Equal(CreateTransferResult.PendingTransferExpired, late.CreateTransfer(Void(102, 100)));
    }

    [Fact]
    public void Expiry_within_a_batch_applies_from_the_event_whose_timestamp_reaches_it()
    {
        var f = WithPending(100, timeoutSeconds: 1);
        var deadline = f.TransferOf(100).Timestamp + LedgerLimits.NanosecondsPerSecond;

        // Two events: the first at deadline - 1 (before expiry), the second at the deadline.
        var results = new CreateTransferResult[2];
        f.Ledger.CreateTransfers([NewTransfer(200, 1, 3, 1), Post(101, 100, 0)], deadline, results);
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.PendingTransferExpired], results);

        // The next batch's sweep releases it.
        f.ClockNanoseconds = deadline + 10;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(201, 1, 3, 1)));
        Assert.Equal(PendingStatus.Expired, f.Ledger.GetPendingStatus(100));
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPending);
    }

    [Fact]
    public void Expired_reservation_no_longer_counts_against_the_limit()
    {
        var f = new LedgerFixture();
        Assert.All(f.CreateAccounts(NewAccount(1, flags: AccountFlags.DebitsMustNotExceedCredits), NewAccount(2), NewAccount(3)), r => Assert.Equal(CreateAccountResult.Created, r));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(10, 2, 1, 100)));
        var hold = NewTransfer(11, 1, 3, 100, TransferFlags.Pending);
        hold.TimeoutSeconds = 5;
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(hold));
        Assert.Equal(CreateTransferResult.ExceedsCredits, f.CreateTransfer(NewTransfer(12, 1, 3, 1)));

        f.AdvanceSeconds(4);
        Assert.Equal(CreateTransferResult.ExceedsCredits, f.CreateTransfer(NewTransfer(13, 1, 3, 1)));

        f.AdvanceSeconds(1);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(14, 1, 3, 100)));
        Assert.Equal((UInt128)100, f.AccountOf(1).DebitsPosted);
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPending);
    }

    [Fact]
    public void Posted_or_voided_transfer_never_expires_later()
    {
        var f = WithPending(100, timeoutSeconds: 1);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Post(101, 100, 40)));
        f.AdvanceSeconds(5);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(200, 1, 3, 1)));
        Assert.Equal(PendingStatus.Posted, f.Ledger.GetPendingStatus(100));
        Assert.Equal((UInt128)41, f.AccountOf(1).DebitsPosted);
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPending);
    }

    [Fact]
    public void Many_expiries_are_all_released_in_one_sweep()
    {
        var f = new LedgerFixture();
        f.CreatePlainAccounts(2);
        var holds = new Transfer[1000];
        for (var i = 0; i < holds.Length; i++)
        {
            holds[i] = NewTransfer((UInt128)(1000 + i), 1, 2, 1, TransferFlags.Pending);
            holds[i].TimeoutSeconds = (uint)(1 + (i % 3));
        }

        Assert.All(f.CreateTransfers(holds), r => Assert.Equal(CreateTransferResult.Created, r));
        Assert.Equal((UInt128)1000, f.AccountOf(1).DebitsPending);
        // Holds were created within the last 1000 ns before the clock: each second releases one timeout class.
        f.AdvanceSeconds(1);
        f.CreateTransfers();
        Assert.Equal((UInt128)666, f.AccountOf(1).DebitsPending);
        f.AdvanceSeconds(1);
        f.CreateTransfers();
        Assert.Equal((UInt128)333, f.AccountOf(1).DebitsPending);
        f.AdvanceSeconds(1);
        f.CreateTransfers();
        Assert.Equal(UInt128.Zero, f.AccountOf(1).DebitsPending);
        Assert.Equal(UInt128.Zero, f.AccountOf(2).CreditsPending);
    }

    [Fact]
    public void Closing_debit_closes_the_account_until_voided()
    {
        var f = WithPending(0, extra: TransferFlags.ClosingDebit);
        Assert.True((f.AccountOf(1).Flags & AccountFlags.Closed) != 0);
        Assert.Equal(CreateTransferResult.DebitAccountAlreadyClosed, f.CreateTransfer(NewTransfer(200, 1, 3, 1)));
        Assert.Equal(CreateTransferResult.CreditAccountAlreadyClosed, f.CreateTransfer(NewTransfer(201, 3, 1, 1)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Void(101, 100)));
        Assert.True((f.AccountOf(1).Flags & AccountFlags.Closed) == 0);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(202, 1, 3, 1)));
    }

    [Fact]
    public void Closing_credit_stays_closed_when_posted()
    {
        var f = WithPending(0, extra: TransferFlags.ClosingCredit);
        Assert.True((f.AccountOf(2).Flags & AccountFlags.Closed) != 0);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Post(101, 100, 0)));
        Assert.True((f.AccountOf(2).Flags & AccountFlags.Closed) != 0);
        Assert.Equal(CreateTransferResult.CreditAccountAlreadyClosed, f.CreateTransfer(NewTransfer(200, 3, 2, 1)));
    }

    [Fact]
    public void Expired_closing_transfer_reopens_the_account()
    {
        var f = WithPending(0, timeoutSeconds: 1, extra: TransferFlags.ClosingDebit);
        Assert.Equal(CreateTransferResult.DebitAccountAlreadyClosed, f.CreateTransfer(NewTransfer(200, 1, 3, 1)));
        f.AdvanceSeconds(1);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(201, 1, 3, 1)));
        Assert.Equal(PendingStatus.Expired, f.Ledger.GetPendingStatus(100));
    }

    [Fact]
    public void Other_pending_transfers_of_a_closed_account_cannot_be_resolved()
    {
        var f = WithPending(5);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(300, 1, 3, 0, TransferFlags.Pending | TransferFlags.ClosingDebit)));
        Assert.Equal(CreateTransferResult.DebitAccountAlreadyClosed, f.CreateTransfer(Post(101, 100, 0)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Void(102, 300)));
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(Post(103, 100, 0)));
    }

    [Fact]
    public void Closed_account_refuses_a_closing_transfer_too()
    {
        var f = WithPending(0, extra: TransferFlags.ClosingCredit);
        var closeCredit = NewTransfer(300, 1, 2, 0, TransferFlags.Pending | TransferFlags.ClosingCredit);
        Assert.Equal(CreateTransferResult.CreditAccountAlreadyClosed, f.CreateTransfer(closeCredit));
    }
}
