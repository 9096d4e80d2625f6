using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// Inherited legs: the client of a transaction is answered once every participant leader proposed its Finish
// (FinishTaken), before that Finish commits. When that leader loses its office before the Finish commits, the
// next leader finds the legs still prepared and cannot tell whether a client was already answered. So the legs a
// leader finds prepared when it takes office fence their accounts until they are finished: reads and fast-path
// writes of those accounts wait, and Prepares touching them are not taken (the coordinator resends; a cycle of such
// waits between two new leaders ends with the coordinators' timeout). Legs prepared during this
// leadership need no fence: only this leader can have said it took their Finish, and then anything it proposes
// later is ordered after the Finish in the log.
public sealed partial class CrossShardDriver
{
    // Transactions whose legs were prepared here when this leader took office, with the accounts they touch, and the
    // number of such transactions per account. Invariant: fencedAccounts counts exactly inheritedLegs' accounts.
    private readonly Dictionary<UInt128, UInt128[]> inheritedLegs = [];
    private readonly Dictionary<UInt128, int> fencedAccounts = [];

    /// <summary>Transactions inherited from an earlier leadership whose legs still fence accounts here.</summary>
    public int FencingTransactionCount => inheritedLegs.Count;

    /// <summary>
    /// True while a leg this leader inherited prepared (see the file comment) touches <paramref name="accountId"/>: a read of
    /// the account must wait, as it may have to show a transfer whose client was answered. False on a non-leader.
    /// </summary>
    public bool IsAccountFenced(UInt128 accountId) => fencedAccounts.Count != 0 && fencedAccounts.ContainsKey(accountId);

    /// <summary>
    /// True when one of these events touches a fenced account here (for a post/void: its pending transfer's accounts):
    /// the host keeps the request and classifies it again once <see cref="FencingTransactionCount"/> fell.
    /// </summary>
    public bool MustWait(ReadOnlySpan<Transfer> transfers)
    {
        if (fencedAccounts.Count == 0)
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

    /// <summary>True when a leg of a Prepare touches a fenced account: not taken now, the coordinator resends it.</summary>
    private bool LegsTouchFence(Leg[] legs)
    {
        if (fencedAccounts.Count == 0)
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

    /// <summary>Taking office: every leg prepared in the committed ledger (every earlier entry is applied) is inherited.</summary>
    private void FenceInheritedLegs()
    {
        foreach (var record in ledger.Store.EnumerateSideRecords())
        {
            if (record.Table != CrossShardTables.Prepared)
            {
                continue;
            }

            var accounts = new HashSet<UInt128>();
            foreach (var leg in CrossShardCommand.ReadPreparedRecord(record.Value!).Legs)
            {
                if ((leg.Sides & LegSides.Debit) != 0)
                {
                    accounts.Add(leg.Transfer.DebitAccountId);
                }

                if ((leg.Sides & LegSides.Credit) != 0)
                {
                    accounts.Add(leg.Transfer.CreditAccountId);
                }
            }

            inheritedLegs.Add(record.Key, [.. accounts]);
            foreach (var account in accounts)
            {
                fencedAccounts[account] = fencedAccounts.GetValueOrDefault(account) + 1;
            }
        }
    }

    /// <summary>The transaction's legs here are finished (posted or released): its accounts are no longer fenced by it.</summary>
    private void Unfence(UInt128 transactionId)
    {
        if (inheritedLegs.Count == 0 || !inheritedLegs.Remove(transactionId, out var accounts))
        {
            return;
        }

        foreach (var account in accounts)
        {
            var left = fencedAccounts[account] - 1;
            if (left == 0)
            {
                fencedAccounts.Remove(account);
            }
            else
            {
                fencedAccounts[account] = left;
            }
        }

        Invariant.Check(inheritedLegs.Count != 0 || fencedAccounts.Count == 0, "fenced accounts belong to inherited legs");
    }

    /// <summary>Legs finished without a Finish of this leader (by Decide at the home, or a tombstone's release): unfenced too.</summary>
    private void SweepFences()
    {
        if (inheritedLegs.Count == 0)
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

        foreach (var transactionId in finished ?? [])
        {
            Unfence(transactionId);
        }
    }

    private void ClearFences()
    {
        inheritedLegs.Clear();
        fencedAccounts.Clear();
    }
}
