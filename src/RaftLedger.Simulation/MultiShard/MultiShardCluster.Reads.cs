using RaftLedger.Common;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>
/// A linearizable read of one account: started at <see cref="StartedAt"/> (real-time order), served by a leader once it
/// applied <see cref="ReadIndex"/> and <see cref="FinishIndex"/>, the last cross-shard Finish that leader had proposed when
/// it first looked at the read (in <see cref="FinishTerm"/>; looked at again by a newer leader).
/// </summary>
internal sealed record AccountRead(UInt128 AccountId, int Shard, long StartedAt, ulong ReadIndex, UInt128 Because)
{
    public ulong FinishTerm { get; init; }

    public ulong FinishIndex { get; init; }

    /// <summary>The leader term in which the read found a fence up on its account (0: none).</summary>
    public ulong FencedInTerm { get; init; }

    /// <summary>
    /// The term in which every fence on the account ended while the read waited: at that leader, fences set later are of
    /// transfers answered after the read started, so it no longer waits for them (0: none).
    /// </summary>
    public ulong PastFenceInTerm { get; init; }
}

// The real-time order checks (issue 6 §2, "reads of a single account stay linearizable"): once a client is told
// a transfer is created, every read of its accounts that starts afterwards, and the validation of every transfer
// submitted afterwards, must see it posted.
public sealed partial class MultiShardCluster
{
    private readonly List<AccountRead> _reads = [];

    // Per shard: the highest log index any replica has applied (so committed), ever. A read that starts now and
    // is served from a replica that applied at least this much reflects every entry committed before it started.
    private ulong[]? _appliedMax;

    /// <summary>Account reads served and checked.</summary>
    public long ReadsChecked { get; private set; }

    /// <summary>Refusals for lack of credits that were checked against what clients had been told before.</summary>
    public long RefusalsChecked { get; private set; }

    private void NoteApplied(ShardReplica replica)
    {
        _appliedMax ??= new ulong[Options.ShardCount];
        _appliedMax[replica.Shard] = Math.Max(_appliedMax[replica.Shard], replica.AppliedIndex);
    }

    /// <summary>A client was told <paramref name="result"/> for <paramref name="transfer"/>: read its accounts now (sometimes), and check a refusal.</summary>
    private void AfterAnswer(Transfer transfer, CreateTransferResult result)
    {
        if (result is CreateTransferResult.Created or CreateTransferResult.Exists)
        {
            // A post/void names no accounts: read its pending transfer's.
            var accounts = transfer.PendingId != 0 && Workload.TryGetFate(transfer.PendingId, out var pending) ? pending.Submitted : transfer;
            if (_readRandom.Chance(Options.ReadAfterAcknowledgementProbability))
            {
                StartRead(accounts.DebitAccountId, transfer.Id);
                StartRead(accounts.CreditAccountId, transfer.Id);
            }
        }
        else if (result == CreateTransferResult.ExceedsCredits && !BankChecker.IsBalancing(transfer))
        {
            CheckRefusalForCredits(transfer);
        }
    }

    private void StartRead(UInt128 accountId, UInt128 because)
    {
        var shard = ShardRouter.ShardOf(accountId, Options.ShardCount);
        _appliedMax ??= new ulong[Options.ShardCount];
        _reads.Add(new AccountRead(accountId, shard, Workload.NextSequence(), _appliedMax[shard], because));
    }

    /// <summary>
    /// Serves every read whose shard has a ready leader that applied its read index (ReadIndex-style) and the last Finish it
    /// proposed before it first saw the read, and whose driver does not fence the account (a fenced leg on it may be of a
    /// transfer whose client was answered); a read that found a fence up waits for the last Finish proposed once it ends.
    /// </summary>
    private void ServeReads()
    {
        for (var i = _reads.Count - 1; i >= 0; i--)
        {
            var read = _reads[i];
            foreach (var replica in _shardReplicas[read.Shard])
            {
                if (Options.HostBug == MultiShardHostBug.StaleReads)
                {
                    if (replica.Ledger is { } any)
                    {
                        CheckRead(read, replica, any);
                        _reads.RemoveAt(i);
                        break;
                    }

                    continue;
                }

                if (!replica.IsReadyLeader || replica.Ledger is not { } ledger || !FollowedByQuorum(replica))
                {
                    continue; // ReadIndex: only a leader a quorum still follows serves reads (a deposed one still leading its own term does not).
                }

                if (read.FinishTerm != replica.ReadyTerm)
                {
                    read = read with { FinishTerm = replica.ReadyTerm, FinishIndex = replica.LastFinishTerm == replica.ReadyTerm ? replica.LastFinishIndex : 0 };
                    _reads[i] = read;
                }

                var fenced = read.PastFenceInTerm != replica.ReadyTerm && replica.Driver?.IsAccountFenced(read.AccountId) == true &&
                    Options.HostBug != MultiShardHostBug.IgnoreFences;
                if (fenced)
                {
                    // Once the fence ends (the leg's Finish proposed), the read waits for the last Finish proposed then.
                    _reads[i] = read with { FinishTerm = 0, FencedInTerm = replica.ReadyTerm };
                    continue;
                }

                if (read.FencedInTerm == replica.ReadyTerm && read.PastFenceInTerm != replica.ReadyTerm)
                {
                    // Its fences ended before FinishIndex was taken above, so that covers the Finish that ended them; fences
                    // this leader sets from now on are of transfers answered after the read started.
                    read = read with { PastFenceInTerm = replica.ReadyTerm };
                    _reads[i] = read;
                }

                if (replica.AppliedIndex >= Math.Max(read.ReadIndex, read.FinishIndex))
                {
                    CheckRead(read, replica, ledger);
                    _reads.RemoveAt(i);
                    break;
                }
            }
        }
    }

    /// <summary>True when a majority of the shard's replicas (running ones) are not in a newer term than this leader's.</summary>
    private bool FollowedByQuorum(ShardReplica leader)
    {
        var following = 0;
        foreach (var replica in _shardReplicas[leader.Shard])
        {
            following += replica.Core is { } core && core.Term <= leader.ReadyTerm ? 1 : 0;
        }

        return following > MultiShardLimits.ReplicasPerShard / 2;
    }

    /// <summary>Every transfer acknowledged before the read started is posted on the account: stored on its shard and counted in its balances.</summary>
    private void CheckRead(AccountRead read, ShardReplica replica, LedgerStateMachine ledger)
    {
        ReadsChecked++;
        UInt128 debits = 0, credits = 0, debitsPendingMax = 0, creditsPendingMax = 0;
        var now = Workload.NextSequence();
        foreach (var fate in Workload.FatesOf(read.AccountId))
        {
            var t = fate.Submitted;
            if ((t.Flags & TransferFlags.Pending) != 0 && fate.SubmittedAt < now && !(fate.Outcome == TransferOutcome.Failed && fate.AnsweredAt < read.StartedAt))
            {
                // What a read may show as pending: the pending transfers submitted so far and not refused before it started.
                debitsPendingMax += t.DebitAccountId == read.AccountId ? t.Amount : 0;
                creditsPendingMax += t.CreditAccountId == read.AccountId ? t.Amount : 0;
            }

            if (fate.AcknowledgedAt >= read.StartedAt)
            {
                continue;
            }

            if (!ledger.TryLookupTransfer(t.Id, out var stored))
            {
                throw new SimulationFailureException(
                    $"not linearizable: transfer {t.Id} was acknowledged created before a read of account {read.AccountId} started (read after transfer {read.Because}), " +
                    $"but the read on shard {read.Shard} (node {replica.NodeId}, applied {replica.AppliedIndex}, read index {read.ReadIndex}) does not see it posted");
            }

            // Posted amounts: plain transfers (a pending one posts nothing; a post names no accounts, its amount is a bonus).
            // A balancing transfer moved the amount stored (at most the one asked for).
            var posted = (t.Flags & TransferFlags.Pending) == 0;
            var amount = BankChecker.IsBalancing(t) ? stored.Amount : t.Amount;
            debits += posted && t.DebitAccountId == read.AccountId ? amount : 0;
            credits += posted && t.CreditAccountId == read.AccountId ? amount : 0;
        }

        var found = Options.HostBug == MultiShardHostBug.ReadsShowReservations
            ? ledger.TryLookupAccountWithReservations(read.AccountId, out var account)
            : ledger.TryLookupAccount(read.AccountId, out account);
        Invariant.Check(found, "the bank's accounts exist once set up");
        if (account.DebitsPosted < debits || account.CreditsPosted < credits)
        {
            throw new SimulationFailureException(
                $"not linearizable: account {read.AccountId} read on shard {read.Shard} shows debits_posted {account.DebitsPosted}, credits_posted {account.CreditsPosted}, " +
                $"but transfers acknowledged before the read started sum to {debits} and {credits}");
        }

        // Only two-phase transfers make a committed prefix hold pending amounts: anything beyond what the pending
        // transfers submitted so far could hold is an undecided cross-shard leg's reservation, which clients must not see.
        if (account.DebitsPending > debitsPendingMax || account.CreditsPending > creditsPendingMax)
        {
            throw new SimulationFailureException(
                $"not linearizable: account {read.AccountId} read on shard {read.Shard} (node {replica.NodeId}) shows debits_pending {account.DebitsPending}, " +
                $"credits_pending {account.CreditsPending}, but its pending transfers submitted so far hold at most {debitsPendingMax} and {creditsPendingMax}: an undecided cross-shard reservation was visible");
        }
    }

    /// <summary>
    /// A transfer refused with exceeds_credits: its debit account's credits when it was checked were at least the
    /// transfers acknowledged as crediting it before it was submitted; its debits at most every other transfer
    /// debiting it that was submitted before the refusal and not already answered with a failure before this one
    /// was submitted (those hold no reservation). If even that leaves room for the amount, the refusal saw stale state.
    /// </summary>
    private void CheckRefusalForCredits(Transfer refused)
    {
        var fate = Workload.TryGetFate(refused.Id, out var f) ? f : null;
        Invariant.Check(fate is not null, "clients only submit registered transfers");
        UInt128 creditsAtLeast = 0, debitsAtMost = refused.Amount;
        foreach (var other in Workload.FatesOf(refused.DebitAccountId))
        {
            var t = other.Submitted;
            // (A balancing credit may have moved less than it asked for: it counts as nothing here.)
            if (t.CreditAccountId == refused.DebitAccountId && other.AcknowledgedAt < fate!.SubmittedAt && (t.Flags & TransferFlags.Pending) == 0 && !BankChecker.IsBalancing(t))
            {
                creditsAtLeast += t.Amount;
            }

            var answeredFailedBefore = other.Outcome == TransferOutcome.Failed && other.AnsweredAt < fate!.SubmittedAt;
            if (t.DebitAccountId == refused.DebitAccountId && t.Id != refused.Id && other.SubmittedAt < fate!.AnsweredAt && !answeredFailedBefore)
            {
                debitsAtMost += t.Amount;
            }
        }

        RefusalsChecked++;
        if (debitsAtMost <= creditsAtLeast)
        {
            throw new SimulationFailureException(
                $"not linearizable: transfer {refused.Id} of {refused.Amount} was refused exceeds_credits, but account {refused.DebitAccountId} had at least {creditsAtLeast} credits " +
                $"acknowledged before it was submitted and at most {debitsAtMost - refused.Amount} debits in flight or done");
        }
    }

    /// <summary>Reads not served yet (their shard had no replica caught up).</summary>
    public int ReadsOutstanding => _reads.Count;
}
