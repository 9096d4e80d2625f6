using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// Balancing transfers across shards (docs/design/cross-shard.md, "Balancing and closing across shards"): before its
// legs are prepared, a transaction with a balancing event reads the accounts it clamps on (this shard's from its own
// state, the others' with one Snapshot round trip), clamps each balancing event's amount as one ledger would, in
// chain order, and prepares the clamped amounts with a guard that each balancing side re-checks where it is applied.
public sealed partial class CrossShardDriver
{
    /// <summary>
    /// Starts reading the accounts the transaction's balancing events clamp on; false when it has none (prepare at
    /// once). When every such account lives here the amounts are clamped at once and the legs prepared.
    /// </summary>
    private bool StartSnapshot(Transaction transaction)
    {
        var remote = new Dictionary<int, List<UInt128>>();
        var any = false;
        for (var i = 0; i < transaction.PrepareCount; i++)
        {
            ref readonly var t = ref transaction.Events[i];
            if (!CrossShardBalancing.IsBalancing(t))
            {
                continue;
            }

            any = true;
            if ((t.Flags & TransferFlags.BalancingDebit) != 0)
            {
                AskSnapshot(transaction, remote, t.DebitAccountId);
            }

            if ((t.Flags & TransferFlags.BalancingCredit) != 0)
            {
                AskSnapshot(transaction, remote, t.CreditAccountId);
            }
        }

        if (!any)
        {
            return false;
        }

        foreach (var (participantShard, ids) in remote)
        {
            transaction.SnapshotsAwaited.Add(participantShard, ids.ToArray());
        }

        transaction.SnapshotSentNs = nowNs;
        if (transaction.SnapshotsAwaited.Count == 0)
        {
            ClampAndPrepare(transaction);
            return true;
        }

        foreach (var (participantShard, ids) in transaction.SnapshotsAwaited)
        {
            Send(participantShard, new CrossShardMessage(CrossShardMessageKind.Snapshot, shard, shard, transaction.Id) { AccountIds = ids });
        }

        return true;
    }

    private void AskSnapshot(Transaction transaction, Dictionary<int, List<UInt128>> remote, UInt128 accountId)
    {
        if (transaction.Snapshot.ContainsKey(accountId))
        {
            return;
        }

        var accountShard = ShardOf(accountId);
        if (accountShard == shard)
        {
            // As this shard's checks see it now (with the reservations of prepared legs).
            var found = ledger.TryLookupAccountWithReservations(accountId, out var account);
            transaction.Snapshot.Add(accountId, new AccountSnapshot(accountId, found, account));
            return;
        }

        if (!remote.TryGetValue(accountShard, out var ids))
        {
            ids = [];
            remote.Add(accountShard, ids);
        }

        if (!ids.Contains(accountId))
        {
            ids.Add(accountId);
        }
    }

    private void ResendSnapshots(Transaction transaction)
    {
        if (transaction.SnapshotsAwaited.Count == 0 || nowNs - transaction.SnapshotSentNs < options.RetryIntervalNs)
        {
            return;
        }

        transaction.SnapshotSentNs = nowNs;
        foreach (var (participantShard, ids) in transaction.SnapshotsAwaited)
        {
            Send(participantShard, new CrossShardMessage(CrossShardMessageKind.Snapshot, shard, shard, transaction.Id) { AccountIds = ids });
        }
    }

    /// <summary>A home asks for accounts of this shard: answered from this leader's applied state (no Raft write: the guard at Prepare catches staleness).</summary>
    private void OnSnapshotRequest(CrossShardMessage message)
    {
        var accounts = new AccountSnapshot[message.AccountIds.Length];
        for (var i = 0; i < accounts.Length; i++)
        {
            var id = message.AccountIds[i];
            if (ShardOf(id) != shard)
            {
                MessagesDropped++;
                return;
            }

            var found = ledger.TryLookupAccountWithReservations(id, out var account);
            accounts[i] = new AccountSnapshot(id, found, account);
        }

        Send(message.Home, new CrossShardMessage(CrossShardMessageKind.Snapshotted, message.Home, shard, message.TransactionId) { Accounts = accounts });
    }

    private void OnSnapshotReply(CrossShardMessage message)
    {
        if (message.Home != shard || !transactions.TryGetValue(message.TransactionId, out var transaction) ||
            transaction.Phase != Phase.Preparing || !transaction.SnapshotsAwaited.TryGetValue(message.From, out var asked) ||
            message.Accounts.Length != asked.Length)
        {
            return; // Late, duplicate or not ours.
        }

        for (var i = 0; i < asked.Length; i++)
        {
            if (message.Accounts[i].Id != asked[i])
            {
                MessagesDropped++;
                return;
            }
        }

        foreach (var account in message.Accounts)
        {
            transaction.Snapshot[account.Id] = account;
        }

        transaction.SnapshotsAwaited.Remove(message.From);
        if (transaction.SnapshotsAwaited.Count == 0)
        {
            ClampAndPrepare(transaction);
        }
    }

    private void ClampAndPrepare(Transaction transaction)
    {
        var foreign = transaction.Foreign;
        var (guards, requested) = CrossShardBalancing.Clamp(transaction.Events, transaction.PrepareCount, transaction.Snapshot,
            foreign is null ? PendingAmountOf : id => foreign.TryGetValue(id, out var p) && p.Found ? p.Transfer.Amount : PendingAmountOf(id),
            transaction.Original.Length == transaction.Events.Length ? transaction.Original : null);
        transaction.Guards = guards;
        transaction.Requested = requested;
        BeginPrepare(transaction);
    }

    // A post/void in a chain whose pending transfer is stored here (one homed elsewhere was read from there).
    private UInt128? PendingAmountOf(UInt128 pendingId) => ledger.TryLookupTransfer(pendingId, out var p) ? p.Amount : null;
}

/// <summary>
/// How a cross-shard transaction's balancing amounts are clamped on a snapshot of its accounts: in event order, as
/// one ledger would (the earlier events' effects on the same accounts counted), with the guard each balancing side
/// checks where it is applied. Pure.
/// </summary>
public static class CrossShardBalancing
{
    public static bool IsBalancing(in Transfer t) => (t.Flags & (TransferFlags.BalancingDebit | TransferFlags.BalancingCredit)) != 0;

    /// <summary>
    /// Replaces the amount of each balancing event among the first <paramref name="count"/> by min(requested, the
    /// headroom of each balancing side) on the snapshot with the earlier events applied, as one ledger would; returns
    /// per event the guard and the requested amount. <paramref name="snapshot"/> is changed (every event's effects are
    /// applied to it, side by side as the participants' views do). An account missing from it has no headroom. A side
    /// that would overflow is left as it was: that event fails where it is checked, and so do the later legs there.
    /// </summary>
    /// <remarks>
    /// A post/void of a pending transfer created earlier in the chain takes that transfer's clamped amount (from
    /// <paramref name="events"/>, clamped in place) as the pending amount, and, when <paramref name="sent"/> (the events
    /// as the client sent them) says it asked for the full amount, posts exactly that.
    /// </remarks>
    public static (BalancingGuard[] Guards, UInt128[] Requested) Clamp(Transfer[] events, int count, Dictionary<UInt128, AccountSnapshot> snapshot,
        Func<UInt128, UInt128?> pendingAmountOf, Transfer[]? sent = null)
    {
        Invariant.Check(count <= events.Length);
        var guards = new BalancingGuard[events.Length];
        var requested = new UInt128[events.Length];
        var chain = CrossShardChainIndex.Of(events);
        for (var i = 0; i < events.Length; i++)
        {
            ref var t = ref events[i];
            requested[i] = t.Amount;
            if (i >= count)
            {
                continue;
            }

            if (IsBalancing(t))
            {
                guards[i] = BalancingGuard.Clamped;
                var debitRoom = (t.Flags & TransferFlags.BalancingDebit) != 0 ? Headroom(snapshot, t.DebitAccountId, BalanceSide.Debit) : UInt128.MaxValue;
                var creditRoom = (t.Flags & TransferFlags.BalancingCredit) != 0 ? Headroom(snapshot, t.CreditAccountId, BalanceSide.Credit) : UInt128.MaxValue;
                var amount = UInt128.Min(t.Amount, UInt128.Min(debitRoom, creditRoom));
                if (amount < t.Amount)
                {
                    guards[i] |= debitRoom == amount ? BalancingGuard.DebitBinds : BalancingGuard.CreditBinds;
                }

                t.Amount = amount;
            }

            var j = chain.PendingIndexOf(i);
            if (j < 0)
            {
                Apply(snapshot, t, pendingAmountOf);
                continue;
            }

            var pendingAmount = events[j].Amount;
            if (sent is not null && (sent[i].Amount == UInt128.Zero || sent[i].Amount == UInt128.MaxValue))
            {
                t.Amount = pendingAmount; // "The full pending amount" is the pending transfer's amount as clamped.
            }

            Apply(snapshot, t, id => id == events[j].Id ? pendingAmount : pendingAmountOf(id));
        }

        return (guards, requested);
    }

    private static UInt128 Headroom(Dictionary<UInt128, AccountSnapshot> snapshot, UInt128 accountId, BalanceSide side) =>
        snapshot.TryGetValue(accountId, out var s) && s.Found ? BalanceSteps.Headroom(s.Account, side) : UInt128.Zero;

    // One event's effect on the snapshot's accounts: a pending transfer reserves, a single-phase one posts, a post or
    // void (resolved: its pending transfer's accounts) releases the pending amount and posts what it posts.
    private static void Apply(Dictionary<UInt128, AccountSnapshot> snapshot, in Transfer t, Func<UInt128, UInt128?> pendingAmountOf)
    {
        var post = (t.Flags & TransferFlags.PostPendingTransfer) != 0;
        if (post || (t.Flags & TransferFlags.VoidPendingTransfer) != 0)
        {
            var pendingAmount = pendingAmountOf(t.PendingId);
            if (pendingAmount is { } released)
            {
                ApplySide(snapshot, t.DebitAccountId, BalanceSide.Debit, UInt128.Zero, released, post ? t.Amount : UInt128.Zero);
                ApplySide(snapshot, t.CreditAccountId, BalanceSide.Credit, UInt128.Zero, released, post ? t.Amount : UInt128.Zero);
            }

            return;
        }

        var pending = (t.Flags & TransferFlags.Pending) != 0;
        ApplySide(snapshot, t.DebitAccountId, BalanceSide.Debit, pending ? t.Amount : UInt128.Zero, UInt128.Zero, pending ? UInt128.Zero : t.Amount);
        ApplySide(snapshot, t.CreditAccountId, BalanceSide.Credit, pending ? t.Amount : UInt128.Zero, UInt128.Zero, pending ? UInt128.Zero : t.Amount);
    }

    private static void ApplySide(Dictionary<UInt128, AccountSnapshot> snapshot, UInt128 accountId, BalanceSide side, UInt128 reserve, UInt128 release, UInt128 post)
    {
        if (!snapshot.TryGetValue(accountId, out var s) || !s.Found)
        {
            return;
        }

        var a = s.Account;
        ref var pendingBalance = ref side == BalanceSide.Debit ? ref a.DebitsPending : ref a.CreditsPending;
        ref var postedBalance = ref side == BalanceSide.Debit ? ref a.DebitsPosted : ref a.CreditsPosted;
        if (pendingBalance < release || reserve > UInt128.MaxValue - post || BalanceSteps.TotalOverflows(a, side, reserve + post))
        {
            return; // Fails where it is checked.
        }

        pendingBalance = pendingBalance - release + reserve;
        postedBalance += post;
        snapshot[accountId] = s with { Account = a };
    }
}
