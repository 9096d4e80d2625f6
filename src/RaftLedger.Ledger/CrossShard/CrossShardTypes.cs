namespace RaftLedger.Ledger.CrossShard;

/// <summary>Which sides of a transfer a leg holds on one shard (both when the two accounts share a shard).</summary>
[Flags]
public enum LegSides : byte
{
    None = 0,
    Debit = 1,
    Credit = 2,

    /// <summary>This shard is the event's id home (not the coordinator): it checks the id is free and claims it until finished.</summary>
    Id = 4,

    /// <summary>
    /// With Debit and/or Credit: the leg finishes a pending transfer (a post or void whose pending transfer's
    /// home coordinates): nothing is reserved at prepare (the pending amount already is), the transfer is the
    /// resolved post/void (the pending's accounts, ledger, code; the amount to post), and the pending amount is
    /// read from this shard's copy of the pending transfer.
    /// </summary>
    Resolve = 8,

    /// <summary>
    /// This shard is the home of the pending transfer a post/void of a cross-shard chain resolves, and not the chain's
    /// coordinator (a <em>status leg</em>): Prepare checks the pending transfer is still pending and holds its id
    /// (<see cref="CrossShardTables.LegHold"/>) so no other post, void or expiry of it decides meanwhile; Finish(commit)
    /// sets its status to posted or voided. Nothing is reserved.
    /// </summary>
    Status = 16,

    /// <summary>
    /// With <see cref="Id"/>, on a pending transfer's leg at its id home (not the coordinator): a later event of the same
    /// chain posts it, so Finish(commit) stores it with status posted and schedules no expiry (it never was pending for
    /// anyone outside the chain). See "A pending transfer posted or voided by its own chain" in docs/design/cross-shard.md.
    /// </summary>
    PostedInChain = 32,

    /// <summary>As <see cref="PostedInChain"/>, for a later void in the same chain: stored with status voided.</summary>
    VoidedInChain = 64,
}

/// <summary>
/// The events of one cross-shard transaction that one participant shard holds: event index in the
/// transaction, which sides live on that shard, and the transfer as the client sent it (a balancing
/// transfer's amount is the coordinator's clamped amount; <see cref="Guard"/> and <see cref="Requested"/> say how
/// it was clamped and what the client asked for).
/// </summary>
public readonly record struct Leg(ushort EventIndex, LegSides Sides, Transfer Transfer)
{
    /// <summary>For a balancing transfer: which of its sides must still have exactly the clamped amount as headroom.</summary>
    public BalancingGuard Guard { get; init; }

    /// <summary>With <see cref="BalancingGuard.Clamped"/>: the amount the client asked for (the upper bound; id checks compare it).</summary>
    public UInt128 Requested { get; init; }

    /// <summary>The transfer as the client sent it (the requested amount), for the id checks (exists*).</summary>
    public Transfer AsRequested => Transfer with { Amount = (Guard & BalancingGuard.Clamped) != 0 ? Requested : Transfer.Amount };
}

/// <summary>
/// How a balancing transfer's amount was clamped by its coordinator (docs/design/cross-shard.md, "Balancing and
/// closing across shards"): the amount is min(requested, headroom of each balancing side) computed on a snapshot of
/// the accounts; each balancing side checks, where it is applied, that its headroom is still at least the amount,
/// and the binding side that it is still exactly the amount, so the amount is the one the ledger would compute there.
/// </summary>
[Flags]
public enum BalancingGuard : byte
{
    None = 0,

    /// <summary>The debit side's headroom is the amount (balancing_debit clamped it).</summary>
    DebitBinds = 1,

    /// <summary>The credit side's headroom is the amount (balancing_credit clamped it).</summary>
    CreditBinds = 2,

    /// <summary>The transfer is balancing: its amount is clamped and the requested amount follows it in byte form.</summary>
    Clamped = 0x80,
}

/// <summary>
/// What a participant found when it checked one side of a leg, in the order it checks (the first
/// that applies). The coordinator turns the two sides' outcomes into TigerBeetle's status.
/// </summary>
public enum LegOutcome : byte
{
    Ok = 0,
    NotFound,

    /// <summary>The account's ledger differs from the transfer's (the report carries the account's ledger).</summary>
    LedgerMismatch,
    Closed,
    PendingOverflow,
    PostedOverflow,
    TotalOverflow,
    ExceedsLimit,

    /// <summary>Not checked: an earlier event of the same chain failed on this shard.</summary>
    NotEvaluated,

    /// <summary>A transfer with this event's id is already stored here: the transaction was finished before (a late duplicate prepare).</summary>
    AlreadyFinished,

    /// <summary>At the id's home: the id is taken (exists*, or id_already_failed); the report's ledger field carries the <see cref="CreateTransferResult"/>.</summary>
    IdTaken,

    /// <summary>At the id's home: another transaction in flight has claimed the id (the coordinator aborts; the client retries).</summary>
    IdBusy,

    /// <summary>
    /// A balancing side's headroom changed since the coordinator's snapshot (the clamped amount is stale): the
    /// coordinator aborts without statuses and starts the transaction afresh on a new snapshot (a few times, then 503).
    /// </summary>
    StaleClamp,

    /// <summary>
    /// A status leg found its pending transfer not pending any more (or missing): the report's ledger field carries the
    /// <see cref="CreateTransferResult"/> (pending_transfer_already_posted / already_voided / expired / not_found).
    /// </summary>
    PendingStatus,
}

/// <summary>One side's outcome, with the account's ledger when the outcome is <see cref="LegOutcome.LedgerMismatch"/>.</summary>
public readonly record struct SideReport(LegOutcome Outcome, uint Ledger)
{
    public static SideReport Ok => new(LegOutcome.Ok, 0);
}

/// <summary>A participant's answer for one leg.</summary>
public readonly record struct LegReport(ushort EventIndex, SideReport Debit, SideReport Credit);

/// <summary>The decision of a cross-shard transaction, as Decide's result byte and in messages.</summary>
public enum CrossShardDecision : byte
{
    Aborted = 0,
    Committed = 1,

    /// <summary>The coordinator has not decided yet (answer to a query only).</summary>
    Undecided = 2,

    /// <summary>Decide found the transaction already decided or tombstoned (it keeps that decision).</summary>
    AlreadyDecided = 3,

    /// <summary>Decide aborted without TigerBeetle statuses (timeout, or the home shard's own legs were gone).</summary>
    AbortedWithoutStatus = 4,
}

/// <summary>Side-table tags used by the cross-shard protocol (see <see cref="ILedgerStore.TryGetSideRecord"/>).</summary>
public static class CrossShardTables
{
    /// <summary>At the home shard: a decided transaction still being finished (decision, participants).</summary>
    public const byte Coordinator = 1;

    /// <summary>At a participant: the legs it holds prepared (home shard, prepared-at time, legs).</summary>
    public const byte Prepared = 2;

    /// <summary>At the home shard: a transaction aborted because nobody knew it (presumed abort); a later Decide loses.</summary>
    public const byte Tombstone = 3;

    /// <summary>At an event id's home shard (a participant): the id is claimed by a prepared transaction (key: event id, value: transaction id).</summary>
    public const byte IdClaim = 4;

    /// <summary>
    /// At a participant (or the home, for its own legs): per account, the amounts its prepared legs reserve
    /// (key: account id, value: debits reserved u128, credits reserved u128; deleted when both are zero).
    /// Written in the same write as the legs; clients see accounts and balance history without them.
    /// </summary>
    public const byte Reserved = 5;

    /// <summary>
    /// At a participant: the event ids of its prepared legs (key: event id, value: transaction id), so that a
    /// retry's new transaction does not reserve again while an earlier attempt's legs are still held (it gets
    /// IdBusy: 503, retry) and is not refused for lack of funds its own orphaned attempt holds.
    /// </summary>
    public const byte LegHold = 6;

    /// <summary>
    /// At a cross-shard pending transfer's id home (where its status lives): when it expires (key: pending
    /// transfer id, value: u64 expires-at in cluster ns). Written with the pending status, deleted when a
    /// post, void or expiry resolves it; the home's leader expires what is due (see CrossShardExpiry).
    /// </summary>
    public const byte Expiry = 7;

    /// <summary>
    /// At a participant: an account closed by a prepared (undecided) closing leg (key: account id, value: transaction
    /// id). The account's closed flag is set at Prepare so every later check sees it closed; reads clear the flag
    /// while this record exists; Finish(commit) deletes the record (the account stays closed), a release reopens it.
    /// </summary>
    public const byte Closing = 8;

    /// <summary>
    /// At the same home as <see cref="Expiry"/>, the same entries in time order, so that the leader reads only those
    /// due soon instead of every pending transfer still held (key: expires-at u64 in the high half, the low 64 bits of
    /// the pending transfer id in the low half; value: the ids sharing that key, 16 bytes each, almost always one).
    /// Written and deleted with the <see cref="Expiry"/> record (see <see cref="CrossShardExpiry"/>).
    /// </summary>
    public const byte ExpiryOrder = 9;

    /// <summary>The highest tag of a derived table (<see cref="IsDerived"/>).</summary>
    public const byte DerivedTableMax = Closing;

    /// <summary>
    /// True for the tables whose records a prepared transaction implies (<see cref="IdClaim"/>, <see cref="Reserved"/>,
    /// <see cref="LegHold"/>, <see cref="Closing"/>): they are written and removed in the same writes as its
    /// <see cref="Prepared"/> record, so a store may rebuild them from those (<c>LedgerStateMachine.DeriveLegRecords</c>)
    /// instead of storing them.
    /// </summary>
    public static bool IsDerived(byte table) => table is IdClaim or Reserved or LegHold or Closing;
}

/// <summary>Flags of a Decide item.</summary>
[Flags]
public enum DecideFlags : byte
{
    None = 0,

    /// <summary>Abort without statuses (a participant did not answer in time).</summary>
    ForceAbort = 1,

    /// <summary>The home shard holds legs of this transaction (prepared through its own Prepare command).</summary>
    HomeHasLegs = 2,

    /// <summary>
    /// The home shard's own sides were not prepared: Decide checks and posts them itself, in the same write as the
    /// decision (the item then carries, per event, the sides on the home and the other participants' reports).
    /// </summary>
    HomeInline = 4,

    /// <summary>
    /// A mask follows the events: bit i set when event i is a pending transfer with a timeout whose id is
    /// homed on another shard (its status and expiry are kept there, not here). A u64, or with
    /// <see cref="MaskBits"/> one bit per event in ⌈n / 8⌉ bytes.
    /// </summary>
    ExpiresElsewhere = 8,

    /// <summary>
    /// Per event a u8 <see cref="BalancingGuard"/> and the u128 requested amount follow (after the mask): the events
    /// carry the clamped amounts of balancing transfers; the id checks compare the requested ones.
    /// </summary>
    Clamped = 16,

    /// <summary>
    /// Per event a u64 follows (after the guards): 0, or for a post/void whose pending transfer lives on another shard
    /// (checked and held there by a status leg) that transfer's expires-at in cluster ns (u64 max: no timeout). Decide
    /// compares it with the event's timestamp and leaves the pending status to that shard's Finish.
    /// </summary>
    PendingElsewhere = 32,

    /// <summary>
    /// The <see cref="ExpiresElsewhere"/> mask is one bit per event (⌈n / 8⌉ bytes, bit i of byte i / 8) instead of a
    /// u64, so chains longer than 64 events fit. Every Decide written since carries it; entries written before (u64
    /// mask, at most 64 events) still read.
    /// </summary>
    MaskBits = 64,
}

/// <summary>One transaction's part of a Prepare command.</summary>
public sealed record PrepareItem(UInt128 TransactionId, int Home, Leg[] Legs);

/// <summary>
/// One transaction's part of a Decide command: its events in order, and per event the status the
/// participants' reports give (<see cref="CrossShardRules.NotPrepared"/> for events whose legs were not prepared).
/// </summary>
public sealed record DecideItem(UInt128 TransactionId, DecideFlags Flags, int[] Participants, Transfer[] Events, byte[] LegStatuses)
{
    /// <summary>With <see cref="DecideFlags.HomeInline"/>: per event, its sides on the home shard (Debit, Credit), which Decide checks.</summary>
    public LegSides[] HomeSides { get; init; } = [];

    /// <summary>With <see cref="DecideFlags.HomeInline"/>: per event, the other participants' reports of its sides (Ok for the home's sides).</summary>
    public LegReport[] Remote { get; init; } = [];

    /// <summary>With <see cref="DecideFlags.ExpiresElsewhere"/>: per event, true when its expiry is kept on its id's home, not here (else empty).</summary>
    public bool[] ExpiresElsewhere { get; init; } = [];

    /// <summary>With <see cref="DecideFlags.Clamped"/>: per event, how its amount was clamped (None for other events).</summary>
    public BalancingGuard[] Guards { get; init; } = [];

    /// <summary>With <see cref="DecideFlags.Clamped"/>: per event, the amount the client asked for.</summary>
    public UInt128[] Requested { get; init; } = [];

    /// <summary>With <see cref="DecideFlags.PendingElsewhere"/>: per event 0, or its pending transfer's expires-at (u64 max: none) when that lives on another shard.</summary>
    public ulong[] PendingExpiresAt { get; init; } = [];

    /// <summary>True when event <paramref name="i"/>'s expiry is kept on its id's home, not here.</summary>
    public bool ExpiresElsewhereAt(int i) => ExpiresElsewhere.Length != 0 && ExpiresElsewhere[i];

    /// <summary>True when event <paramref name="i"/> is a post/void whose pending transfer's status lives on another shard.</summary>
    public bool PendingElsewhereAt(int i) => PendingExpiresAt.Length != 0 && PendingExpiresAt[i] != 0;

    /// <summary>Event <paramref name="i"/> as the client sent it (the requested amount), for the id checks.</summary>
    public Transfer AsRequested(int i) => Guards.Length == 0 || (Guards[i] & BalancingGuard.Clamped) == 0
        ? Events[i]
        : Events[i] with { Amount = Requested[i] };
}

/// <summary>
/// One transaction's part of a Finish command. <paramref name="Copies"/> is how many timestamps the item reserves: at
/// least the participant's legs of it (a commit stores one copy per leg), or
/// <see cref="CrossShardLimits.ParticipantLegsMax"/> when the participant does not know them yet.
/// </summary>
public readonly record struct FinishItem(UInt128 TransactionId, bool Commit, int Copies);

/// <summary>A coordinator record (side table <see cref="CrossShardTables.Coordinator"/>).</summary>
public sealed record CoordinatorRecord(CrossShardDecision Decision, int[] Participants)
{
    /// <summary>The transaction's event ids: a request that reuses one waits until the transaction is finished.</summary>
    public UInt128[] EventIds { get; init; } = [];
}

/// <summary>A participant's prepared legs (side table <see cref="CrossShardTables.Prepared"/>).</summary>
public sealed record PreparedRecord(int Home, ulong PreparedAt, Leg[] Legs);
