using RaftLedger.Cli.Verify;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Tests.Verify;

/// <summary>
/// The checker on hand-built histories. Operator account 1 funds guarded account 2 with 10 (op 1, acknowledged
/// at t=1); op 2 pays 3 from account 2 to guarded account 3 (sent t=2, acknowledged t=3). Each test breaks one
/// thing in the history or the final state and asserts the checker names it.
/// </summary>
public sealed class CheckerTests
{
    private static readonly UInt128 Operator = 1, Alice = 2, Bob = 3;
    private static readonly Transfer Funding = Payment(100, Operator, Alice, 10, timestamp: 1000);
    private static readonly Transfer Pay = Payment(101, Alice, Bob, 3, timestamp: 2000);

    private static Transfer Payment(UInt128 id, UInt128 debit, UInt128 credit, ulong amount, TransferFlags flags = TransferFlags.None, ulong timestamp = 0) => new()
    {
        Id = id,
        DebitAccountId = debit,
        CreditAccountId = credit,
        Amount = amount,
        Ledger = 1,
        Code = 1,
        Flags = flags,
        Timestamp = timestamp,
    };

    private static Account Account(UInt128 id, bool guarded, ulong debits = 0, ulong credits = 0, ulong debitsPending = 0) => new()
    {
        Id = id,
        Ledger = 1,
        Code = 1,
        Flags = guarded ? AccountFlags.DebitsMustNotExceedCredits : AccountFlags.None,
        DebitsPosted = debits,
        CreditsPosted = credits,
        DebitsPending = debitsPending,
    };

    private static OpRecord Transfers(long id, long invoke, long complete, OpOutcome outcome, Transfer[] transfers, params string[] statuses) =>
        new() { Id = id, Client = 0, Kind = OpKind.Transfers, InvokeMicros = invoke, CompleteMicros = complete, Outcome = outcome, Transfers = transfers, Statuses = statuses, Node = 1 };

    private static OpRecord Read(long id, long invoke, long complete, Account seen) =>
        new() { Id = id, Client = 1, Kind = OpKind.ReadAccount, InvokeMicros = invoke, CompleteMicros = complete, Outcome = OpOutcome.Ok, AccountIds = [seen.Id], ReadAccounts = [seen], Node = 2 };

    private static List<OpRecord> History() =>
    [
        Transfers(1, 0, 1, OpOutcome.Ok, [Funding], "created"),
        Transfers(2, 2, 3, OpOutcome.Ok, [Pay], "created"),
    ];

    private static Account[] Accounts => [Account(Operator, false), Account(Alice, true), Account(Bob, true)];

    private static Account[] FinalAccounts => [Account(Operator, false, debits: 10), Account(Alice, true, debits: 3, credits: 10), Account(Bob, true, credits: 3)];

    private static CheckerInput Input(List<OpRecord> history, Transfer[]? final = null, Account[]? finalAccounts = null) => new()
    {
        Operations = history,
        Accounts = Accounts,
        FinalAccounts = finalAccounts ?? FinalAccounts,
        FinalTransfers = final ?? [Funding, Pay],
    };

    private static void AssertViolation(CheckerReport report, string check, string detailPart)
    {
        Assert.False(report.Ok);
        Assert.Contains(report.Violations, v => v.Check == check && v.Detail.Contains(detailPart, StringComparison.Ordinal));
    }

    [Fact]
    public void Consistent_history_has_no_violations()
    {
        var history = History();
        history.Add(Read(3, 4, 5, Account(Alice, true, debits: 3, credits: 10)));
        history.Add(Read(4, 2, 3, Account(Bob, true))); // Concurrent with the payment: may or may not see it.
        var report = Checker.Check(Input(history));
        Assert.True(report.Ok, string.Join("\n", report.Violations));
        Assert.Contains("single-account reads linearizable", report.Passed.Keys);
    }

    [Fact]
    public void Reads_are_checked_in_the_order_the_accounts_own_shard_applied_cross_shard_legs()
    {
        // X's record at its home says 1500, but Bob's shard posted X's credit leg (its Finish) at 2500, after Pay
        // (2000): a read of Bob between the two shows Pay alone, a prefix only in Bob's shard's order.
        var crossShard = Payment(102, Operator, Bob, 5, timestamp: 1500);
        var history = History();
        history.Add(Transfers(3, 2, 10, OpOutcome.Ok, [crossShard], "created"));
        history.Add(Read(4, 4, 5, Account(Bob, true, credits: 3)));
        var final = new Transfer[] { Funding, Pay, crossShard };
        Account[] finalAccounts = [Account(Operator, false, debits: 15), Account(Alice, true, debits: 3, credits: 10), Account(Bob, true, credits: 8)];

        AssertViolation(Checker.Check(Input(history, final, finalAccounts)), "single-account reads linearizable", "no prefix");
        var bobsShard = new Dictionary<UInt128, ulong> { [Pay.Id] = 2000, [crossShard.Id] = 2500 };
        var report = Checker.Check(Input(history, final, finalAccounts) with
        {
            AccountTimestamps = new Dictionary<UInt128, IReadOnlyDictionary<UInt128, ulong>> { [Bob] = bobsShard },
        });
        Assert.True(report.Ok, string.Join("\n", report.Violations));
    }

    [Fact]
    public void Acknowledged_transfer_missing_from_the_final_state_is_reported_lost()
    {
        var report = Checker.Check(Input(History(), final: [Funding], finalAccounts: [Account(Operator, false, debits: 10), Account(Alice, true, credits: 10), Account(Bob, true)]));
        AssertViolation(report, "acknowledged transfers present, failed absent", "lost: transfer 101");
    }

    [Fact]
    public void Transfer_applied_twice_is_reported_as_a_balance_mismatch()
    {
        var doubled = new[] { Account(Operator, false, debits: 10), Account(Alice, true, debits: 6, credits: 10), Account(Bob, true, credits: 6) };
        var report = Checker.Check(Input(History(), finalAccounts: doubled));
        AssertViolation(report, "balances equal the history's effects", $"account {Alice}");
        AssertViolation(report, "balances equal the history's effects", $"account {Bob}");
    }

    [Fact]
    public void Read_that_misses_a_transfer_acknowledged_before_it_began_is_a_stale_read()
    {
        var history = History();
        history.Add(Read(3, 4, 5, Account(Alice, true, credits: 10))); // Payment acknowledged at 3, read began at 4.
        var report = Checker.Check(Input(history));
        AssertViolation(report, "single-account reads linearizable", "stale read");
    }

    [Fact]
    public void Read_that_goes_back_in_time_after_an_earlier_read_is_reported()
    {
        var history = History();
        history[1] = Transfers(2, 2, 30, OpOutcome.Ok, [Pay], "created"); // Acknowledged late: reads during it may go either way ...
        history.Add(Read(3, 4, 5, Account(Bob, true, credits: 3)));
        history.Add(Read(4, 6, 7, Account(Bob, true))); // ... but not forward and then back.
        var report = Checker.Check(Input(history));
        AssertViolation(report, "single-account reads linearizable", "non-monotonic read");
    }

    [Fact]
    public void Read_that_shows_a_transfer_sent_after_it_completed_is_reported()
    {
        var history = History();
        history.Add(Read(3, 0, 1, Account(Bob, true, credits: 3))); // The payment was first sent at 2.
        var report = Checker.Check(Input(history));
        AssertViolation(report, "single-account reads linearizable", "read from the future");
    }

    [Fact]
    public void Read_showing_an_overdrawn_guarded_account_is_reported()
    {
        var history = History();
        history.Add(Read(3, 4, 5, Account(Alice, true, debits: 11, credits: 10)));
        var report = Checker.Check(Input(history));
        AssertViolation(report, "no guarded account overdrawn in any read", "overdraft");
        AssertViolation(report, "single-account reads linearizable", "no prefix");
    }

    [Fact]
    public void Transfer_answered_with_a_failure_but_present_is_reported()
    {
        var history = History();
        history[1] = Transfers(2, 2, 3, OpOutcome.Ok, [Pay], "exceeds_credits");
        var report = Checker.Check(Input(history));
        AssertViolation(report, "acknowledged transfers present, failed absent", "failed transfer applied");
    }

    [Fact]
    public void Unknown_transfer_may_be_present_or_absent()
    {
        var history = History();
        history[1] = Transfers(2, 2, 0, OpOutcome.Unknown, [Pay]);
        Assert.True(Checker.Check(Input(history)).Ok);
        var absent = Checker.Check(Input(history, final: [Funding], finalAccounts: [Account(Operator, false, debits: 10), Account(Alice, true, credits: 10), Account(Bob, true)]));
        Assert.True(absent.Ok, string.Join("\n", absent.Violations));
    }

    [Fact]
    public void Retried_linked_chain_answered_exists_then_linked_event_failed_counts_as_acknowledged()
    {
        var first = Payment(102, Alice, Bob, 1, TransferFlags.Linked, timestamp: 3000);
        var second = Payment(103, Bob, Alice, 1, timestamp: 3001);
        var history = History();
        history.Add(Transfers(3, 4, 5, OpOutcome.Ok, [first, second], "exists", "linked_event_failed"));
        var accounts = new[] { Account(Operator, false, debits: 10), Account(Alice, true, debits: 4, credits: 11), Account(Bob, true, debits: 1, credits: 4) };
        var present = Checker.Check(Input(history, final: [Funding, Pay, first, second], finalAccounts: accounts));
        Assert.True(present.Ok, string.Join("\n", present.Violations));

        var torn = Checker.Check(Input(history, final: [Funding, Pay, first], finalAccounts: accounts));
        AssertViolation(torn, "linked chains all-or-nothing", "torn chain");
        AssertViolation(torn, "acknowledged transfers present, failed absent", "lost: transfer 103");
    }

    [Fact]
    public void Two_phase_transfers_replay_into_balances()
    {
        var pending = Payment(104, Alice, Bob, 4, TransferFlags.Pending, timestamp: 4000);
        var post = Payment(105, Alice, Bob, 2, TransferFlags.PostPendingTransfer, timestamp: 5000);
        post.PendingId = 104;
        var history = History();
        history.Add(Transfers(3, 4, 5, OpOutcome.Ok, [pending], "created"));
        history.Add(Read(4, 6, 7, Account(Alice, true, debits: 3, credits: 10, debitsPending: 4)));
        history.Add(Transfers(5, 8, 9, OpOutcome.Ok, [post], "created"));
        var final = new[] { Account(Operator, false, debits: 10), Account(Alice, true, debits: 5, credits: 10), Account(Bob, true, credits: 5) };
        var report = Checker.Check(Input(history, final: [Funding, Pay, pending, post], finalAccounts: final));
        Assert.True(report.Ok, string.Join("\n", report.Violations));
    }

    [Fact]
    public void Balancing_transfer_stored_with_its_clamped_amount_is_consistent_and_one_above_the_sent_amount_is_reported()
    {
        // Alice has 7 left; "pay up to 9" is clamped to 7 by the ledger and stored so.
        var sent = Payment(106, Alice, Bob, 9, TransferFlags.BalancingDebit, timestamp: 6000);
        var history = History();
        history.Add(Transfers(3, 4, 5, OpOutcome.Ok, [sent], "created"));
        var clamped = sent with { Amount = 7 };
        var final = new[] { Account(Operator, false, debits: 10), Account(Alice, true, debits: 10, credits: 10), Account(Bob, true, credits: 10) };
        var report = Checker.Check(Input(history, final: [Funding, Pay, clamped], finalAccounts: final));
        Assert.True(report.Ok, string.Join("\n", report.Violations));

        var inflated = sent with { Amount = 12 };
        var overdrawn = new[] { Account(Operator, false, debits: 10), Account(Alice, true, debits: 15, credits: 10), Account(Bob, true, credits: 15) };
        AssertViolation(Checker.Check(Input(history, final: [Funding, Pay, inflated], finalAccounts: overdrawn)),
            "acknowledged transfers present, failed absent", "different amount (12, sent 9)");
    }

    [Fact]
    public void Replicas_with_different_fingerprints_at_the_same_index_are_reported()
    {
        var input = Input(History()) with
        {
            Replicas = [new ReplicaFinal(0, 1, 7, 0xAA), new ReplicaFinal(0, 2, 7, 0xAA), new ReplicaFinal(0, 3, 7, 0xBB)],
            Replication = 3,
        };
        AssertViolation(Checker.Check(input), "replicas identical per shard", "different ledger fingerprints");
    }

    [Fact]
    public void Money_created_from_nothing_is_reported()
    {
        var unbalanced = new[] { Account(Operator, false, debits: 10), Account(Alice, true, debits: 3, credits: 11), Account(Bob, true, credits: 3) };
        AssertViolation(Checker.Check(Input(History(), finalAccounts: unbalanced)), "money conserved per ledger", "ledger 1");
    }

    // Timed pending transfers: Alice reserves 4 for Bob with a 1 s timeout, sent at t=4 µs (cluster time 4000 ns), so
    // it expires at 1_000_004_000 ns and no expiry can be seen before about t=1 s on the history's clock.
    private const ulong TimedPendingExpiresAtNs = 4000 + 1_000_000_000;
    private const long AfterTimeoutMicros = 2_000_000;

    private static Transfer TimedPending() => Payment(104, Alice, Bob, 4, TransferFlags.Pending, timestamp: 4000) with { TimeoutSeconds = 1 };

    private static Transfer Resolution(UInt128 id, TransferFlags flags, ulong amount, ulong timestamp) =>
        Payment(id, Alice, Bob, amount, flags, timestamp) with { PendingId = 104 };

    private static Account[] AfterPayAnd(ulong alicePosted = 3, ulong alicePending = 0, ulong bobPending = 0) =>
    [
        Account(Operator, false, debits: 10),
        Account(Alice, true, debits: alicePosted, credits: 10, debitsPending: alicePending),
        Account(Bob, true, credits: 3 + (alicePosted - 3)) with { CreditsPending = bobPending },
    ];

    private static List<OpRecord> TimedHistory()
    {
        var history = History();
        history.Add(Transfers(3, 4, 5, OpOutcome.Ok, [TimedPending()], "created"));
        return history;
    }

    [Fact]
    public void Timed_pending_left_to_expire_is_consistent_when_released_after_its_timeout()
    {
        var history = TimedHistory();
        history.Add(Read(4, 6, 7, Account(Alice, true, debits: 3, credits: 10, debitsPending: 4))); // Before the timeout: reserved.
        history.Add(Read(5, AfterTimeoutMicros, AfterTimeoutMicros + 1, Account(Alice, true, debits: 3, credits: 10))); // Released.
        var lateVoid = Resolution(105, TransferFlags.VoidPendingTransfer, 4, 0);
        history.Add(Transfers(6, AfterTimeoutMicros + 2, AfterTimeoutMicros + 3, OpOutcome.Ok, [lateVoid], "pending_transfer_expired"));
        var report = Checker.Check(Input(history, final: [Funding, Pay, TimedPending()], finalAccounts: AfterPayAnd()) with { ShardCount = 1 });
        Assert.True(report.Ok, string.Join("\n", report.Violations));
        Assert.Equal(new TimedPendingCounts(Created: 1, ResolvedBeforeExpiry: 0, Expired: 1, AnsweredExpired: 1), report.TimedPendings);
    }

    [Fact]
    public void Timed_pending_posted_before_its_expiry_is_consistent()
    {
        var history = TimedHistory();
        var post = Resolution(105, TransferFlags.PostPendingTransfer, 2, TimedPendingExpiresAtNs - 1);
        history.Add(Transfers(4, 8, 9, OpOutcome.Ok, [post], "created"));
        var report = Checker.Check(Input(history, final: [Funding, Pay, TimedPending(), post], finalAccounts: AfterPayAnd(alicePosted: 5)));
        Assert.True(report.Ok, string.Join("\n", report.Violations));
        Assert.Equal(new TimedPendingCounts(Created: 1, ResolvedBeforeExpiry: 1, Expired: 0, AnsweredExpired: 0), report.TimedPendings);
    }

    [Fact]
    public void Post_created_at_or_after_its_pending_transfers_expiry_is_reported()
    {
        var history = TimedHistory();
        var post = Resolution(105, TransferFlags.PostPendingTransfer, 2, TimedPendingExpiresAtNs);
        history.Add(Transfers(4, AfterTimeoutMicros, AfterTimeoutMicros + 1, OpOutcome.Ok, [post], "created"));
        var report = Checker.Check(Input(history, final: [Funding, Pay, TimedPending(), post], finalAccounts: AfterPayAnd(alicePosted: 5)));
        AssertViolation(report, "posts, voids and expiries of pending transfers consistent", "resolved after expiry: post 105");
    }

    [Fact]
    public void Pending_transfer_posted_and_answered_expired_is_reported_as_resolved_twice()
    {
        var history = TimedHistory();
        var post = Resolution(105, TransferFlags.PostPendingTransfer, 2, TimedPendingExpiresAtNs - 1);
        var lateVoid = Resolution(106, TransferFlags.VoidPendingTransfer, 4, 0);
        history.Add(Transfers(4, 8, 9, OpOutcome.Ok, [post], "created"));
        history.Add(Transfers(5, AfterTimeoutMicros, AfterTimeoutMicros + 1, OpOutcome.Ok, [lateVoid], "pending_transfer_expired"));
        var report = Checker.Check(Input(history, final: [Funding, Pay, TimedPending(), post], finalAccounts: AfterPayAnd(alicePosted: 5)));
        AssertViolation(report, "posts, voids and expiries of pending transfers consistent", "resolved twice: void 106");
    }

    [Fact]
    public void Expired_answer_for_a_pending_transfer_without_timeout_or_before_its_timeout_is_reported()
    {
        var untimed = Payment(104, Alice, Bob, 4, TransferFlags.Pending, timestamp: 4000);
        var history = History();
        history.Add(Transfers(3, 4, 5, OpOutcome.Ok, [untimed], "created"));
        history.Add(Transfers(4, AfterTimeoutMicros, AfterTimeoutMicros + 1, OpOutcome.Ok, [Resolution(105, TransferFlags.PostPendingTransfer, 2, 0)], "pending_transfer_expired"));
        var report = Checker.Check(Input(history, final: [Funding, Pay, untimed], finalAccounts: AfterPayAnd(alicePending: 4, bobPending: 4)));
        AssertViolation(report, "posts, voids and expiries of pending transfers consistent", "has no timeout");

        var early = TimedHistory();
        early.Add(Transfers(4, 8, 9, OpOutcome.Ok, [Resolution(105, TransferFlags.PostPendingTransfer, 2, 0)], "pending_transfer_expired"));
        AssertViolation(Checker.Check(Input(early, final: [Funding, Pay, TimedPending()], finalAccounts: AfterPayAnd())),
            "posts, voids and expiries of pending transfers consistent", "before the 1 s timeout");
    }

    [Fact]
    public void Timed_pending_still_reserved_at_the_end_is_reported_by_id()
    {
        var report = Checker.Check(Input(TimedHistory(), final: [Funding, Pay, TimedPending()], finalAccounts: AfterPayAnd(alicePending: 4, bobPending: 4)));
        AssertViolation(report, "no timed pending transfer reserved after its timeout", $"account {Alice} ends with debits pending 4");
        AssertViolation(report, "no timed pending transfer reserved after its timeout", "not proven released by a later transfer (the account's last transfer is stamped 4000): 104 (debit 4, expires at 1000004000)");
    }

    [Fact]
    public void Read_showing_a_timed_pending_released_before_its_timeout_is_reported()
    {
        var history = TimedHistory();
        history.Add(Read(4, 6, 7, Account(Alice, true, debits: 3, credits: 10)));
        var report = Checker.Check(Input(history, final: [Funding, Pay, TimedPending()], finalAccounts: AfterPayAnd()));
        AssertViolation(report, "single-account reads linearizable", "stale read");
    }

    [Fact]
    public void Read_showing_a_timed_pending_reserved_after_its_shard_swept_it_is_reported()
    {
        // A later payment on Alice's shard, stamped past the expiry and acknowledged before the read: its command swept
        // the pending transfer first (all on one shard), so the read must not show it reserved.
        var later = Payment(107, Alice, Bob, 1, timestamp: TimedPendingExpiresAtNs + ExpiryModel.CommandTimestampSpanNsMax);
        var history = TimedHistory();
        history.Add(Transfers(4, AfterTimeoutMicros, AfterTimeoutMicros + 1, OpOutcome.Ok, [later], "created"));
        history.Add(Read(5, AfterTimeoutMicros + 2, AfterTimeoutMicros + 3, Account(Alice, true, debits: 4, credits: 10, debitsPending: 4)));
        var final = new[] { Funding, Pay, TimedPending(), later };
        var input = Input(history, final, AfterPayAnd(alicePosted: 4)) with { ShardCount = 1 };
        AssertViolation(Checker.Check(input), "single-account reads linearizable", "no prefix");

        // With the shard count unknown, nothing bounds the release from above during the run.
        Assert.True(Checker.Check(input with { ShardCount = 0 }).Ok);
    }
}
