using RaftLedger.Common;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// Puts the records of one batch in key order before they are staged. RocksDB's memtable skip list remembers
/// where its last insert went and starts the next search from there, so keys that arrive in ascending order
/// land next to each other for a few node visits each, where keys in the ledger's order (random accounts,
/// tables interleaved) each pay a full descent from the top: on the apply benchmark that was most of the cost
/// of a transfer. Reused across batches: nothing is allocated once the buffers have grown to the largest batch.
/// </summary>
public sealed class RocksKeyOrder
{
    private UInt128[] keys = new UInt128[64];
    private int[] positions = new int[64];

    /// <summary>
    /// Positions 0..count-1 of records whose 16-byte keys <paramref name="keyOf"/> gives, sorted by key; records
    /// with equal keys keep their original relative order (so a run of one account's index entries stays in
    /// timestamp order). The span is valid until the next call.
    /// </summary>
    public ReadOnlySpan<int> Sort<TKeys>(int count, TKeys keyOf)
        where TKeys : IKeySource, allows ref struct
    {
        Grow(count);
        var keySpan = keys.AsSpan(0, count);
        var positionSpan = positions.AsSpan(0, count);
        for (var i = 0; i < count; i++)
        {
            keySpan[i] = keyOf.KeyAt(i);
            positionSpan[i] = i;
        }

        if (IsAscending(keySpan))
        {
            return positionSpan; // e.g. time-based transfer ids: nothing to do, and equal keys are in order already
        }

        // Keys and positions sorted together by key (UInt128's own comparison: no delegate, no allocation).
        // The sort is not stable, so each run of equal keys gets its positions back in ascending order.
        keySpan.Sort(positionSpan);
        var runStart = 0;
        for (var i = 1; i <= count; i++)
        {
            if (i == count || keySpan[i] != keySpan[runStart])
            {
                if (i - runStart > 1)
                {
                    positionSpan[runStart..i].Sort();
                }

                runStart = i;
            }
        }

        Invariant.Check(count == 0 || keySpan[0] <= keySpan[^1]);
        return positionSpan;
    }

    private static bool IsAscending(ReadOnlySpan<UInt128> keySpan)
    {
        for (var i = 1; i < keySpan.Length; i++)
        {
            if (keySpan[i] < keySpan[i - 1])
            {
                return false;
            }
        }

        return true;
    }

    private void Grow(int count)
    {
        Invariant.Check(count >= 0);
        if (keys.Length < count)
        {
            var length = Math.Max(count, keys.Length * 2);
            keys = new UInt128[length];
            positions = new int[length];
        }
    }

    /// <summary>The sort key of record <c>i</c> (implemented by ref structs over the batch's spans, so the loop above is specialised).</summary>
    public interface IKeySource
    {
        UInt128 KeyAt(int index);
    }
}
