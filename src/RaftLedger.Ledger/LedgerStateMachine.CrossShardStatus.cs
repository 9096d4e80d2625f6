using RaftLedger.Common;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger;

// Status legs (docs/design/cross-shard.md, "Posts and voids of another shard's pending transfer in a chain"): a
// post/void inside a cross-shard chain whose pending transfer P lives on another shard p than the chain's coordinator.
// The coordinator checks the post/void against P as p's leader read it (P's fields never change), p's Prepare checks
// P's status and holds P's id until Finish, Decide at the coordinator compares its own timestamp with P's expiry, and
// Finish(commit) at p sets P's status.
public sealed partial class LedgerStateMachine
{
    /// <summary>
    /// The pending transfer <paramref name="pendingId"/> as this shard (its id's home) holds it now, for a chain
    /// coordinator on another shard. Reads committed state.
    /// </summary>
    public ForeignPending CrossShardPendingHere(UInt128 pendingId) => store.TryGetTransfer(pendingId, out var p)
        ? new ForeignPending(pendingId, true, store.GetPendingStatus(pendingId), p)
        : new ForeignPending(pendingId, false, PendingStatus.None, default);

    /// <summary>
    /// A post/void whose pending transfer lives on another shard (<paramref name="p"/>, as that shard's leader read it):
    /// every check the ledger makes before the accounts, as <see cref="CrossShardPostOrVoidStatus"/> does for a pending
    /// transfer stored here, and the resolved transfer. Reads committed state; not while a command is being applied.
    /// </summary>
    public CreateTransferResult CrossShardForeignPostOrVoidStatus(in Transfer t, in ForeignPending p, out Transfer resolved)
    {
        resolved = t;
        Invariant.Check(p.Id == t.PendingId, "the pending transfer read is the one the event names");
        // An existing post/void with this id that resolved the full amount matches a request for "full" (0 or max):
        // SameAmount reads the pending transfer's amount where it is stored, which here is what was read from its home.
        var asked = t;
        if (p.Found && (t.Amount == UInt128.Zero || t.Amount == UInt128.MaxValue))
        {
            asked.Amount = p.Transfer.Amount;
        }

        var status = ForeignPreamble(asked, store.LastTimestamp + 1);
        if (status != CreateTransferResult.Created)
        {
            return status;
        }

        if (!p.Found)
        {
            return CreateTransferResult.PendingTransferNotFound;
        }

        var fields = ValidatePendingFields(t, p.Transfer, out var amount);
        if (fields != CreateTransferResult.Created)
        {
            return fields;
        }

        var pendingStatus = CheckPendingStatus(p.Transfer, store.LastTimestamp + 1, p.Status);
        if (pendingStatus != CreateTransferResult.Created)
        {
            return pendingStatus;
        }

        resolved.DebitAccountId = p.Transfer.DebitAccountId;
        resolved.CreditAccountId = p.Transfer.CreditAccountId;
        resolved.Ledger = p.Transfer.Ledger;
        resolved.Code = p.Transfer.Code;
        resolved.Amount = amount;
        return CreateTransferResult.Created;
    }

    /// <summary>When a pending transfer expires, as a Decide item carries it: u64 max when never (no timeout, or beyond every timestamp).</summary>
    public static ulong ForeignExpiresAt(in Transfer p)
    {
        if (p.TimeoutSeconds == 0)
        {
            return ulong.MaxValue;
        }

        var at = ExpiresAt(p.Timestamp, p.TimeoutSeconds);
        return at >= ulong.MaxValue ? ulong.MaxValue : (ulong)at;
    }

    // The request checks of a post/void up to the pending transfer (header, exists, id_already_failed, flags, pending id, timeout).
    private CreateTransferResult ForeignPreamble(in Transfer t, ulong timestamp)
    {
        var status = LocalStatus(t, pendingHere: false, timestamp);
        Invariant.Check(status != CreateTransferResult.Created, "a post/void is never created by the local checks alone");
        return status == CreateTransferResult.NeedsCrossShardPath ? ValidatePostOrVoidRequest(t) : status;
    }

    /// <summary>
    /// Decide's check of a post/void whose pending transfer lives elsewhere, in log order here: the request checks, then
    /// the status the status leg found at Prepare (held since, so still true), then the expiry against this Decide's
    /// timestamp (TigerBeetle's order). The field checks were made on the pending transfer's unchanging fields.
    /// </summary>
    private CreateTransferResult ForeignDecideStatus(in Transfer t, ulong timestamp, ulong expiresAt, byte legStatus)
    {
        var status = ForeignPreamble(t, timestamp);
        if (status != CreateTransferResult.Created)
        {
            return status;
        }

        if (IsPendingCheckStatus(legStatus))
        {
            // The status leg's answer, or the coordinator's check of the pending transfer's fields (which never change).
            return (CreateTransferResult)legStatus;
        }

        return timestamp >= expiresAt ? CreateTransferResult.PendingTransferExpired : CreateTransferResult.Created;
    }

    /// <summary>A status from the checks against the pending transfer itself (found, pending, same fields, amount, status, expiry).</summary>
    public static bool IsPendingCheckStatus(byte status) =>
        status is >= (byte)CreateTransferResult.PendingTransferNotFound and <= (byte)CreateTransferResult.PendingTransferExpired;

    /// <summary>Prepare of a status leg at the pending transfer's home: Ok while it is pending here (not checked for time: Decide does that).</summary>
    private SideReport StatusReport(in Transfer t)
    {
        if (!batch.TryGetTransfer(t.PendingId, out var p) || (p.Flags & TransferFlags.Pending) == 0)
        {
            return new SideReport(LegOutcome.PendingStatus, (uint)CreateTransferResult.PendingTransferNotFound);
        }

        return batch.GetPendingStatus(p.Id) switch
        {
            PendingStatus.Posted => new SideReport(LegOutcome.PendingStatus, (uint)CreateTransferResult.PendingTransferAlreadyPosted),
            PendingStatus.Voided => new SideReport(LegOutcome.PendingStatus, (uint)CreateTransferResult.PendingTransferAlreadyVoided),
            PendingStatus.Expired => new SideReport(LegOutcome.PendingStatus, (uint)CreateTransferResult.PendingTransferExpired),
            _ => SideReport.Ok,
        };
    }

    /// <summary>Finish(commit) of a status leg: the chain's post/void resolved the pending transfer held here since Prepare.</summary>
    private void FinishStatusLeg(in Transfer resolved)
    {
        var found = batch.TryGetTransfer(resolved.PendingId, out var p);
        Invariant.Check(found && batch.GetPendingStatus(p.Id) == PendingStatus.Pending, "a status leg holds a pending transfer from Prepare to Finish");
        var post = (resolved.Flags & TransferFlags.PostPendingTransfer) != 0;
        batch.SetPendingStatus(p.Id, post ? PendingStatus.Posted : PendingStatus.Voided);
        if (p.TimeoutSeconds != 0 && !UnscheduleCrossShardExpiry(p.Id))
        {
            batch.Writes.RemoveExpiry(new ExpiryEntry((ulong)ExpiresAt(p.Timestamp, p.TimeoutSeconds), p.Id));
        }
    }

    /// <summary>
    /// True when a post/void or expiry of a pending transfer stored here is decided while another transaction's status
    /// leg holds that transfer (a chain coordinated elsewhere may still post or void it): the Decide aborts without
    /// statuses and the client retries (the driver makes such units wait, so this is the log-order safety net).
    /// </summary>
    private bool AnyPendingHeld(DecideItem item)
    {
        for (var i = 0; i < item.Events.Length; i++)
        {
            ref readonly var t = ref item.Events[i];
            if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0 && !item.PendingElsewhereAt(i) &&
                HeldByAnother(t.PendingId, item.TransactionId))
            {
                return true;
            }
        }

        return false;
    }

    // The ledger's own expiry of a local pending transfer waits while a status leg holds it (only a status leg holds
    // such a transfer's id): the chain's Decide, at its own timestamp, decides whether its post/void or the expiry wins.
    private bool HeldByStatusLeg(UInt128 pendingId) => batch.TryGetSideRecord(CrossShardTables.LegHold, pendingId, out _);
}
