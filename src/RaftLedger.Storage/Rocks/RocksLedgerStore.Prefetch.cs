using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// The batch's transfer-id lookups read in one RocksDB MultiGet (see <see cref="ILedgerStore.PrefetchTransfers"/>).
/// Every new transfer's id is looked up (duplicate and burnt-id checks). Ids above every stored one skip the
/// read already; the rest (ids that do not ascend, e.g. several clients' interleaved batches) cost one point
/// Get each, which probes every memtable's and file's filter for a key that is not there: about a fifth of the
/// node's CPU in the batched benchmark. MultiGet does those probes for the whole batch at once.
/// </summary>
public sealed partial class RocksLedgerStore
{
    /// <summary>Fewer lookups than this are left to point reads: MultiGet's setup would not pay off.</summary>
    internal const int PrefetchLookupsMin = 16;

    private const int TransferKeyBytes = RocksLedgerLimits.TablePrefixBytes + IdBytes;

    // Invariant: prefetched holds only answers read from the state committed last (cleared by every commit and
    // reload); id -> index into prefetchLengths/prefetchOffsets, length -1 when the id is absent.
    private readonly Dictionary<UInt128, int> prefetched = [];
    private UInt128[] prefetchIds = [];
    private byte[] prefetchKeys = [];
    private int[] prefetchLengths = [];
    private int[] prefetchOffsets = [];
    private byte[] prefetchValues = new byte[4 * LedgerCodec.TransferSizeBytes];

    /// <inheritdoc/>
    public void PrefetchTransfers(ReadOnlySpan<UInt128> ids)
    {
        EnsureCurrent();
        prefetched.Clear();
        var count = CollectStoredRange(ids);
        if (count < PrefetchLookupsMin)
        {
            return;
        }

        Array.Sort(prefetchIds, 0, count);
        count = Deduplicate(prefetchIds.AsSpan(0, count));
        for (var i = 0; i < count; i++)
        {
            var key = prefetchKeys.AsSpan(i * TransferKeyBytes, TransferKeyBytes);
            RocksKeys.WriteTablePrefix(key, shard.ShardId, RocksTable.Transfers);
            BinaryPrimitives.WriteUInt128BigEndian(key[RocksLedgerLimits.TablePrefixBytes..], prefetchIds[i]);
        }

        shard.MultiGetRaw(prefetchKeys, TransferKeyBytes, count, prefetchLengths, prefetchOffsets, ref prefetchValues);
        for (var i = 0; i < count; i++)
        {
            prefetched[prefetchIds[i]] = i;
        }
    }

    /// <summary>
    /// The Transfers-table value of <paramref name="id"/> from the last prefetch, copied to valueBuffer:
    /// false when the prefetch did not read it (then read it directly).
    /// </summary>
    private bool TryTakePrefetched(UInt128 id, out bool found, out int valueLength)
    {
        if (!prefetched.TryGetValue(id, out var index))
        {
            found = false;
            valueLength = 0;
            return false;
        }

        valueLength = prefetchLengths[index];
        found = valueLength >= 0;
        if (found)
        {
            prefetchValues.AsSpan(prefetchOffsets[index], valueLength).CopyTo(valueBuffer);
        }

        return true;
    }

    // Copies the ids that a point read would have to look up (not above every stored id) into prefetchIds.
    private int CollectStoredRange(ReadOnlySpan<UInt128> ids)
    {
        EnsurePrefetchCapacity(ids.Length);
        var count = 0;
        foreach (var id in ids)
        {
            if (!IsAboveEveryStoredId(id))
            {
                prefetchIds[count++] = id;
            }
        }

        return count;
    }

    private void EnsurePrefetchCapacity(int count)
    {
        if (prefetchIds.Length >= count)
        {
            return;
        }

        prefetchIds = new UInt128[count];
        prefetchKeys = new byte[count * TransferKeyBytes];
        prefetchLengths = new int[count];
        prefetchOffsets = new int[count];
    }

    // Removes repeats from a sorted span in place; returns the new length.
    private static int Deduplicate(Span<UInt128> sorted)
    {
        var kept = 0;
        for (var i = 0; i < sorted.Length; i++)
        {
            if (kept == 0 || sorted[kept - 1] != sorted[i])
            {
                sorted[kept++] = sorted[i];
            }
        }

        Invariant.Check(kept <= sorted.Length);
        return kept;
    }
}
