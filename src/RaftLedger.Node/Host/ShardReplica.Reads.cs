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

        readsAwaitingIndex.Add(nextReadContext, reads);
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
            if (readsAwaitingIndex.Remove(context, out var reads))
            {
                readsAwaitingApply.Add((state.Index, reads));
            }
        }

        CompleteReadsUpTo(applied);
    }

    private void CompleteReadsUpTo(ulong appliedIndex)
    {
        for (var i = 0; i < readsAwaitingApply.Count;)
        {
            var (index, reads) = readsAwaitingApply[i];
            if (index > appliedIndex)
            {
                i++;
                continue;
            }

            foreach (var read in reads)
            {
                read.Complete(ShardCallResult.Ok(ExecuteRead(read)));
            }

            readsAwaitingApply.RemoveAt(i);
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
