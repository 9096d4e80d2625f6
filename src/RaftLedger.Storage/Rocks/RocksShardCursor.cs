using RaftLedger.Common;
using RocksDbSharp;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// Forward iteration over one table of one shard, optionally as of a RocksDB snapshot. Keys are returned
/// without the shard/table prefix. Spans are valid until the next <see cref="MoveNext"/>.
/// </summary>
public sealed class RocksShardCursor : IDisposable
{
    private readonly Iterator iterator;
    private readonly ReadOptions readOptions;
    private readonly bool reverse;
    private bool started;

    internal RocksShardCursor(RocksDb db, uint shardId, RocksTable table, ReadOnlySpan<byte> startKey, Snapshot? snapshot)
        : this(db, RocksKeys.TableStart(shardId, table), RocksKeys.TableEnd(shardId, table), startKey, snapshot)
    {
    }

    /// <summary>A cursor over the raw keys in [<paramref name="lower"/>, <paramref name="upper"/>).</summary>
    internal RocksShardCursor(RocksDb db, byte[] lower, byte[] upper, ReadOnlySpan<byte> startKey, Snapshot? snapshot, bool reverse = false)
    {
        Invariant.Check(!reverse || startKey.IsEmpty, "a reverse cursor starts at the upper bound");
        this.reverse = reverse;
        Invariant.Check(lower.AsSpan().SequenceCompareTo(upper) < 0);
        readOptions = new ReadOptions().SetIterateLowerBound(lower).SetIterateUpperBound(upper).SetFillCache(false);
        if (snapshot is not null)
        {
            readOptions.SetSnapshot(snapshot);
        }

        iterator = db.NewIterator(readOptions: readOptions);
        if (reverse)
        {
            iterator.SeekToLast();
        }
        else if (startKey.IsEmpty)
        {
            iterator.Seek(lower);
        }
        else
        {
            var seekKey = new byte[lower.Length + startKey.Length];
            lower.CopyTo(seekKey, 0);
            startKey.CopyTo(seekKey.AsSpan(lower.Length));
            iterator.Seek(seekKey);
        }
    }

    /// <summary>The table key of the current entry (without the shard and table prefix).</summary>
    public ReadOnlySpan<byte> Key => iterator.GetKeySpan()[RocksLedgerLimits.TablePrefixBytes..];

    /// <summary>The full key of the current entry, prefix included.</summary>
    public ReadOnlySpan<byte> RawKey => iterator.GetKeySpan();

    public ReadOnlySpan<byte> Value => iterator.GetValueSpan();

    /// <summary>Advances to the next entry (the first on the first call; backwards for a reverse cursor); false at the end of the range.</summary>
    public bool MoveNext()
    {
        if (started && reverse)
        {
            iterator.Prev();
        }
        else if (started)
        {
            iterator.Next();
        }

        started = true;
        if (iterator.Valid())
        {
            return true;
        }

        // An iterator also stops on an I/O or checksum error; that must not look like the end of the data.
        Native.Instance.rocksdb_iter_get_error(iterator.Handle);
        return false;
    }

    public void Dispose()
    {
        iterator.Dispose();
        GC.KeepAlive(readOptions);
    }
}
