using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// Fences: the client of a transaction is answered once its Decide is applied and every participant leader that may hold
// legs has either fenced them (Fence / Fenced) or proposed its Finish (FinishTaken), before that Finish commits or even
// reaches the participant. Whatever starts after the answer must see the transaction, so while a leg is fenced the
// accounts it touches (and the ids it stores or changes) are closed here: reads and fast-path writes of them wait, and
// Prepares touching them are held. An announced fence (below) ends when this leader proposes the leg's Finish: anything it
// proposes later is ordered after that Finish in the log, and a read that found the fence up waits for the last Finish
// proposed. An inherited fence ends when the legs are finished (applied).
//
// Two kinds of legs fence. Announced legs: the home said it is deciding (Fence), and this leader holds the legs prepared.
// Inherited legs: those a leader finds prepared when it takes office, since a predecessor may have fenced them or taken
// their Finish and the client may have been answered. A deposed leader cannot have applied a Prepare of its successor's
// term, so legs prepared under the current leader fence only once announced. No cycle of waits: a fence waits only for
// its home's Decide and Finish, which wait for nothing held here; an account stays fenced at most until the legs fenced
// on it are finished, since new Prepares on it are held meanwhile.
public sealed partial class CrossShardDriver
{
    // Fenced transactions here, with the keys they fence (account ids and transfer ids), and per key the number of
    // fencing transactions. Invariant: fencedKeys counts exactly the keys of inheritedLegs and announcedLegs.
    private readonly Dictionary<UInt128, UInt128[]> inheritedLegs = [];
    private readonly Dictionary<UInt128, UInt128[]> announcedLegs = [];
    private readonly Dictionary<UInt128, int> fencedKeys = [];

    // Prepares that touched a fenced account, by transaction: taken again as fences end (at most
    // CrossShardLimits.ParticipantTransactionsMax; beyond that they are dropped and the coordinator resends).
    private readonly Dictionary<UInt128, CrossShardMessage> heldPrepares = [];

    /// <summary>Transactions whose legs fence accounts here (inherited from an earlier leadership, or announced by their home).</summary>
    public int FencingTransactionCount => inheritedLegs.Count + announcedLegs.Count;

    /// <summary>Grows whenever a fence ends: a host holding writes classifies them again when it changed.</summary>
    public long FenceReleases { get; private set; }

    /// <summary>
    /// True while a fenced leg touches <paramref name="accountId"/> (see the file comment): a read of the account must wait,
    /// as it may have to show a transfer whose client was answered. False on a non-leader.
    /// </summary>
    public bool IsAccountFenced(UInt128 accountId) => fencedKeys.Count != 0 && fencedKeys.ContainsKey(accountId) && FenceWanted();

    /// <summary>True while a fenced leg stores or changes the transfer <paramref name="transferId"/> here: a lookup of it must wait.</summary>
    public bool IsTransferFenced(UInt128 transferId) => fencedKeys.Count != 0 && fencedKeys.ContainsKey(transferId) && FenceWanted();

    /// <summary>Someone found a fence and will wait for its end: the lingering Finish proposals that end fences are due.</summary>
    private bool FenceWanted()
    {
        backgroundDue = true;
        return true;
    }

    /// <summary>
    /// True when one of these events touches a fenced account here (for a post/void: its pending transfer's accounts):
    /// the host keeps the request and classifies it again once <see cref="FenceReleases"/> changed.
    /// </summary>
    public bool MustWait(ReadOnlySpan<Transfer> transfers)
    {
        if (fencedKeys.Count == 0)
        {
            return false;
        }

        foreach (var t in transfers)
        {
            var accounts = t;
            if (t.PendingId != 0 && (t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0 &&
                ledger.TryLookupTransfer(t.PendingId, out var pending))
            {
                accounts = pending;
            }

            if (IsAccountFenced(accounts.DebitAccountId) || IsAccountFenced(accounts.CreditAccountId))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when a leg of a Prepare touches a fenced account: it is held until the fence ends.</summary>
    private bool LegsTouchFence(Leg[] legs)
    {
        if (fencedKeys.Count == 0)
        {
            return false;
        }

        foreach (var leg in legs)
        {
            if (((leg.Sides & LegSides.Debit) != 0 && IsAccountFenced(leg.Transfer.DebitAccountId)) ||
                ((leg.Sides & LegSides.Credit) != 0 && IsAccountFenced(leg.Transfer.CreditAccountId)))
            {
                return true;
            }
        }

        return false;
    }

    private void HoldPrepare(CrossShardMessage message)
    {
        if (heldPrepares.Count < CrossShardLimits.ParticipantTransactionsMax || heldPrepares.ContainsKey(message.TransactionId))
        {
            heldPrepares[message.TransactionId] = message;
        }
    }

    /// <summary>What a transaction's legs here fence: the accounts of their sides, the ids they store, the pending transfers they change.</summary>
    private static UInt128[] FenceKeysOf(Leg[] legs)
    {
        var keys = new HashSet<UInt128>();
        foreach (var leg in legs)
        {
            if ((leg.Sides & LegSides.Debit) != 0)
            {
                keys.Add(leg.Transfer.DebitAccountId);
            }

            if ((leg.Sides & LegSides.Credit) != 0)
            {
                keys.Add(leg.Transfer.CreditAccountId);
            }

            if ((leg.Sides & LegSides.Id) != 0)
            {
                keys.Add(leg.Transfer.Id);
            }

            if ((leg.Sides & LegSides.Status) != 0)
            {
                keys.Add(leg.Transfer.PendingId);
            }
        }

        return [.. keys];
    }

    /// <summary>Taking office: every leg prepared in the committed ledger (every earlier entry is applied) is inherited.</summary>
    private void FenceInheritedLegs()
    {
        foreach (var record in ledger.Store.EnumerateSideRecords(CrossShardTables.Prepared))
        {
            AddFence(inheritedLegs, record.Key, FenceKeysOf(CrossShardCommand.ReadPreparedRecord(record.Value!).Legs));
        }
    }

    /// <summary>
    /// The home is deciding the transaction: a leader holding its legs prepared fences them until it proposes their Finish,
    /// and says so (Fenced). One that does not hold them stays silent; the home then waits for its FinishTaken or Finished.
    /// </summary>
    private void OnFenceRequest(UInt128 transactionId, int home)
    {
        if (!preparedHere.TryGetValue(transactionId, out var prepared) || prepared.Home != home)
        {
            return;
        }

        if (!finishProposed.Contains(transactionId) && !inheritedLegs.ContainsKey(transactionId) && !announcedLegs.ContainsKey(transactionId))
        {
            AddFence(announcedLegs, transactionId, FenceKeysOf(prepared.Legs));
            prepared.FencedAtNs = nowNs;
        }

        Send(home, new CrossShardMessage(CrossShardMessageKind.Fenced, home, shard, transactionId));
    }

    private void AddFence(Dictionary<UInt128, UInt128[]> legs, UInt128 transactionId, UInt128[] keys)
    {
        if (!legs.TryAdd(transactionId, keys))
        {
            return;
        }

        foreach (var key in keys)
        {
            fencedKeys[key] = fencedKeys.GetValueOrDefault(key) + 1;
        }
    }

    /// <summary>
    /// This leader proposed the Finish of legs it fenced on the home's Fence: they fence no more. Inherited legs fence until
    /// the Finish is applied, since a read that started before this leader took office does not know it must wait for it.
    /// </summary>
    private void UnfenceAnnounced(UInt128 transactionId)
    {
        if (announcedLegs.Count != 0 && announcedLegs.ContainsKey(transactionId))
        {
            Unfence(transactionId);
        }
    }

    /// <summary>
    /// The transaction's legs here are finished (posted or released), or its announced legs' Finish is proposed: its keys
    /// are no longer fenced by it, and held Prepares that no longer touch a fence are taken.
    /// </summary>
    private void Unfence(UInt128 transactionId)
    {
        if (FencingTransactionCount == 0 ||
            (!inheritedLegs.Remove(transactionId, out var keys) && !announcedLegs.Remove(transactionId, out keys)))
        {
            return;
        }

        foreach (var key in keys)
        {
            var left = fencedKeys[key] - 1;
            if (left == 0)
            {
                fencedKeys.Remove(key);
            }
            else
            {
                fencedKeys[key] = left;
            }
        }

        FenceReleases++;
        Invariant.Check(FencingTransactionCount != 0 || fencedKeys.Count == 0, "fenced keys belong to fenced legs");
        TakeHeldPrepares();
    }

    private void TakeHeldPrepares()
    {
        if (heldPrepares.Count == 0)
        {
            return;
        }

        List<CrossShardMessage>? free = null;
        foreach (var message in heldPrepares.Values)
        {
            if (!LegsTouchFence(message.Legs))
            {
                (free ??= []).Add(message);
            }
        }

        foreach (var message in free ?? [])
        {
            heldPrepares.Remove(message.TransactionId);
            OnPrepareRequest(message);
        }
    }

    /// <summary>
    /// Legs finished without a Finish of this leader (by Decide at the home, or a tombstone's release): unfenced too. Announced
    /// legs are looked at only once their Finish is late (it normally comes a Decide after the Fence).
    /// </summary>
    private void SweepFences()
    {
        if (FencingTransactionCount == 0)
        {
            return;
        }

        List<UInt128>? finished = null;
        foreach (var transactionId in inheritedLegs.Keys)
        {
            if (!ledger.Store.TryGetSideRecord(CrossShardTables.Prepared, transactionId, out _))
            {
                (finished ??= []).Add(transactionId);
            }
        }

        foreach (var transactionId in announcedLegs.Keys)
        {
            if (AnnouncedFenceIsLate(transactionId) && !ledger.Store.TryGetSideRecord(CrossShardTables.Prepared, transactionId, out _))
            {
                (finished ??= []).Add(transactionId);
            }
        }

        foreach (var transactionId in finished ?? [])
        {
            Unfence(transactionId);
        }
    }

    /// <summary>An announced fence whose Finish did not come within a retry interval: its home is asked (see TickParticipant).</summary>
    private bool AnnouncedFenceIsLate(UInt128 transactionId) =>
        announcedLegs.Count != 0 && announcedLegs.ContainsKey(transactionId) &&
        (!preparedHere.TryGetValue(transactionId, out var prepared) || nowNs >= prepared.FencedAtNs + options.RetryIntervalNs);

    private void ClearFences()
    {
        inheritedLegs.Clear();
        announcedLegs.Clear();
        fencedKeys.Clear();
        heldPrepares.Clear(); // Their coordinators resend them to the next leader.
        FenceReleases++;
    }
}
