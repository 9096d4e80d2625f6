using RaftLedger.Common;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger;

// Expiry of cross-shard pending transfers (see CrossShardExpiry): the home's index of when each expires,
// the expiry event's checks at Decide, and what its commit changes.
public sealed partial class LedgerStateMachine
{
    // Due expiry entries read per step by HasReleasableExpiry (32 bytes each, on the stack); the first one not held by
    // a status leg ends the scan, so one step is almost always enough.
    private const int ReleasableScanChunk = 16;

    /// <summary>
    /// When the cross-shard pending transfer <paramref name="pendingId"/> stored here (its id home) expires, while it
    /// is still to be expired here; false once posted, voided or expired, or when it is not a cross-shard pending
    /// transfer with a timeout. Reads committed state.
    /// </summary>
    public bool TryGetCrossShardExpiry(UInt128 pendingId, out ulong expiresAtNs)
    {
        expiresAtNs = 0;
        if (!store.TryGetSideRecord(CrossShardTables.Expiry, pendingId, out var value))
        {
            return false;
        }

        expiresAtNs = CrossShardExpiry.ReadRecord(value);
        return true;
    }

    /// <summary>
    /// A pending transfer with a timeout, created by a cross-shard transaction, got its status here: remember when
    /// it expires. When both its accounts live here too (an event of a cross-shard chain), the ledger's own expiry
    /// index takes it, as for a local pending transfer: the ledger releases it at its first batch after that time,
    /// and a post or void of it may take the fast path. Otherwise the Expiry table does, for the driver.
    /// </summary>
    private void ScheduleCrossShardExpiry(in Transfer pending)
    {
        Invariant.Check((pending.Flags & TransferFlags.Pending) != 0 && pending.TimeoutSeconds != 0);
        Invariant.Check(pending.Timestamp != 0, "the pending transfer is stored with its timestamp");
        var expiresAt = (ulong)UInt128.Min(ExpiresAt(pending.Timestamp, pending.TimeoutSeconds), LedgerLimits.TimestampMax);
        if (batch.Account(batch.LoadAccount(pending.DebitAccountId)).Exists && batch.Account(batch.LoadAccount(pending.CreditAccountId)).Exists)
        {
            batch.Writes.AddExpiry(new ExpiryEntry(expiresAt, pending.Id));
            return;
        }

        batch.SetSideRecord(CrossShardTables.Expiry, pending.Id, CrossShardExpiry.WriteRecord(expiresAt));
        var orderKey = CrossShardExpiry.OrderKey(expiresAt, pending.Id);
        var sharing = batch.TryGetSideRecord(CrossShardTables.ExpiryOrder, orderKey, out var ids) ? ids : null;
        batch.SetSideRecord(CrossShardTables.ExpiryOrder, orderKey, CrossShardExpiry.OrderWithId(sharing, pending.Id));
    }

    /// <summary>A post or void resolved the pending transfer: it no longer expires. False when it was not a cross-shard one.</summary>
    private bool UnscheduleCrossShardExpiry(UInt128 pendingId)
    {
        if (!batch.TryGetSideRecord(CrossShardTables.Expiry, pendingId, out var record))
        {
            return false;
        }

        batch.SetSideRecord(CrossShardTables.Expiry, pendingId, null);
        var orderKey = CrossShardExpiry.OrderKey(CrossShardExpiry.ReadRecord(record), pendingId);
        Invariant.Check(batch.TryGetSideRecord(CrossShardTables.ExpiryOrder, orderKey, out var ids), "every expiry entry is in the expiry order");
        batch.SetSideRecord(CrossShardTables.ExpiryOrder, orderKey, CrossShardExpiry.OrderWithoutId(ids, pendingId));
        return true;
    }

    /// <summary>
    /// The cross-shard pending transfers stored here that are still to be expired here and expire at or before
    /// <paramref name="dueByNs"/>, earliest first. Reads committed state, and only the entries it returns (plus one):
    /// the leader calls it every half abandonment timeout, however many pending transfers are held for later.
    /// </summary>
    public IEnumerable<(ulong ExpiresAtNs, UInt128 PendingId)> EnumerateCrossShardExpiries(ulong dueByNs)
    {
        foreach (var record in store.EnumerateSideRecords(CrossShardTables.ExpiryOrder))
        {
            var expiresAtNs = CrossShardExpiry.OrderKeyExpiresAt(record.Key);
            if (expiresAtNs > dueByNs)
            {
                yield break;
            }

            foreach (var pendingId in CrossShardExpiry.OrderIds(record.Value!))
            {
                yield return (expiresAtNs, pendingId);
            }
        }
    }

    /// <summary>
    /// Checks that the expiry order holds exactly the entries of the Expiry table, each once and under its own time.
    /// A pass over both tables: for restored snapshots and the simulator's checks, not for the write path.
    /// </summary>
    public void CheckCrossShardExpiryOrder()
    {
        var expected = new Dictionary<UInt128, ulong>();
        foreach (var record in store.EnumerateSideRecords(CrossShardTables.Expiry))
        {
            expected.Add(record.Key, CrossShardExpiry.ReadRecord(record.Value!));
        }

        foreach (var (expiresAtNs, pendingId) in EnumerateCrossShardExpiries(ulong.MaxValue))
        {
            Invariant.Check(
                expected.Remove(pendingId, out var expiresAt) && expiresAt == expiresAtNs,
                $"the expiry order holds pending transfer {pendingId} at {expiresAtNs} once, as its Expiry entry does");
        }

        Invariant.Check(expected.Count == 0, $"{expected.Count} Expiry entries are missing from the expiry order");
    }

    /// <summary>
    /// Decide's check of an expiry event, in log order: the pending transfer is still pending here and its expiry
    /// time is at or before this Decide's timestamp (the local ledger's rule). Otherwise the expiry aborts with a
    /// status no client sees (never a transient one: the id must not be burnt).
    /// </summary>
    private CreateTransferResult ExpiryStatus(in Transfer expiry, ulong timestamp)
    {
        Invariant.Check(CrossShardExpiry.IsExpiry(expiry));
        if (!batch.TryGetTransfer(expiry.PendingId, out var p) || (p.Flags & TransferFlags.Pending) == 0)
        {
            return CreateTransferResult.PendingTransferNotPending;
        }

        var status = batch.GetPendingStatus(p.Id);
        var outcome = status switch
        {
            PendingStatus.Posted => CreateTransferResult.PendingTransferAlreadyPosted,
            PendingStatus.Voided => CreateTransferResult.PendingTransferAlreadyVoided,
            PendingStatus.Expired => CreateTransferResult.PendingTransferExpired,
            _ => CreateTransferResult.Created,
        };
        if (outcome != CreateTransferResult.Created)
        {
            return outcome;
        }

        // Only a pending transfer whose expiry is kept here (a local one expires through the ledger's own index).
        var kept = batch.TryGetSideRecord(CrossShardTables.Expiry, p.Id, out _);
        var due = p.TimeoutSeconds != 0 && ExpiresAt(p.Timestamp, p.TimeoutSeconds) <= timestamp;
        return kept && due && status == PendingStatus.Pending ? CreateTransferResult.Created : CreateTransferResult.PendingTransferNotPending;
    }

    /// <summary>The expiry committed at the pending transfer's home: from now on (log order) it is expired here.</summary>
    private void CommitExpiry(UInt128 pendingId)
    {
        Invariant.Check(batch.GetPendingStatus(pendingId) == PendingStatus.Pending, "Decide commits the expiry of a pending transfer");
        batch.SetPendingStatus(pendingId, PendingStatus.Expired);
        var scheduled = UnscheduleCrossShardExpiry(pendingId);
        Invariant.Check(scheduled, "an expiry commits only where the pending transfer's expiry is kept");
    }

    /// <summary>
    /// Whether a pending transfer kept on this shard alone has expired by <paramref name="nowNs"/> and is still reserved,
    /// so that the next command applied here releases it. One held by a cross-shard status leg does not count: that leg's
    /// Finish releases it. Reads only the due part of the expiry table; no writes.
    /// </summary>
    public bool HasReleasableExpiry(ulong nowNs)
    {
        Span<ExpiryEntry> due = stackalloc ExpiryEntry[ReleasableScanChunk];
        var after = default(ExpiryEntry);
        while (true)
        {
            var found = store.CollectExpired(nowNs, after, due);
            for (var i = 0; i < found; i++)
            {
                if (!store.TryGetSideRecord(CrossShardTables.LegHold, due[i].TransferId, out _))
                {
                    return true;
                }
            }

            if (found < due.Length)
            {
                return false;
            }

            after = due[found - 1];
        }
    }
}
