using RaftLedger.Ledger;

namespace RaftLedger.Client;

/// <summary>Whether the cluster answered for an event, and if not, whether it may still have been applied.</summary>
public enum EventOutcome : byte
{
    /// <summary>The cluster answered: the event's status is final (see the status fields).</summary>
    Answered = 0,

    /// <summary>
    /// No answer before the deadline, but every attempt was refused before anything was proposed
    /// (no leader, no quorum, connection refused, or never sent): the event was not applied.
    /// Retrying later with the same id is safe.
    /// </summary>
    NotApplied = 1,

    /// <summary>
    /// No answer before the deadline after at least one attempt whose fate is unknown (timeout,
    /// connection lost mid-request, gRPC DEADLINE_EXCEEDED): the event may or may not have been
    /// applied. Retry later with the same id and the same fields to learn which; it is never
    /// applied twice.
    /// </summary>
    Unknown = 2,
}

/// <summary>The result of one transfer of a <see cref="LedgerClient.CreateTransfersAsync"/> call.</summary>
public readonly record struct TransferOutcome
{
    /// <summary>Answered, or why there is no answer.</summary>
    public EventOutcome Outcome { get; init; }

    /// <summary>
    /// The status when <see cref="Outcome"/> is <see cref="EventOutcome.Answered"/> and this client
    /// knows the status name; null otherwise (see <see cref="StatusName"/>).
    /// </summary>
    public CreateTransferResult? Status { get; init; }

    /// <summary>
    /// The status as the cluster named it (<c>created</c>, <c>exists</c>, <c>exceeds_credits</c>,
    /// or a status a newer cluster added); empty when not answered.
    /// </summary>
    public string StatusName { get; init; }

    /// <summary>The transfer's cluster timestamp when it was created by this call; 0 otherwise.</summary>
    public ulong Timestamp { get; init; }

    /// <summary>
    /// Why there is no answer (the last failure seen), when <see cref="Outcome"/> is not
    /// <see cref="EventOutcome.Answered"/>.
    /// </summary>
    public string? Problem { get; init; }

    /// <summary>True when the transfer was created by this call.</summary>
    public bool IsCreated => Outcome == EventOutcome.Answered && Status == CreateTransferResult.Created;

    /// <summary>
    /// True when the transfer is now in the ledger with exactly these fields: created by this call,
    /// or <c>exists</c> (an earlier attempt or call with the same id created it). After a retry this
    /// is the test for success: see the README, "Retries".
    /// </summary>
    public bool IsCreatedOrExists => Outcome == EventOutcome.Answered && Status is CreateTransferResult.Created or CreateTransferResult.Exists;
}

/// <summary>The result of one account of a <see cref="LedgerClient.CreateAccountsAsync"/> call.</summary>
public readonly record struct AccountOutcome
{
    /// <summary>Answered, or why there is no answer.</summary>
    public EventOutcome Outcome { get; init; }

    /// <summary>
    /// The status when <see cref="Outcome"/> is <see cref="EventOutcome.Answered"/> and this client
    /// knows the status name; null otherwise (see <see cref="StatusName"/>).
    /// </summary>
    public CreateAccountResult? Status { get; init; }

    /// <summary>The status as the cluster named it (<c>created</c>, <c>exists</c>, ...); empty when not answered.</summary>
    public string StatusName { get; init; }

    /// <summary>The account's cluster timestamp when it was created by this call; 0 otherwise.</summary>
    public ulong Timestamp { get; init; }

    /// <summary>Why there is no answer (the last failure seen), when not answered.</summary>
    public string? Problem { get; init; }

    /// <summary>True when the account was created by this call.</summary>
    public bool IsCreated => Outcome == EventOutcome.Answered && Status == CreateAccountResult.Created;

    /// <summary>True when the account now exists with these fields (created now, or <c>exists</c>).</summary>
    public bool IsCreatedOrExists => Outcome == EventOutcome.Answered && Status is CreateAccountResult.Created or CreateAccountResult.Exists;
}

/// <summary>One outcome per event of a create call, in the call's order.</summary>
/// <typeparam name="TOutcome"><see cref="TransferOutcome"/> or <see cref="AccountOutcome"/>.</typeparam>
public sealed class CreateReply<TOutcome>
    where TOutcome : struct
{
    internal CreateReply(TOutcome[] outcomes, bool isDefinite)
    {
        Outcomes = outcomes;
        IsDefinite = isDefinite;
    }

    /// <summary>One outcome per event, in the order the events were given.</summary>
    public IReadOnlyList<TOutcome> Outcomes { get; }

    /// <summary>
    /// True when the cluster answered for every event. False when the call's deadline passed first
    /// for some events: their outcome is <see cref="EventOutcome.NotApplied"/> or
    /// <see cref="EventOutcome.Unknown"/>.
    /// </summary>
    public bool IsDefinite { get; }

    /// <summary>The number of events.</summary>
    public int Count => Outcomes.Count;

    /// <summary>The outcome of event <paramref name="index"/>.</summary>
    public TOutcome this[int index] => Outcomes[index];
}
