using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// Items wait in one queue per command kind and go out batched: one proposal carries many
// transactions' items, and at most ProposalsInFlightMax proposals of a kind are in flight.
public sealed partial class CrossShardDriver
{
    private readonly List<PrepareItem> prepareQueue = [];
    private readonly HashSet<UInt128> prepareQueued = [];
    private readonly List<DecideItem> decideQueue = [];
    private readonly List<FinishItem> finishQueue = [];

    // Transaction → its home shard, for the acknowledgement once the Finish is applied.
    private readonly Dictionary<UInt128, int> finishQueued = [];

    // Transactions whose Finish this leader has proposed and not yet seen applied (a subset of finishQueued's keys).
    private readonly HashSet<UInt128> finishProposed = [];
    private readonly List<UInt128> retireQueue = [];
    private readonly List<UInt128> abortQueue = [];
    private readonly Dictionary<UInt128, List<int>> queryAskers = [];
    private readonly Dictionary<long, Proposal> proposals = [];
    private readonly int[] inFlight = new int[8];
    private long nextProposalToken;

    // Finish (at a participant that fenced the legs) and Retire (at the home) answer no client: they linger in their queues
    // until BackgroundDue, so that at low load they share a Raft round (one fsync on each replica) with other work instead
    // of starting their own while the next transaction's messages wait behind it. Set by ticks, by anything that waits for
    // them (a fence or a claimed id found by a read, write or Prepare; a resent Finish), and by the host's own writes.
    private bool backgroundDue;

    /// <summary>A <see cref="ProposeAction"/>'s entry was applied on this replica; <paramref name="results"/> are Apply's result bytes.</summary>
    public void OnProposalApplied(long token, ReadOnlySpan<byte> results)
    {
        if (!proposals.Remove(token, out var proposal))
        {
            return; // Proposed by an earlier leadership of this replica: the ledger has its effects.
        }

        inFlight[(int)proposal.Operation]--;
        switch (proposal.Operation)
        {
            case LedgerOperation.CrossShardPrepare:
                PrepareApplied(proposal.Prepares!, results);
                break;
            case LedgerOperation.CrossShardDecide:
                DecideApplied(proposal.Decides!, results);
                break;
            case LedgerOperation.CrossShardFinish:
                foreach (var item in proposal.Finishes!)
                {
                    OnFinishApplied(item);
                }

                break;
            case LedgerOperation.CrossShardRetire:
                foreach (var id in proposal.Ids!)
                {
                    transactions.Remove(id);
                }

                break;
            default:
                for (var i = 0; i < proposal.Ids!.Count; i++)
                {
                    OnAbortIfUndecidedApplied(proposal.Ids[i], (CrossShardDecision)results[i]);
                }

                break;
        }
    }

    private void PrepareApplied(List<PrepareItem> items, ReadOnlySpan<byte> results)
    {
        Invariant.Check(results.Length == CrossShardCommand.PrepareResultBytes(items));
        var position = 0;
        foreach (var item in items)
        {
            var reportBytes = item.Legs.Length * CrossShardCommand.LegReportBytes;
            OnPrepareApplied(item, results[position] == 1, results.Slice(position + 1, reportBytes));
            position += 1 + reportBytes;
        }
    }

    private void DecideApplied(List<DecideItem> items, ReadOnlySpan<byte> results)
    {
        var position = 0;
        foreach (var item in items)
        {
            TrackDecidedExpiries(item, (CrossShardDecision)results[position]);
            OnDecided(item, (CrossShardDecision)results[position], results.Slice(position + 1, item.Events.Length));
            position += 1 + item.Events.Length;
        }

        Invariant.Check(position == results.Length);
    }

    /// <summary>
    /// A <see cref="ProposeAction"/>'s command is in this leader's log (accepted by Raft; not yet committed): anything the
    /// host proposes from now on comes after it. For a Finish, the coordinators are told (FinishTaken), so they can answer
    /// their clients before it commits. A host that never calls this only delays those answers until the Finish applied.
    /// </summary>
    public void OnProposalAccepted(long token)
    {
        if (!proposals.TryGetValue(token, out var proposal) || proposal.Operation != LedgerOperation.CrossShardFinish)
        {
            return;
        }

        foreach (var item in proposal.Finishes!)
        {
            finishProposed.Add(item.TransactionId);
            SendFinishTaken(item.TransactionId);
            UnfenceAnnounced(item.TransactionId); // Whatever this leader proposes from now on is ordered after the Finish.
        }
    }

    /// <summary>A <see cref="ProposeAction"/>'s entry will never apply (leadership lost, refused): its items wait for the next proposal.</summary>
    public void OnProposalFailed(long token)
    {
        if (!proposals.Remove(token, out var proposal))
        {
            return;
        }

        inFlight[(int)proposal.Operation]--;
        switch (proposal.Operation)
        {
            case LedgerOperation.CrossShardPrepare:
                // Dropped: the coordinator sends the Prepare again.
                foreach (var item in proposal.Prepares!)
                {
                    prepareQueued.Remove(item.TransactionId);
                    FreeIds(item.TransactionId);
                }

                break;
            case LedgerOperation.CrossShardDecide:
                decideQueue.AddRange(proposal.Decides!);
                break;
            case LedgerOperation.CrossShardFinish:
                // Dropped: the coordinator (or this participant's query) asks again.
                foreach (var item in proposal.Finishes!)
                {
                    finishQueued.Remove(item.TransactionId);
                    finishProposed.Remove(item.TransactionId);
                }

                break;
            case LedgerOperation.CrossShardRetire:
                retireQueue.AddRange(proposal.Ids!);
                break;
            default:
                abortQueue.AddRange(proposal.Ids!);
                break;
        }
    }

    private void FlushProposals()
    {
        var background = BackgroundDue();
        backgroundDue = false;
        while (prepareQueue.Count > 0 && CanPropose(LedgerOperation.CrossShardPrepare))
        {
            var items = TakePrepares();
            Propose(new Proposal(LedgerOperation.CrossShardPrepare) { Prepares = items }, CrossShardCommand.EncodePrepare(items));
        }

        while (decideQueue.Count > 0 && CanPropose(LedgerOperation.CrossShardDecide))
        {
            var items = TakeDecides();
            Propose(new Proposal(LedgerOperation.CrossShardDecide) { Decides = items }, CrossShardCommand.EncodeDecide(items));
        }

        while (background && finishQueue.Count > 0 && CanPropose(LedgerOperation.CrossShardFinish))
        {
            var items = TakeFinishes();
            Propose(new Proposal(LedgerOperation.CrossShardFinish) { Finishes = items }, CrossShardCommand.EncodeFinish(items));
        }

        while (background && retireQueue.Count > 0 && CanPropose(LedgerOperation.CrossShardRetire))
        {
            var ids = Take(retireQueue, CrossShardLimits.ItemsPerCommandMax);
            Propose(new Proposal(LedgerOperation.CrossShardRetire) { Ids = ids }, CrossShardCommand.EncodeRetire(ids));
        }

        while (abortQueue.Count > 0 && CanPropose(LedgerOperation.CrossShardAbortIfUndecided))
        {
            var ids = Take(abortQueue, CrossShardLimits.ItemsPerCommandMax);
            Propose(new Proposal(LedgerOperation.CrossShardAbortIfUndecided) { Ids = ids }, CrossShardCommand.EncodeAbortIfUndecided(ids));
        }
    }

    /// <summary>
    /// Whether lingering Finish and Retire proposals go out in this flush: with this shard's other proposals (one fsync
    /// round for all), when something waits for them or a command's worth is queued, and at every tick.
    /// </summary>
    private bool BackgroundDue() =>
        backgroundDue || prepareQueue.Count > 0 || decideQueue.Count > 0 || abortQueue.Count > 0 ||
        finishQueue.Count >= CrossShardLimits.FinishItemsPerCommandMax || retireQueue.Count >= CrossShardLimits.ItemsPerCommandMax;

    /// <summary>Lingering Finish or Retire proposals are due: the host should run a round even if nothing else happens.</summary>
    public bool HasDueProposals =>
        isLeader && backgroundDue &&
        ((finishQueue.Count > 0 && CanPropose(LedgerOperation.CrossShardFinish)) || (retireQueue.Count > 0 && CanPropose(LedgerOperation.CrossShardRetire)));

    /// <summary>The host proposes writes of this shard in this round: lingering Finish and Retire proposals go along.</summary>
    public void OnHostProposing() => backgroundDue = true;

    private bool CanPropose(LedgerOperation operation) => inFlight[(int)operation] < CrossShardLimits.ProposalsInFlightMax;

    // As many prepares as keep the command within its byte bound and the result bytes within one apply's result buffer.
    private List<PrepareItem> TakePrepares()
    {
        var budget = new CommandBudget(timestampsMax: 1);
        var taken = 0;
        while (taken < prepareQueue.Count && taken < CrossShardLimits.ItemsPerCommandMax &&
            budget.TryAdd(CrossShardCommand.PrepareItemBytes(prepareQueue[taken]), CrossShardCommand.PrepareItemResultBytes(prepareQueue[taken]), 0))
        {
            taken++;
        }

        return TakeFirst(prepareQueue, taken);
    }

    // As many decides as keep the command's bytes, results and timestamps (one per event) within their bounds.
    private List<DecideItem> TakeDecides()
    {
        var budget = new CommandBudget(LedgerLimits.BatchEventsMax);
        var taken = 0;
        while (taken < decideQueue.Count && taken < CrossShardLimits.ItemsPerCommandMax &&
            budget.TryAdd(CrossShardCommand.DecideItemBytes(decideQueue[taken]), 1 + decideQueue[taken].Events.Length, decideQueue[taken].Events.Length))
        {
            taken++;
        }

        return TakeFirst(decideQueue, taken);
    }

    // As many finishes as keep the command's timestamps (one per copy an item may store) within a batch's.
    private List<FinishItem> TakeFinishes()
    {
        var budget = new CommandBudget(LedgerLimits.BatchEventsMax);
        var taken = 0;
        while (taken < finishQueue.Count && taken < CrossShardLimits.FinishItemsPerCommandMax &&
            budget.TryAdd(CrossShardCommand.FinishItemBytes, 1, CrossShardCommand.FinishTimestamps(finishQueue[taken])))
        {
            taken++;
        }

        return TakeFirst(finishQueue, taken);
    }

    private static List<T> TakeFirst<T>(List<T> queue, int taken)
    {
        Invariant.Check(taken > 0, "one transaction's item always fits a command");
        var items = queue.GetRange(0, taken);
        queue.RemoveRange(0, taken);
        return items;
    }

    /// <summary>
    /// What a command being filled still has room for: its bytes within <see cref="CrossShardLimits.CommandBytesMax"/>, its
    /// results within <see cref="LedgerLimits.ResultBytesMax"/> and its timestamps within <paramref name="timestampsMax"/>
    /// (a command that consumes a fixed count passes 1 and adds 0 per item).
    /// </summary>
    private struct CommandBudget(int timestampsMax)
    {
        private int bytes = LedgerLimits.CommandHeaderBytes + 2;
        private int resultBytes;
        private int timestamps;

        public bool TryAdd(int itemBytes, int itemResultBytes, int itemTimestamps)
        {
            if (bytes + itemBytes > CrossShardLimits.CommandBytesMax || resultBytes + itemResultBytes > LedgerLimits.ResultBytesMax ||
                timestamps + itemTimestamps > timestampsMax)
            {
                return false;
            }

            bytes += itemBytes;
            resultBytes += itemResultBytes;
            timestamps += itemTimestamps;
            return true;
        }
    }

    private static List<T> Take<T>(List<T> queue, int max)
    {
        var count = Math.Min(queue.Count, max);
        var items = queue.GetRange(0, count);
        queue.RemoveRange(0, count);
        return items;
    }

    private void Propose(Proposal proposal, byte[] command)
    {
        var token = ++nextProposalToken;
        proposals.Add(token, proposal);
        inFlight[(int)proposal.Operation]++;
        actions.Enqueue(new ProposeAction(token, command));
    }

    private void ClearProposals()
    {
        prepareQueue.Clear();
        prepareQueued.Clear();
        claimsByTransaction.Clear();
        decideQueue.Clear();
        finishQueue.Clear();
        finishQueued.Clear();
        finishProposed.Clear();
        retireQueue.Clear();
        abortQueue.Clear();
        queryAskers.Clear();
        proposals.Clear();
        Array.Clear(inFlight);
    }

    private sealed class Proposal(LedgerOperation operation)
    {
        public LedgerOperation Operation { get; } = operation;

        public List<PrepareItem>? Prepares { get; init; }

        public List<DecideItem>? Decides { get; init; }

        public List<FinishItem>? Finishes { get; init; }

        public List<UInt128>? Ids { get; init; }
    }
}
