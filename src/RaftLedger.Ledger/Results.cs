namespace RaftLedger.Ledger;

// Result statuses use TigerBeetle's names (docs/reference/requests/create_*.md, release 0.16) and are
// declared in TigerBeetle's documented precedence order: when several errors apply to one event, the
// one declared first is returned. The API turns the names into snake_case (Created = "ok"/"created").
// The numeric values are ours (dense, in precedence order); they are part of the command/result
// encoding, so new statuses are only ever appended at their precedence position by renumbering in
// a versioned change, never silently.
//
// Left out on purpose: statuses for features we do not have (reserved_field: our Account has no
// reserved field; imported_* except imported_event_not_expected, which is how we refuse `imported`;
// amount_must_not_be_zero, deprecated since TigerBeetle 0.16, which allows zero amounts).

/// <summary>The outcome of one create_accounts event.</summary>
public enum CreateAccountResult : byte
{
    Created = 0,
    LinkedEventFailed,
    LinkedEventChainOpen,

    /// <summary>We do not support imported events: every event with flags.imported gets this.</summary>
    ImportedEventNotExpected,
    TimestampMustBeZero,
    ReservedFlag,
    IdMustNotBeZero,
    IdMustNotBeIntMax,
    ExistsWithDifferentFlags,
    ExistsWithDifferentUserData128,
    ExistsWithDifferentUserData64,
    ExistsWithDifferentUserData32,
    ExistsWithDifferentLedger,
    ExistsWithDifferentCode,
    Exists,
    FlagsAreMutuallyExclusive,
    DebitsPendingMustBeZero,
    DebitsPostedMustBeZero,
    CreditsPendingMustBeZero,
    CreditsPostedMustBeZero,
    LedgerMustNotBeZero,
    CodeMustNotBeZero,
}

/// <summary>The outcome of one create_transfers event.</summary>
public enum CreateTransferResult : byte
{
    Created = 0,
    LinkedEventFailed,
    LinkedEventChainOpen,

    /// <summary>We do not support imported events: every event with flags.imported gets this.</summary>
    ImportedEventNotExpected,
    TimestampMustBeZero,
    ReservedFlag,
    IdMustNotBeZero,
    IdMustNotBeIntMax,
    ExistsWithDifferentFlags,
    ExistsWithDifferentPendingId,
    ExistsWithDifferentTimeout,
    ExistsWithDifferentDebitAccountId,
    ExistsWithDifferentCreditAccountId,
    ExistsWithDifferentAmount,
    ExistsWithDifferentUserData128,
    ExistsWithDifferentUserData64,
    ExistsWithDifferentUserData32,
    ExistsWithDifferentLedger,
    ExistsWithDifferentCode,
    Exists,

    /// <summary>An earlier attempt with this id failed with a transient status (see <see cref="LedgerResults.IsTransient"/>).</summary>
    IdAlreadyFailed,
    FlagsAreMutuallyExclusive,
    DebitAccountIdMustNotBeZero,
    DebitAccountIdMustNotBeIntMax,
    CreditAccountIdMustNotBeZero,
    CreditAccountIdMustNotBeIntMax,
    AccountsMustBeDifferent,
    PendingIdMustBeZero,
    PendingIdMustNotBeZero,
    PendingIdMustNotBeIntMax,
    PendingIdMustBeDifferent,
    TimeoutReservedForPendingTransfer,
    ClosingTransferMustBePending,
    LedgerMustNotBeZero,
    CodeMustNotBeZero,
    DebitAccountNotFound,
    CreditAccountNotFound,
    AccountsMustHaveTheSameLedger,
    TransferMustHaveTheSameLedgerAsAccounts,
    PendingTransferNotFound,
    PendingTransferNotPending,
    PendingTransferHasDifferentDebitAccountId,
    PendingTransferHasDifferentCreditAccountId,
    PendingTransferHasDifferentLedger,
    PendingTransferHasDifferentCode,
    ExceedsPendingTransferAmount,
    PendingTransferHasDifferentAmount,
    PendingTransferAlreadyPosted,
    PendingTransferAlreadyVoided,
    PendingTransferExpired,
    DebitAccountAlreadyClosed,
    CreditAccountAlreadyClosed,
    OverflowsDebitsPending,
    OverflowsCreditsPending,
    OverflowsDebitsPosted,
    OverflowsCreditsPosted,
    OverflowsDebits,
    OverflowsCredits,
    OverflowsTimeout,
    ExceedsCredits,
    ExceedsDebits,

    /// <summary>
    /// Internal to the node, never answered to a client: the fast path found that this event (a post/void whose
    /// pending transfer turned out to be a cross-shard one) can only be run by the cross-shard driver. Nothing of its
    /// chain was applied and no id is burnt; the host hands the chain to the driver
    /// (<see cref="CrossShard.CrossShardDriver.MarkChainsRefusedOnFastPath"/>). Last, so the other values keep their numbers.
    /// </summary>
    NeedsCrossShardPath,
}

/// <summary>Facts about result statuses.</summary>
public static class LedgerResults
{
    /// <summary>
    /// Transient statuses depend on the state at the time of the attempt. TigerBeetle burns the id of
    /// a transfer that failed with one, so a retry can never succeed later (it gets id_already_failed).
    /// </summary>
    public static bool IsTransient(CreateTransferResult result) => result is
        CreateTransferResult.DebitAccountNotFound or
        CreateTransferResult.CreditAccountNotFound or
        CreateTransferResult.PendingTransferNotFound or
        CreateTransferResult.ExceedsCredits or
        CreateTransferResult.ExceedsDebits or
        CreateTransferResult.DebitAccountAlreadyClosed or
        CreateTransferResult.CreditAccountAlreadyClosed;
}
