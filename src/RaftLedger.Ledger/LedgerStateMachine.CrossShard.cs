using RaftLedger.Common;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger;

// The cross-shard commands (docs/design/cross-shard.md): applied like every command, by every
// replica in log order, so that prepared legs, decisions and tombstones are replicated state.
public sealed partial class LedgerStateMachine
{
    /// <summary>
    /// The status a cross-shard event gets from its home shard's own state and its fields alone:
    /// TigerBeetle's checks up to (not including) the account checks (a post/void gets
    /// <see cref="CreateTransferResult.NeedsCrossShardPath"/> here: see <see cref="CrossShardPostOrVoidStatus"/>).
    /// Reads committed state; not to be called while a command is being applied.
    /// </summary>
    public CreateTransferResult CrossShardLocalStatus(in Transfer t) => LocalStatus(t, pendingHere: false);

    /// <summary>
    /// A post/void whose pending transfer's home is this shard: every check the ledger makes before the
    /// accounts' closed flags (request fields, exists, pending transfer found, pending, same fields, amount,
    /// status), and the resolved transfer (the pending's accounts, ledger and code, the amount to post) that
    /// the participants finish. Reads committed state; not to be called while a command is being applied.
    /// </summary>
    public CreateTransferResult CrossShardPostOrVoidStatus(in Transfer t, out Transfer resolved)
    {
        var status = LocalStatus(t, pendingHere: true);
        resolved = t;
        return status == CreateTransferResult.Created ? ResolvePostOrVoid(t, store.LastTimestamp + 1, out resolved, out _) : status;
    }

    private CreateTransferResult LocalStatus(in Transfer t, bool pendingHere, ulong timestamp = 0)
    {
        var header = ValidateTransferHeader(t);
        if (header != CreateTransferResult.Created)
        {
            return header;
        }

        if (batch.TryGetTransfer(t.Id, out var existing))
        {
            return TransferExists(t, existing);
        }

        if (batch.IsTransientFailure(t.Id))
        {
            return CreateTransferResult.IdAlreadyFailed;
        }

        if (FlagsAreMutuallyExclusive(t.Flags))
        {
            return CreateTransferResult.FlagsAreMutuallyExclusive;
        }

        if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0)
        {
            // Only the pending transfer's home can check it (the driver coordinates it there).
            return pendingHere ? ResolvePostOrVoid(t, timestamp == 0 ? store.LastTimestamp + 1 : timestamp, out _, out _) : CreateTransferResult.NeedsCrossShardPath;
        }

        var fields = ValidateNewTransferFields(t);
        if (fields != CreateTransferResult.Created)
        {
            return fields;
        }

        // Balancing transfers are clamped by the coordinator on a snapshot and guarded where applied; closing ones close
        // their accounts at Prepare (see "Balancing and closing across shards" in docs/design/cross-shard.md).
        // A pending transfer with a timeout is expired by its id home's leader (CrossShardExpiry).
        return CreateTransferResult.Created;
    }

    /// <summary>
    /// The post/void checks against the pending transfer <paramref name="p"/> stored here, without the accounts'
    /// (the local path adds those); <paramref name="resolved"/> takes the pending transfer's accounts, ledger, code
    /// and the amount that will be posted or released.
    /// </summary>
    private CreateTransferResult ResolvePostOrVoid(in Transfer t, ulong timestamp, out Transfer resolved, out Transfer p)
    {
        resolved = t;
        var request = ValidatePostOrVoidRequest(t);
        if (request != CreateTransferResult.Created)
        {
            p = default;
            return request;
        }

        if (!batch.TryGetTransfer(t.PendingId, out p))
        {
            return CreateTransferResult.PendingTransferNotFound;
        }

        var against = ValidateAgainstPending(t, p, timestamp, out var amount);
        if (against != CreateTransferResult.Created)
        {
            return against;
        }

        resolved.DebitAccountId = p.DebitAccountId;
        resolved.CreditAccountId = p.CreditAccountId;
        resolved.Ledger = p.Ledger;
        resolved.Code = p.Code;
        resolved.Amount = amount;
        return CreateTransferResult.Created;
    }

    private LedgerApplyResult ApplyCrossShard(LedgerOperation operation, ReadOnlySpan<byte> command, int timestamps, ulong batchTimestamp, Span<byte> results, ulong appliedIndex)
    {
        Invariant.Check(timestamps > 0 && batchTimestamp >= (ulong)timestamps, "the leader stamps every command");
        var firstTimestamp = batchTimestamp - (ulong)timestamps + 1;
        Invariant.Check(firstTimestamp > store.LastTimestamp, "the leader must give each command a timestamp of at least last timestamp + its count");
        var body = command[LedgerLimits.CommandHeaderBytes..];
        batch.Reset();
        ExpirePendingTransfers(firstTimestamp);
        var written = operation switch
        {
            LedgerOperation.CrossShardPrepare => ApplyPrepare(body, batchTimestamp, results),
            LedgerOperation.CrossShardDecide => ApplyDecide(body, firstTimestamp, results),
            LedgerOperation.CrossShardFinish => ApplyFinish(body, firstTimestamp, timestamps, results),
            LedgerOperation.CrossShardRetire => ApplyRetire(body, results),
            _ => ApplyAbortIfUndecided(body, results),
        };
        batch.Commit(batchTimestamp, appliedIndex, hints: false);
        return new LedgerApplyResult(operation, written);
    }

    // A cross-shard command's transfer-id lookups (duplicate and burnt-id checks, a post's or void's pending transfer)
    // are read in one MultiGet, as a local batch's are: one point read each was ~5 % of node CPU at 100 % cross-shard
    // transfers, since ids coming from several homes do not ascend (docs/PERFORMANCE.md, "Twenty-ninth session").
    private int NoteLookedUpIds(in Transfer t, int count)
    {
        if (count + 2 > lookupIdScratch.Length)
        {
            return count; // Only a hint: the rest are read one by one.
        }

        lookupIdScratch[count++] = t.Id;
        if (t.PendingId != UInt128.Zero)
        {
            lookupIdScratch[count++] = t.PendingId;
        }

        return count;
    }

    private void PrefetchLookedUpIds(int count)
    {
        if (count > 0)
        {
            store.PrefetchTransfers(lookupIdScratch.AsSpan(0, count));
        }
    }

    private static void CheckResultRoom(int needed, Span<byte> results)
    {
        if (needed > results.Length)
        {
            throw new ArgumentException($"The command writes {needed} result bytes but results has room for {results.Length}.", nameof(results));
        }
    }

    private int ApplyPrepare(ReadOnlySpan<byte> body, ulong preparedAt, Span<byte> results)
    {
        var items = DecodePrepare(body);
        var needed = CrossShardCommand.PrepareResultBytes(items);
        CheckResultRoom(needed, results);
        var lookups = 0;
        foreach (var item in items)
        {
            foreach (var leg in item.Legs)
            {
                lookups = NoteLookedUpIds(leg.Transfer, lookups);
            }
        }

        PrefetchLookedUpIds(lookups);
        var position = 0;
        foreach (var item in items)
        {
            var reports = results.Slice(position + 1, item.Legs.Length * CrossShardCommand.LegReportBytes);
            results[position] = PrepareLegs(item, preparedAt, reports) ? (byte)1 : (byte)0;
            position += 1 + reports.Length;
        }

        Invariant.Check(position == needed);
        return needed;
    }

    private static List<PrepareItem> DecodePrepare(ReadOnlySpan<byte> body)
    {
        var reader = new ByteReader(body);
        var count = reader.Count(ushort.MaxValue);
        var items = new List<PrepareItem>(count);
        for (var i = 0; i < count; i++)
        {
            var id = reader.U128();
            var home = reader.U16();
            var legs = new Leg[reader.Count(CrossShardLimits.ParticipantLegsMax)];
            for (var k = 0; k < legs.Length; k++)
            {
                legs[k] = reader.Leg();
            }

            items.Add(new PrepareItem(id, home, legs));
        }

        reader.End();
        return items;
    }

    /// <summary>
    /// Checks and reserves one transaction's legs on this shard, in event order; all or nothing.
    /// Within a transaction (a linked chain) each leg sees the earlier legs as if they had posted.
    /// </summary>
    private bool PrepareLegs(PrepareItem item, ulong preparedAt, Span<byte> reports)
    {
        reports.Clear();
        if (batch.TryGetSideRecord(CrossShardTables.Prepared, item.TransactionId, out _))
        {
            return true; // A duplicate: already prepared, every report Ok.
        }

        for (var k = 0; k < item.Legs.Length; k++)
        {
            // A leg that holds the id checks it in event order below (exists* there is the id's answer).
            if ((item.Legs[k].Sides & LegSides.Id) == 0 && IsFinishedHere(item.Legs[k].Transfer))
            {
                WriteReport(reports, k, new SideReport(LegOutcome.AlreadyFinished, 0), new SideReport(LegOutcome.AlreadyFinished, 0));
                MarkNotEvaluated(reports, k + 1, item.Legs.Length);
                return false;
            }

            if (HeldByAnother(item.Legs[k].Transfer.Id, item.TransactionId) ||
                ((item.Legs[k].Sides & LegSides.Status) != 0 && HeldByAnother(item.Legs[k].Transfer.PendingId, item.TransactionId)))
            {
                // (A status leg: another transaction's status leg, or the pending transfer's expiry, holds it.)
                // An earlier attempt of this event still holds legs here (its coordinator died): retry later.
                WriteReport(reports, k, new SideReport(LegOutcome.IdBusy, 0), new SideReport(LegOutcome.IdBusy, 0));
                MarkNotEvaluated(reports, k + 1, item.Legs.Length);
                return false;
            }
        }

        batch.Savepoint();
        var chain = new CrossShardLegIndex(item.Legs);
        for (var k = 0; k < item.Legs.Length; k++)
        {
            var leg = item.Legs[k];
            var id = (leg.Sides & LegSides.Id) != 0 ? IdReport(leg.AsRequested, item.TransactionId) : SideReport.Ok;
            if (id.Outcome != LegOutcome.Ok)
            {
                WriteReport(reports, k, id, id);
                MarkNotEvaluated(reports, k + 1, item.Legs.Length);
                batch.Rollback();
                return false;
            }

            var pending = (leg.Sides & LegSides.Status) != 0 ? StatusReport(leg.Transfer) : SideReport.Ok;
            if (pending.Outcome != LegOutcome.Ok)
            {
                // The pending transfer is no longer pending here: that is the post/void's status (before its accounts').
                WriteReport(reports, k, pending, pending);
                MarkNotEvaluated(reports, k + 1, item.Legs.Length);
                batch.Rollback();
                return false;
            }

            var debit = (leg.Sides & LegSides.Debit) != 0 ? CheckSide(chain, k, BalanceSide.Debit) : SideReport.Ok;
            var credit = (leg.Sides & LegSides.Credit) != 0 ? CheckSide(chain, k, BalanceSide.Credit) : SideReport.Ok;
            WriteReport(reports, k, debit, credit);
            if (debit.Outcome != LegOutcome.Ok || credit.Outcome != LegOutcome.Ok)
            {
                MarkNotEvaluated(reports, k + 1, item.Legs.Length);
                batch.Rollback();
                return false;
            }

            ChangeSides(leg, BalanceChange.Reserve, 0);
        }

        batch.Release();
        foreach (var leg in item.Legs)
        {
            AdjustLegReserved(leg, add: true);
            HoldClosedAccounts(leg, item.TransactionId);
        }

        batch.SetSideRecord(CrossShardTables.Prepared, item.TransactionId, CrossShardCommand.WritePreparedRecord(item.Home, preparedAt, item.Legs));
        SetIdClaims(item.Legs, item.TransactionId, claim: true);
        SetLegHolds(item.Legs, item.TransactionId, hold: true);
        return true;
    }

    // The event is stored here: a late duplicate Prepare of a finished transaction. An expiry's event id is its
    // pending transfer's: it is finished once that is expired here.
    private bool IsFinishedHere(in Transfer t) => CrossShardExpiry.IsExpiry(t)
        ? batch.GetPendingStatus(t.PendingId) == PendingStatus.Expired
        : batch.TryGetTransfer(t.Id, out _);

    private bool HeldByAnother(UInt128 eventId, UInt128 transactionId) =>
        batch.TryGetSideRecord(CrossShardTables.LegHold, eventId, out var holder) &&
        System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(holder) != transactionId;

    /// <summary>
    /// Records (prepare) or removes (finish, release) which transaction holds legs of each event here. Each hold is
    /// this transaction's without reading it back: Prepare checked that no other transaction holds any of the events
    /// before it wrote the Prepared record and these holds in one write, and refuses every other transaction while
    /// they exist; they are removed in the write that deletes that record.
    /// </summary>
    private void SetLegHolds(Leg[] legs, UInt128 transactionId, bool hold)
    {
        foreach (var leg in legs)
        {
            byte[]? value = null;
            if (hold)
            {
                value = new byte[16];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt128LittleEndian(value, transactionId);
            }

            batch.SetSideRecord(CrossShardTables.LegHold, leg.Transfer.Id, value);
            if ((leg.Sides & LegSides.Status) != 0)
            {
                // A status leg holds its pending transfer too: no other post, void or expiry of it decides meanwhile.
                batch.SetSideRecord(CrossShardTables.LegHold, leg.Transfer.PendingId, value);
            }
        }
    }

    /// <summary>
    /// At the id's home: whether the event's id is free for this transaction. Taken: the status a local
    /// transfer with this id would get (exists*, id_already_failed). Busy: claimed by another prepared transaction.
    /// </summary>
    private SideReport IdReport(in Transfer t, UInt128 transactionId)
    {
        if (batch.TryGetTransfer(t.Id, out var existing))
        {
            return new SideReport(LegOutcome.IdTaken, (uint)TransferExists(t, existing));
        }

        if (batch.IsTransientFailure(t.Id))
        {
            return new SideReport(LegOutcome.IdTaken, (uint)CreateTransferResult.IdAlreadyFailed);
        }

        if (batch.TryGetSideRecord(CrossShardTables.IdClaim, t.Id, out var claim) &&
            System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(claim) != transactionId)
        {
            return new SideReport(LegOutcome.IdBusy, 0);
        }

        return SideReport.Ok;
    }

    /// <summary>Claims (prepare) or frees (finish, release) the ids of the legs that hold their event's id here.</summary>
    private void SetIdClaims(Leg[] legs, UInt128 transactionId, bool claim)
    {
        foreach (var leg in legs)
        {
            if ((leg.Sides & LegSides.Id) == 0)
            {
                continue;
            }

            byte[]? value = null;
            if (claim)
            {
                value = new byte[16];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt128LittleEndian(value, transactionId);
            }

            batch.SetSideRecord(CrossShardTables.IdClaim, leg.Transfer.Id, value);
        }
    }

    private SideReport CheckSide(CrossShardLegIndex chain, int index, BalanceSide side)
    {
        chain.FoldTo(index);
        var legs = chain.Legs;
        var t = legs[index].Transfer;
        var accountId = side == BalanceSide.Debit ? t.DebitAccountId : t.CreditAccountId;
        var slot = batch.LoadAccount(accountId);
        if ((legs[index].Sides & LegSides.Resolve) != 0)
        {
            return CheckResolveSide(chain, index, slot, side);
        }

        if (!batch.Account(slot).Exists)
        {
            return new SideReport(LegOutcome.NotFound, 0);
        }

        // The view: this account with the transaction's earlier legs posted instead of reserved.
        var view = batch.Account(slot).Account;
        if (!chain.ResolvesOn(accountId))
        {
            // Only plain and pending legs before it here: the plain ones' amounts move from pending to posted (as one
            // sum per side: the same result as leg by leg, no step between them looks at the view).
            PostInView(ref view, BalanceSide.Debit, chain.PostedInView(accountId, BalanceSide.Debit));
            PostInView(ref view, BalanceSide.Credit, chain.PostedInView(accountId, BalanceSide.Credit));
            return CheckViewSide(t, view, slot, side, legs[index].Guard);
        }

        // An earlier post/void on this account: its effect on the view depends on the view at its turn, so this
        // account's earlier legs are replayed in order (only chains that post or void on the account pay for it).
        foreach (var j in chain.LegsOn(accountId))
        {
            ref readonly var earlier = ref legs[j];
            foreach (var earlierSide in SidesOf(earlier.Sides))
            {
                var earlierAccount = earlierSide == BalanceSide.Debit ? earlier.Transfer.DebitAccountId : earlier.Transfer.CreditAccountId;
                if (earlierAccount == accountId && (earlier.Sides & LegSides.Resolve) != 0)
                {
                    ResolveInView(ref view, earlierSide, chain, j); // An earlier post/void: it reserved nothing itself.
                    continue;
                }

                // An earlier pending leg stays reserved, as it does on the account itself.
                if (earlierAccount == accountId && (earlier.Transfer.Flags & TransferFlags.Pending) == 0)
                {
                    PostInView(ref view, earlierSide, earlier.Transfer.Amount);
                }
            }
        }

        return CheckViewSide(t, view, slot, side, legs[index].Guard);
    }

    // An earlier plain leg of the chain is seen posted: its reserved amount leaves pending and is posted.
    private static void PostInView(ref Account view, BalanceSide side, UInt128 amount)
    {
        if (amount != UInt128.Zero)
        {
            BalanceSteps.Release(ref view, side, amount);
            BalanceSteps.Post(ref view, side, UInt128.Zero, amount);
        }
    }

    private SideReport CheckViewSide(in Transfer t, in Account view, int slot, BalanceSide side, BalancingGuard guard)
    {
        var outcome = CheckView(t, view, side, guard);
        if (outcome == LegOutcome.Ok && BalanceSteps.TotalOverflows(batch.Account(slot).Account, side, t.Amount))
        {
            // The leg is reserved on the account as stored, which still holds the pending amount an earlier post/void of
            // the chain released in the view: near 2^128 that overflows where one ledger would not (documented).
            outcome = LegOutcome.TotalOverflow;
        }

        return new SideReport(outcome, view.Ledger);
    }

    /// <summary>
    /// A post/void leg: the account and this shard's copy of the pending transfer exist (both were stored
    /// before the pending transfer's client was answered; if not, IdBusy aborts and the client retries), and
    /// the account is not closed unless the pending transfer closed it (as the local path checks).
    /// </summary>
    private SideReport CheckResolveSide(CrossShardLegIndex chain, int index, int slot, BalanceSide side)
    {
        // The pending transfer may also be created by an earlier event of this chain (its leg here reserved it).
        var resolved = chain.Legs[index].Transfer;
        if (!batch.Account(slot).Exists || !TryGetResolvedPending(chain, index, out var p))
        {
            return new SideReport(LegOutcome.IdBusy, 0);
        }

        // An expiry releases whatever the account's state, as the local ledger's expiry does.
        var closing = side == BalanceSide.Debit ? TransferFlags.ClosingDebit : TransferFlags.ClosingCredit;
        var closed = (batch.Account(slot).Account.Flags & AccountFlags.Closed) != 0 && (p.Flags & closing) == 0 &&
            !CrossShardExpiry.IsExpiry(resolved);
        return new SideReport(closed ? LegOutcome.Closed : LegOutcome.Ok, batch.Account(slot).Account.Ledger);
    }

    // One side's checks, in TigerBeetle's order for that side (CrossShardRules interleaves the sides).
    private static LegOutcome CheckView(in Transfer t, in Account view, BalanceSide side, BalancingGuard guard)
    {
        if (view.Ledger != t.Ledger)
        {
            return LegOutcome.LedgerMismatch;
        }

        if ((view.Flags & AccountFlags.Closed) != 0)
        {
            return LegOutcome.Closed;
        }

        if (!ClampStillHolds(t, view, side, guard))
        {
            return LegOutcome.StaleClamp; // The coordinator's snapshot is stale: abort without statuses and restart.
        }

        if ((t.Flags & TransferFlags.Pending) != 0 && BalanceSteps.PendingOverflows(view, side, t.Amount))
        {
            return LegOutcome.PendingOverflow;
        }

        if (BalanceSteps.PostedOverflows(view, side, t.Amount))
        {
            return LegOutcome.PostedOverflow;
        }

        if (BalanceSteps.TotalOverflows(view, side, t.Amount))
        {
            return LegOutcome.TotalOverflow;
        }

        return BalanceSteps.ExceedsLimit(view, side, t.Amount) ? LegOutcome.ExceedsLimit : LegOutcome.Ok;
    }

    /// <summary>
    /// A balancing side (the ledger clamps the amount here, after the closed checks): the amount the ledger would
    /// compute now, min(requested, headroom of each balancing side), is still the clamped amount: this side's headroom
    /// is at least the amount, and exactly the amount when this side is the one that bound it.
    /// </summary>
    private static bool ClampStillHolds(in Transfer t, in Account view, BalanceSide side, BalancingGuard guard)
    {
        var balancing = side == BalanceSide.Debit ? TransferFlags.BalancingDebit : TransferFlags.BalancingCredit;
        if ((t.Flags & balancing) == 0)
        {
            return true;
        }

        Invariant.Check((guard & BalancingGuard.Clamped) != 0, "the coordinator clamps every balancing transfer");
        var binds = side == BalanceSide.Debit ? BalancingGuard.DebitBinds : BalancingGuard.CreditBinds;
        var headroom = BalanceSteps.Headroom(view, side);
        return (guard & binds) != 0 ? headroom == t.Amount : headroom >= t.Amount;
    }

    // The balance sides of a leg (an id-only leg has none).
    private static BalanceSide[] SidesOf(LegSides sides) => (sides & (LegSides.Debit | LegSides.Credit)) switch
    {
        LegSides.None => [],
        LegSides.Debit => DebitOnly,
        LegSides.Credit => CreditOnly,
        _ => BothSides,
    };

    private static readonly BalanceSide[] DebitOnly = [BalanceSide.Debit];
    private static readonly BalanceSide[] CreditOnly = [BalanceSide.Credit];
    private static readonly BalanceSide[] BothSides = [BalanceSide.Debit, BalanceSide.Credit];

    private static void WriteReport(Span<byte> reports, int index, SideReport debit, SideReport credit)
    {
        var at = reports.Slice(index * CrossShardCommand.LegReportBytes, CrossShardCommand.LegReportBytes);
        at[0] = (byte)debit.Outcome;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(at[1..], debit.Ledger);
        at[5] = (byte)credit.Outcome;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(at[6..], credit.Ledger);
    }

    private static void MarkNotEvaluated(Span<byte> reports, int from, int count)
    {
        var notEvaluated = new SideReport(LegOutcome.NotEvaluated, 0);
        for (var k = from; k < count; k++)
        {
            WriteReport(reports, k, notEvaluated, notEvaluated);
        }
    }

    private enum BalanceChange : byte
    {
        Reserve,
        Post,
        Release,
    }

    /// <summary>Reserves, posts or releases a leg's amount on each of its sides here; <paramref name="historyTimestamp"/> (posts only) stamps history records.</summary>
    private void ChangeSides(in Leg leg, BalanceChange change, ulong historyTimestamp)
    {
        if ((leg.Sides & LegSides.Resolve) != 0)
        {
            // A post/void reserved nothing: only its commit changes balances.
            if (change == BalanceChange.Post)
            {
                ResolveSides(leg, historyTimestamp);
            }

            return;
        }

        var stayPending = (leg.Transfer.Flags & TransferFlags.Pending) != 0;
        foreach (var side in SidesOf(leg.Sides))
        {
            var slot = batch.LoadAccount(side == BalanceSide.Debit ? leg.Transfer.DebitAccountId : leg.Transfer.CreditAccountId);
            Invariant.Check(batch.Account(slot).Exists, "a prepared leg's account exists");
            ref var account = ref batch.Modify(slot);
            var amount = leg.Transfer.Amount;
            switch (change)
            {
                case BalanceChange.Reserve:
                    // Inside the Prepare's savepoint: the reserved totals are written once it is released.
                    BalanceSteps.Reserve(ref account, side, amount);
                    if (Closes(leg.Transfer, side))
                    {
                        account.Flags |= AccountFlags.Closed; // Closed from Prepare on: no later check misses the close.
                    }

                    break;
                case BalanceChange.Post:
                    if (!stayPending)
                    {
                        BalanceSteps.Post(ref account, side, amount, amount);
                    }

                    // A committed pending transfer keeps its reservation, now visible to reads as pending.
                    AdjustReserved(account.Id, side, amount, add: false);
                    if (Closes(leg.Transfer, side))
                    {
                        batch.SetSideRecord(CrossShardTables.Closing, account.Id, null); // Stays closed, now visible.
                    }

                    if ((account.Flags & AccountFlags.History) != 0)
                    {
                        batch.Writes.AddAccountBalance(new AccountBalanceEntry(account.Id, HistoryBalanceOf(account, historyTimestamp)));
                    }

                    break;
                default:
                    BalanceSteps.Release(ref account, side, amount);
                    AdjustReserved(account.Id, side, amount, add: false);
                    if (Closes(leg.Transfer, side))
                    {
                        // Prepare closed it (a closing leg fails on a closed account): the abort reopens it.
                        account.Flags &= ~AccountFlags.Closed;
                        batch.SetSideRecord(CrossShardTables.Closing, account.Id, null);
                    }

                    break;
            }
        }
    }

    /// <summary>The accounts a leg's sides hold here (an id or status leg holds none).</summary>
    private static AccountsHere AccountsHereOf(LegSides sides) =>
        (sides & LegSides.Debit) != 0
            ? ((sides & LegSides.Credit) != 0 ? AccountsHere.Both : AccountsHere.Debit)
            : ((sides & LegSides.Credit) != 0 ? AccountsHere.Credit : AccountsHere.None);

    /// <summary>The accounts of event <paramref name="eventIndex"/> that the home's own prepared legs hold here (none without legs).</summary>
    private static AccountsHere AccountsHereOf(PreparedRecord? homeLegs, int eventIndex)
    {
        var here = AccountsHere.None;
        foreach (var leg in homeLegs?.Legs ?? [])
        {
            if (leg.EventIndex == eventIndex)
            {
                here |= AccountsHereOf(leg.Sides);
            }
        }

        return here;
    }

    private static bool Closes(in Transfer t, BalanceSide side) =>
        (t.Flags & (side == BalanceSide.Debit ? TransferFlags.ClosingDebit : TransferFlags.ClosingCredit)) != 0;

    /// <summary>Records which transaction's undecided closing leg closed an account here (reads hide the flag meanwhile; Finish deletes it).</summary>
    private void HoldClosedAccounts(in Leg leg, UInt128 transactionId)
    {
        if ((leg.Sides & LegSides.Resolve) != 0)
        {
            return;
        }

        foreach (var side in SidesOf(leg.Sides))
        {
            if (Closes(leg.Transfer, side))
            {
                var value = new byte[16];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt128LittleEndian(value, transactionId);
                batch.SetSideRecord(CrossShardTables.Closing, side == BalanceSide.Debit ? leg.Transfer.DebitAccountId : leg.Transfer.CreditAccountId, value);
            }
        }
    }

    /// <summary>A committed post/void leg: the pending amount (this shard's copy of the pending transfer) is posted in part or released.</summary>
    private void ResolveSides(in Leg leg, ulong historyTimestamp)
    {
        var found = batch.TryGetTransfer(leg.Transfer.PendingId, out var p);
        Invariant.Check(found && (p.Flags & TransferFlags.Pending) != 0, "a prepared post/void leg's pending transfer is stored here");
        var post = (leg.Transfer.Flags & TransferFlags.PostPendingTransfer) != 0;
        Invariant.Check(!post || leg.Transfer.Amount <= p.Amount, "a post moves at most the pending amount");
        var expiry = CrossShardExpiry.IsExpiry(leg.Transfer);
        foreach (var side in SidesOf(leg.Sides))
        {
            var slot = batch.LoadAccount(side == BalanceSide.Debit ? p.DebitAccountId : p.CreditAccountId);
            ref var account = ref batch.Modify(slot);
            if (post)
            {
                BalanceSteps.Post(ref account, side, p.Amount, leg.Transfer.Amount);
            }
            else
            {
                BalanceSteps.Release(ref account, side, p.Amount);
                var closing = side == BalanceSide.Debit ? TransferFlags.ClosingDebit : TransferFlags.ClosingCredit;
                if ((p.Flags & closing) != 0)
                {
                    account.Flags &= ~AccountFlags.Closed; // A voided closing transfer reopens the account.
                }
            }

            // The local ledger's expiry records no balance history either.
            if ((account.Flags & AccountFlags.History) != 0 && !expiry)
            {
                batch.Writes.AddAccountBalance(new AccountBalanceEntry(account.Id, HistoryBalanceOf(account, historyTimestamp)));
            }
        }

        if (expiry && batch.GetPendingStatus(p.Id) != PendingStatus.Expired)
        {
            // This shard's copy is expired: the durable mark that a late duplicate Prepare of the expiry is finished.
            batch.SetPendingStatus(p.Id, PendingStatus.Expired);
        }
    }

    /// <summary>Adds a prepared leg's amount to the reserved totals of its accounts here (what reads leave out).</summary>
    private void AdjustLegReserved(in Leg leg, bool add)
    {
        if ((leg.Sides & LegSides.Resolve) != 0)
        {
            return; // A post/void reserves nothing.
        }

        foreach (var side in SidesOf(leg.Sides))
        {
            AdjustReserved(side == BalanceSide.Debit ? leg.Transfer.DebitAccountId : leg.Transfer.CreditAccountId, side, leg.Transfer.Amount, add);
        }
    }
}
