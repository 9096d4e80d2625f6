using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

/// <summary>
/// One chain's events indexed by id, built once per transaction (coordinator) or per Decide item (every replica), so
/// the chain's lookups are linear in its length instead of quadratic: a chain may hold
/// <see cref="CrossShardLimits.TransactionEventsMax"/> events. Answers what <see cref="CrossShardSameChain"/>'s scans
/// answer (a test compares them). Pure.
/// </summary>
public sealed class CrossShardChainIndex
{
    private const TransferFlags PostOrVoid = TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer;

    // Invariant: firstById[id] is the smallest index with that id; firstResolverOf[p] the smallest post/void index naming p.
    private readonly Dictionary<UInt128, int> firstById;
    private readonly Dictionary<UInt128, int> firstResolverOf;
    private readonly int[] pendingIndex;
    private readonly int[] resolvedBy;
    private readonly bool[] resolvedByPost;

    private CrossShardChainIndex(int count)
    {
        firstById = new Dictionary<UInt128, int>(count);
        firstResolverOf = [];
        pendingIndex = new int[count];
        resolvedBy = new int[count];
        resolvedByPost = new bool[count];
    }

    /// <summary>Indexes <paramref name="events"/> (ids, pending ids and flags only: a resolved post/void keeps them).</summary>
    public static CrossShardChainIndex Of(ReadOnlySpan<Transfer> events)
    {
        var index = new CrossShardChainIndex(events.Length);
        for (var i = 0; i < events.Length; i++)
        {
            index.firstById.TryAdd(events[i].Id, i);
            if ((events[i].Flags & PostOrVoid) != 0)
            {
                index.firstResolverOf.TryAdd(events[i].PendingId, i);
            }
        }

        Array.Fill(index.resolvedBy, -1);
        for (var i = 0; i < events.Length; i++)
        {
            var j = (events[i].Flags & PostOrVoid) != 0 && index.firstById.TryGetValue(events[i].PendingId, out var first) && first < i ? first : -1;
            index.pendingIndex[i] = j;
            if (j >= 0 && index.resolvedBy[j] < 0)
            {
                index.resolvedBy[j] = i;
                index.resolvedByPost[j] = (events[i].Flags & TransferFlags.PostPendingTransfer) != 0;
            }
        }

        return index;
    }

    /// <summary>Events indexed.</summary>
    public int Count => pendingIndex.Length;

    /// <summary>The first event with <paramref name="id"/> when it comes before <paramref name="before"/>; -1 otherwise.</summary>
    public int EarlierIndexOf(UInt128 id, int before) =>
        firstById.TryGetValue(id, out var first) && first < before ? first : -1;

    /// <summary>As <see cref="CrossShardSameChain.PendingIndexOf"/>: the earlier event a post/void's pending id names, or -1.</summary>
    public int PendingIndexOf(int index)
    {
        Invariant.Check(index >= 0 && index < pendingIndex.Length);
        return pendingIndex[index];
    }

    /// <summary>As <see cref="CrossShardSameChain.ResolvedLater"/>: whether a later event posts or voids event <paramref name="index"/>'s pending transfer.</summary>
    public bool ResolvedLater(int index, out bool posted)
    {
        Invariant.Check(index >= 0 && index < resolvedBy.Length);
        posted = resolvedByPost[index];
        return resolvedBy[index] >= 0;
    }

    /// <summary>The first post/void naming <paramref name="pendingId"/> when it comes before <paramref name="before"/>; -1 otherwise.</summary>
    public int EarlierResolverOf(UInt128 pendingId, int before) =>
        firstResolverOf.TryGetValue(pendingId, out var first) && first < before ? first : -1;
}
