using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>
/// The ledger-level checks of a multi-shard run, made once the cluster is quiet (healed, every request answered,
/// every replica caught up). Each shard is read from its most advanced running replica. Throws
/// <see cref="SimulationFailureException"/> naming the transfer or account that is wrong.
/// </summary>
public static class BankChecker
{
    /// <summary>Runs every check below.</summary>
    public static void CheckQuiet(MultiShardCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var ledgers = NewestLedgers(cluster);
        var shards = cluster.Options.ShardCount;
        var stored = new Dictionary<UInt128, Transfer>[shards];
        for (var shard = 0; shard < shards; shard++)
        {
            stored[shard] = StoredTransfers(shard, ledgers[shard]);
        }

        CheckNothingUnfinished(cluster);
        var records = CommittedRecords(stored, shards, cluster.Workload);
        CheckAccounts(cluster, ledgers, records);
        CheckHistory(cluster.Workload, stored, shards);
    }

    /// <summary>No replica holds a coordinator record (a transaction not retired) or a prepared leg once quiet.</summary>
    private static void CheckNothingUnfinished(MultiShardCluster cluster)
    {
        for (var shard = 0; shard < cluster.Options.ShardCount; shard++)
        {
            foreach (var replica in cluster.ReplicasOf(shard))
            {
                if (replica.Ledger is { } ledger && MultiShardCluster.UnfinishedSideRecord(ledger) is { } record)
                {
                    var what = record.Table == Ledger.CrossShard.CrossShardTables.Prepared ? "a prepared leg" : "an unretired coordinator record";
                    throw new SimulationFailureException($"shard {shard} replica on node {replica.NodeId} still holds {what} of transaction {record.Key} once quiet");
                }

                if (replica.Ledger is { } expiring && MultiShardCluster.DueExpiry(expiring, cluster.ClusterTimeNs) is { } pendingId)
                {
                    throw new SimulationFailureException($"shard {shard} replica on node {replica.NodeId} did not expire pending transfer {pendingId}, due before {cluster.ClusterTimeNs}, once quiet");
                }

                replica.Ledger?.CheckCrossShardExpiryOrder();
            }
        }
    }

    private static LedgerStateMachine[] NewestLedgers(MultiShardCluster cluster)
    {
        var ledgers = new LedgerStateMachine[cluster.Options.ShardCount];
        for (var shard = 0; shard < ledgers.Length; shard++)
        {
            ShardReplica? newest = null;
            foreach (var replica in cluster.ReplicasOf(shard))
            {
                if (replica.Ledger is not null && (newest is null || replica.AppliedIndex > newest.AppliedIndex))
                {
                    newest = replica;
                }
            }

            ledgers[shard] = newest?.Ledger ?? throw new SimulationFailureException($"shard {shard} has no running replica to check");
        }

        return ledgers;
    }

    private static Dictionary<UInt128, Transfer> StoredTransfers(int shard, LedgerStateMachine ledger)
    {
        var stored = new Dictionary<UInt128, Transfer>();
        foreach (var transfer in ledger.Store.EnumerateTransfers())
        {
            Fail(stored.TryAdd(transfer.Id, transfer), $"transfer {transfer.Id} is stored twice on shard {shard}");
        }

        return stored;
    }

    /// <summary>
    /// The committed records: every transfer stored on its home shard (the shard of its id). A transfer stored
    /// away from its home is a participant's copy of a leg: the home must hold the committed record with the same
    /// fields, and the copy must be on the shard of one of its accounts (no leg of an uncommitted transfer), or on the
    /// coordinator of the chain it was sent in (its Decide stores every event of the chain).
    /// </summary>
    private static Dictionary<UInt128, Transfer> CommittedRecords(Dictionary<UInt128, Transfer>[] stored, int shards, BankWorkload workload)
    {
        var records = new Dictionary<UInt128, Transfer>();
        for (var shard = 0; shard < shards; shard++)
        {
            foreach (var (id, transfer) in stored[shard])
            {
                var home = ShardRouter.ShardOf(id, shards);
                if (home == shard)
                {
                    records.Add(id, transfer);
                    continue;
                }

                var debitShard = ShardRouter.ShardOf(transfer.DebitAccountId, shards);
                var creditShard = ShardRouter.ShardOf(transfer.CreditAccountId, shards);

                // A post/void whose id lives elsewhere is also recorded by the pending transfer's home (its coordinator, or
                // the shard of a chain's status leg).
                var coordinator = transfer.PendingId != 0 ? ShardRouter.ShardOf(transfer.PendingId, shards) : home;
                var chainCoordinator = workload.TryGetFate(id, out var fate) ? fate.Home : home;
                Fail(shard == debitShard || shard == creditShard || shard == coordinator || shard == chainCoordinator,
                    $"transfer {id} is stored on shard {shard}, which holds neither of its accounts nor its id nor coordinated its chain");
                Fail(stored[home].TryGetValue(id, out var record), $"a leg of transfer {id} is applied on shard {shard} but its home shard {home} has no committed record");
                Fail(SameFields(record, transfer), $"the leg of transfer {id} on shard {shard} differs from its committed record on shard {home}");
            }
        }

        return records;
    }

    /// <summary>
    /// Per account: exists, its posted balances are the sum of the committed transfers that name it (so each
    /// transfer's both legs were applied, exactly once, and nothing else was), no pending amounts are left (nothing reserved once quiet), guarded customers are not overdrawn; per
    /// ledger: total debits == total credits, posted and pending.
    /// </summary>
    private static void CheckAccounts(MultiShardCluster cluster, LedgerStateMachine[] ledgers, Dictionary<UInt128, Transfer> records)
    {
        UInt128 debitsPosted = 0, creditsPosted = 0, debitsPending = 0, creditsPending = 0;
        var (debitSums, creditSums) = SumByAccount(records, pendingOnly: false, ledgers);
        var (debitPendingSums, creditPendingSums) = SumByAccount(records, pendingOnly: true, ledgers);
        CheckEachPendingResolvedAtMostOnce(records, ledgers, cluster.ClusterTimeNs);
        for (var shard = 0; shard < ledgers.Length; shard++)
        {
            foreach (var bank in cluster.Workload.AccountsOf(shard))
            {
                Fail(ledgers[shard].TryLookupAccountWithReservations(bank.Id, out var account), $"account {bank.Id} is missing on shard {shard}");
                Fail(account.DebitsPosted == debitSums.GetValueOrDefault(bank.Id), $"account {bank.Id} on shard {shard}: debits_posted {account.DebitsPosted} but its transfers sum to {debitSums.GetValueOrDefault(bank.Id)}");
                Fail(account.CreditsPosted == creditSums.GetValueOrDefault(bank.Id), $"account {bank.Id} on shard {shard}: credits_posted {account.CreditsPosted} but its transfers sum to {creditSums.GetValueOrDefault(bank.Id)}");
                Fail(account.DebitsPending == debitPendingSums.GetValueOrDefault(bank.Id) && account.CreditsPending == creditPendingSums.GetValueOrDefault(bank.Id),
                    $"account {bank.Id} on shard {shard} has pending amounts (debits {account.DebitsPending}, credits {account.CreditsPending}) once quiet, but its pending transfers " +
                    $"still pending sum to {debitPendingSums.GetValueOrDefault(bank.Id)} and {creditPendingSums.GetValueOrDefault(bank.Id)}: a leg was left prepared, or a post/void not finished");
                Fail(bank.IsBank || account.DebitsPosted + account.DebitsPending <= account.CreditsPosted, $"guarded account {bank.Id} on shard {shard} is overdrawn");
                var closedBy = ClosedBy(records, ledgers, bank.Id);
                Fail(((account.Flags & AccountFlags.Closed) != 0) == closedBy.HasValue,
                    $"account {bank.Id} on shard {shard} is {((account.Flags & AccountFlags.Closed) != 0 ? "closed" : "open")} once quiet, but " +
                    (closedBy is { } by ? $"closing transfer {by} is committed and not voided or expired" : "no committed closing transfer names it that is not voided or expired"));
                debitsPosted += account.DebitsPosted;
                creditsPosted += account.CreditsPosted;
                debitsPending += account.DebitsPending;
                creditsPending += account.CreditsPending;
            }
        }

        Fail(debitsPosted == creditsPosted, $"money not conserved: total debits posted {debitsPosted} != total credits posted {creditsPosted}");
        Fail(debitsPending == creditsPending, $"money not conserved: total debits pending {debitsPending} != total credits pending {creditsPending}");
    }

    /// <summary>A committed closing transfer that closes <paramref name="accountId"/> and is still pending or posted (then the account is closed), or null.</summary>
    private static UInt128? ClosedBy(Dictionary<UInt128, Transfer> records, LedgerStateMachine[] ledgers, UInt128 accountId)
    {
        foreach (var t in records.Values)
        {
            var closes = ((t.Flags & TransferFlags.ClosingDebit) != 0 && t.DebitAccountId == accountId) ||
                ((t.Flags & TransferFlags.ClosingCredit) != 0 && t.CreditAccountId == accountId);
            var status = ledgers[ShardRouter.ShardOf(t.Id, ledgers.Length)].Store.GetPendingStatus(t.Id);
            if (closes && status is PendingStatus.Pending or PendingStatus.Posted)
            {
                return t.Id;
            }
        }

        return null;
    }

    /// <summary>
    /// Per account, what its committed transfers sum to: posted (plain transfers and posts, with the amount
    /// posted) or, with <paramref name="pendingOnly"/>, pending (pending transfers whose home still says pending).
    /// </summary>
    private static (Dictionary<UInt128, UInt128> Debits, Dictionary<UInt128, UInt128> Credits) SumByAccount(Dictionary<UInt128, Transfer> transfers, bool pendingOnly, LedgerStateMachine[] ledgers)
    {
        var debits = new Dictionary<UInt128, UInt128>();
        var credits = new Dictionary<UInt128, UInt128>();
        const TransferFlags used = TransferFlags.Linked | TransferFlags.Pending | TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer |
            TransferFlags.BalancingDebit | TransferFlags.BalancingCredit | TransferFlags.ClosingDebit | TransferFlags.ClosingCredit;
        foreach (var transfer in transfers.Values)
        {
            Fail((transfer.Flags & ~used) == 0, $"transfer {transfer.Id} has flags {transfer.Flags} the workload never uses");
            var pending = (transfer.Flags & TransferFlags.Pending) != 0;
            var stillPending = pending && ledgers[ShardRouter.ShardOf(transfer.Id, ledgers.Length)].Store.GetPendingStatus(transfer.Id) == PendingStatus.Pending;
            var counted = pendingOnly ? stillPending : !pending && (transfer.Flags & TransferFlags.VoidPendingTransfer) == 0;
            if (!counted)
            {
                continue;
            }

            debits[transfer.DebitAccountId] = debits.GetValueOrDefault(transfer.DebitAccountId) + transfer.Amount;
            credits[transfer.CreditAccountId] = credits.GetValueOrDefault(transfer.CreditAccountId) + transfer.Amount;
        }

        return (debits, credits);
    }

    /// <summary>
    /// A pending transfer is posted, voided or expired at most once: its home's status says posted (voided) exactly when
    /// one committed post (void) names it; when none does, expired once its timeout has passed (cluster time from its
    /// home's timestamp on), pending before; a post moves at most the pending amount.
    /// </summary>
    private static void CheckEachPendingResolvedAtMostOnce(Dictionary<UInt128, Transfer> records, LedgerStateMachine[] ledgers, ulong nowNs)
    {
        var resolutions = new Dictionary<UInt128, Transfer>();
        foreach (var t in records.Values)
        {
            if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0)
            {
                Fail(resolutions.TryAdd(t.PendingId, t), $"pending transfer {t.PendingId} is posted or voided twice ({resolutions.GetValueOrDefault(t.PendingId).Id} and {t.Id})");
                Fail(records.TryGetValue(t.PendingId, out var p) && t.Amount <= p.Amount, $"post/void {t.Id} names pending transfer {t.PendingId}, which is not committed or smaller");
            }
        }

        foreach (var p in records.Values)
        {
            if ((p.Flags & TransferFlags.Pending) == 0)
            {
                continue;
            }

            var status = ledgers[ShardRouter.ShardOf(p.Id, ledgers.Length)].Store.GetPendingStatus(p.Id);
            var due = p.TimeoutSeconds != 0 && p.Timestamp + (p.TimeoutSeconds * LedgerLimits.NanosecondsPerSecond) <= nowNs;
            var expected = !resolutions.TryGetValue(p.Id, out var r) ? (due ? PendingStatus.Expired : PendingStatus.Pending)
                : (r.Flags & TransferFlags.PostPendingTransfer) != 0 ? PendingStatus.Posted : PendingStatus.Voided;
            Fail(status == expected, $"pending transfer {p.Id} has status {status} at its home, but its committed posts/voids say {expected}");
        }
    }

    /// <summary>
    /// Every transfer acknowledged created is committed at its home exactly as submitted; every transfer answered
    /// with a failure exists nowhere; nothing exists that no client submitted.
    /// </summary>
    private static void CheckHistory(BankWorkload workload, Dictionary<UInt128, Transfer>[] stored, int shards)
    {
        foreach (var fate in workload.Fates)
        {
            var id = fate.Submitted.Id;
            var found = stored[fate.Home].TryGetValue(id, out var record);
            switch (fate.Outcome)
            {
                case TransferOutcome.Created:
                    Fail(found, $"transfer {id} was acknowledged {fate.Status} but is not committed on its home shard {fate.Home} (lost)");
                    Fail(SameRequest(record, fate.Submitted), $"transfer {id} is committed with other fields than the client submitted");
                    break;
                case TransferOutcome.Failed:
                    Fail(!found, $"transfer {id} was answered {fate.Status} but is committed on shard {fate.Home}");
                    break;
            }
        }

        for (var shard = 0; shard < shards; shard++)
        {
            foreach (var id in stored[shard].Keys)
            {
                Fail(workload.TryGetFate(id, out _), $"transfer {id} on shard {shard} was never submitted by a client");
            }
        }
    }

    // A post/void is stored resolved (the pending transfer's accounts, ledger and code, the amount posted); a balancing
    // transfer with the amount it moved (at most the amount asked for).
    private static bool SameRequest(Transfer record, Transfer submitted) =>
        (submitted.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) == 0
            ? SameFields(record, IsBalancing(submitted) && record.Amount <= submitted.Amount ? submitted with { Amount = record.Amount } : submitted)
            : record.Id == submitted.Id && record.PendingId == submitted.PendingId && record.Flags == submitted.Flags &&
              (submitted.Amount == 0 || record.Amount == submitted.Amount) && record.DebitAccountId != 0 && record.CreditAccountId != 0;

    internal static bool IsBalancing(in Transfer t) => (t.Flags & (TransferFlags.BalancingDebit | TransferFlags.BalancingCredit)) != 0;

    private static bool SameFields(Transfer a, Transfer b) =>
        a.Id == b.Id && a.DebitAccountId == b.DebitAccountId && a.CreditAccountId == b.CreditAccountId && a.Amount == b.Amount &&
        a.PendingId == b.PendingId && a.UserData128 == b.UserData128 && a.UserData64 == b.UserData64 && a.UserData32 == b.UserData32 &&
        a.TimeoutSeconds == b.TimeoutSeconds && a.Ledger == b.Ledger && a.Code == b.Code && a.Flags == b.Flags;

    private static void Fail(bool condition, string message)
    {
        if (!condition)
        {
            throw new SimulationFailureException(message);
        }
    }
}
