using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Storage.Wal;

/// <summary>
/// Splits one scheduler round's group writes into appends of at most <see cref="WalOptions.FlushBytesMax"/> bytes
/// each, for a caller that appends them one after the other (each awaited before the next is queued, so they reach
/// the disk in order). A group's write is split only when it alone is too big: its snapshot marker goes with its
/// first entries and its hard state with its last, so that a crash between two appends leaves each group exactly as
/// a torn tail would: a prefix of its new entries without the new hard state, nothing acknowledged yet.
/// </summary>
public static class WalAppendSplitter
{
    /// <summary>The appends, in order; a single append (the input itself) when everything fits.</summary>
    public static List<IReadOnlyList<WalGroupWrite>> Split(IReadOnlyList<WalGroupWrite> writes, int flushBytesMax)
    {
        ArgumentNullException.ThrowIfNull(writes);
        var appends = new List<IReadOnlyList<WalGroupWrite>>();
        var current = new List<WalGroupWrite>();
        long currentBytes = 0;
        foreach (var write in writes)
        {
            foreach (var piece in Pieces(write, flushBytesMax))
            {
                var bytes = piece.StoredBytes();
                if (currentBytes + bytes > flushBytesMax && current.Count > 0)
                {
                    appends.Add(current);
                    current = [];
                    currentBytes = 0;
                }

                current.Add(piece);
                currentBytes += bytes;
            }
        }

        if (current.Count > 0)
        {
            appends.Add(current);
        }

        return appends;
    }

    /// <summary>The write itself if it fits in one append; otherwise consecutive runs of its entries that each fit.</summary>
    private static IEnumerable<WalGroupWrite> Pieces(WalGroupWrite write, int flushBytesMax)
    {
        if (write.StoredBytes() <= flushBytesMax)
        {
            yield return write;
            yield break;
        }

        var first = 0;
        while (first < write.Entries.Count)
        {
            var snapshot = first == 0 ? write.Snapshot : null;
            var count = EntriesThatFit(write, first, flushBytesMax, snapshot);
            var last = first + count == write.Entries.Count;
            yield return new WalGroupWrite(write.GroupId, Slice(write.Entries, first, count), last ? write.HardState : null, snapshot);
            first += count;
        }
    }

    private static int EntriesThatFit(WalGroupWrite write, int first, int flushBytesMax, SnapshotMetadata? snapshot)
    {
        // Room is kept for the hard state and snapshot records, so the last piece never overflows.
        long bytes = new WalGroupWrite(write.GroupId, [], write.HardState, snapshot).StoredBytes();
        var count = 0;
        while (first + count < write.Entries.Count)
        {
            var entryBytes = WalRecord.StoredBytes(write.Entries[first + count].Data.Length);
            if (count > 0 && bytes + entryBytes > flushBytesMax)
            {
                break;
            }

            bytes += entryBytes;
            count++;
        }

        Invariant.Check(count > 0, "every piece carries at least one entry");
        return count;
    }

    private static Entry[] Slice(IReadOnlyList<Entry> entries, int first, int count)
    {
        var slice = new Entry[count];
        for (var i = 0; i < count; i++)
        {
            slice[i] = entries[first + i];
        }

        return slice;
    }
}
