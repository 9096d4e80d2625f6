using System.Buffers.Binary;
using RaftLedger.Ledger;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

internal sealed partial class ShardReplica
{
    /// <summary>Asks Raft for one read index covering every read that arrived this round (ReadIndex, safe mode).</summary>
    private void StartReads()
    {
        if (newReads.Count == 0)
        {
            return;
        }

        var context = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(context, ++nextReadContext);
        var result = Raft.ReadIndex(context);
        var reads = newReads.ToList();
        newReads.Clear();
        if (!result.IsAccepted)
        {
            var failure = ShardCallResult.Fail(ShardCallStatus.NoLeader, $"shard {Shard}: {result.Describe()}", result.LeaderHint);
            reads.ForEach(r => r.Complete(failure));
            return;
        }

        // A read that finds a fence up must also see the Finish that ends it, even if the fence is gone when it is served.
        if (driver is not null && driver.FencingTransactionCount != 0)
        {
            readsFencedAtStart.UnionWith(reads.Where(ReadIsFenced));
        }

        // A coordinator may have answered a client once this leader proposed a Finish (FinishTaken): a read that starts
        // now must see it, so it also waits for the last Finish proposed so far, in that Finish's term.
        var finishTerm = lastFinishTerm == Raft.Term ? lastFinishTerm : 0;
        readsAwaitingIndex.Add(nextReadContext, (finishTerm != 0 ? lastFinishIndex : 0, finishTerm, reads));
    }

    /// <summary>Read indexes confirmed by a quorum: each waits until this replica has applied that far.</summary>
    public void OnReadStates(IReadOnlyList<ReadState> states)
    {
        foreach (var state in states)
        {
            if (state.Context.Length != 8)
            {
                continue;
            }

            var context = BinaryPrimitives.ReadUInt64LittleEndian(state.Context.Span);
            if (readsAwaitingIndex.Remove(context, out var waiting))
            {
                readsAwaitingApply.Add((Math.Max(state.Index, waiting.FinishIndex), waiting.FinishTerm, waiting.Reads));
            }
        }

        CompleteReadsUpTo(applied);
    }

    private void CompleteReadsUpTo(ulong appliedIndex)
    {
        for (var i = 0; i < readsAwaitingApply.Count;)
        {
            var (index, finishTerm, reads) = readsAwaitingApply[i];
            if (index > appliedIndex)
            {
                i++;
                continue;
            }

            if (finishTerm != 0 && (Raft.Term != finishTerm || Raft.Role != RaftRole.Leader))
            {
                // The Finish the reads wait for was proposed in a term this replica no longer leads: what it applied at
                // that index may be another leader's entry. The client retries on the new leader.
                var lost = ShardCallResult.Fail(ShardCallStatus.NotLeader, $"node {Raft.Id} lost the leadership of shard {Shard} during a read", Raft.Leader);
                reads.ForEach(r => r.Complete(lost));
                readsFencedAtStart.ExceptWith(reads);
                readsPastFence.ExceptWith(reads);
                readsAwaitingApply.RemoveAt(i);
                continue;
            }

            reads.RemoveAll(TryCompleteRead);
            if (reads.Count == 0)
            {
                readsAwaitingApply.RemoveAt(i);
            }
            else
            {
                i++;
            }
        }
    }

    /// <summary>
    /// Serves a read whose index is applied, unless the driver has not taken office yet (it has not found the inherited legs)
    /// or a fenced cross-shard leg touches one of its accounts or ids: its transfer may have been answered, so the read
    /// leaves its group (true) and waits in fencedReads until the leg's Finish is proposed, then for that Finish to apply.
    /// </summary>
    private bool TryCompleteRead(ShardRequest read)
    {
        if (driver is not null && driverTerm == 0)
        {
            return false;
        }

        if (driver is not null && !readsPastFence.Remove(read) && (readsFencedAtStart.Remove(read) || ReadIsFenced(read)))
        {
            fencedReads.Add((driverTerm, read));
            return true;
        }

        read.Complete(ShardCallResult.Ok(ExecuteRead(read)));
        return true;
    }

    /// <summary>
    /// Fenced reads whose fence ended wait for the last Finish proposed in their term (the one that ended the fence, or a
    /// later one); in another term they fail over like any read waiting for a Finish (CompleteReadsUpTo).
    /// </summary>
    private void RequeueUnfencedReads()
    {
        for (var i = fencedReads.Count - 1; i >= 0; i--)
        {
            var (term, read) = fencedReads[i];
            if (term == driverTerm && ReadIsFenced(read))
            {
                continue;
            }

            fencedReads.RemoveAt(i);
            readsPastFence.Add(read); // Fences set from now on are of transfers answered after the read started.
            var finishIndex = lastFinishTerm == term ? lastFinishIndex : 0;
            readsAwaitingApply.Add((finishIndex, term, [read]));
        }
    }

    private bool ReadIsFenced(ShardRequest read)
    {
        if (driver!.FencingTransactionCount == 0)
        {
            return false;
        }

        switch (read.Kind)
        {
            case ShardRequestKind.LookupAccounts:
                foreach (var id in ShardPayload.DecodeIds(read.Payload.Span))
                {
                    if (driver.IsAccountFenced(id))
                    {
                        return true;
                    }
                }

                return false;
            case ShardRequestKind.LookupTransfers:
                foreach (var id in ShardPayload.DecodeIds(read.Payload.Span))
                {
                    if (driver.IsTransferFenced(id))
                    {
                        return true;
                    }
                }

                return false;
            case ShardRequestKind.AccountTransfers or ShardRequestKind.AccountBalances:
                return driver.IsAccountFenced(ShardPayload.DecodeFilter(read.Payload.Span).AccountId);
            default:
                return false;
        }
    }

    private byte[] ExecuteRead(ShardRequest read)
    {
        var payload = read.Payload.Span;
        switch (read.Kind)
        {
            case ShardRequestKind.LookupAccounts:
                {
                    var ids = ShardPayload.DecodeIds(payload);
                    var found = new Account[ids.Length];
                    return ShardPayload.EncodeAccounts(found.AsSpan(0, Ledger.LookupAccounts(ids, found)));
                }

            case ShardRequestKind.LookupTransfers:
                {
                    var ids = ShardPayload.DecodeIds(payload);
                    var found = new Transfer[ids.Length];
                    return ShardPayload.EncodeTransfers(found.AsSpan(0, Ledger.LookupTransfers(ids, found)));
                }

            case ShardRequestKind.AccountTransfers:
                {
                    var filter = ShardPayload.DecodeFilter(payload);
                    var found = new Transfer[Math.Min(filter.Limit, (uint)LedgerLimits.QueryResultsMax)];
                    return ShardPayload.EncodeTransfers(found.AsSpan(0, Ledger.GetAccountTransfers(filter, found)));
                }

            default:
                {
                    var filter = ShardPayload.DecodeFilter(payload);
                    var found = new AccountBalance[Math.Min(filter.Limit, (uint)LedgerLimits.QueryResultsMax)];
                    var count = Ledger.GetAccountBalances(filter, found);
                    var bytes = new byte[count * LedgerLimits.RecordSizeBytes];
                    for (var i = 0; i < count; i++)
                    {
                        LedgerCodec.WriteAccountBalance(bytes.AsSpan(i * LedgerLimits.RecordSizeBytes), found[i]);
                    }

                    return bytes;
                }
        }
    }
}
