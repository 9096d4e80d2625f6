using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// The side table in memory. Cross-shard commands read about ten side records per transfer on each replica
/// (prepared legs, reserved totals, leg holds, claims, coordinator records), mostly records written or deleted
/// moments before. A RocksDB point read of such a key searches the memtables past their deletion markers, which
/// cost a fifth of a node's CPU at 100 % cross-shard transfers (docs/PERFORMANCE.md, fifteenth session). So every
/// record of the tables that only hold unfinished work is kept here too, write-through, and answers reads and
/// enumerations; RocksDB stays the durable copy and is read again on every reload.
/// </summary>
/// <remarks>
/// Tombstones and expiry entries (both expiry tables) are left out: tombstones are never deleted and expiry entries
/// live as long as their pending transfers, so those tables grow with history rather than with work in flight. When the mirrored
/// tables outgrow their limits (<see cref="RocksLedgerLimits.SideMirrorEntriesMaxDefault"/>,
/// <see cref="RocksLedgerLimits.SideMirrorBytesMaxDefault"/>), as a long partition that leaves many legs prepared can
/// make them, the mirror is dropped and every read goes to RocksDB until the next reload, which rebuilds it if the
/// tables are small again. Answers are the same either way.
/// </remarks>
public sealed partial class RocksLedgerStore
{
    private const int SideTagCount = byte.MaxValue + 1;

    // Invariant: while sideMirrorComplete, sideMirror[t] holds exactly the committed records of every mirrored
    // table t (null when it has none), and sideMirrorEntries / sideMirrorBytes count them and their values.
    private readonly Dictionary<UInt128, byte[]>?[] sideMirror = new Dictionary<UInt128, byte[]>?[SideTagCount];
    private readonly int sideMirrorEntriesMax;
    private readonly long sideMirrorBytesMax;
    private bool sideMirrorComplete;
    private int sideMirrorEntries;
    private long sideMirrorBytes;

    // Counts commits, so that an enumeration can tell that the state it walks changed underneath it.
    private ulong commitsApplied;

    /// <summary>True while reads of mirrored side tables are answered from memory (for tests and status).</summary>
    public bool SideMirrorActive => sideMirrorComplete;

    private static bool IsMirrored(byte table) =>
        table is not CrossShardTables.Tombstone and not CrossShardTables.Expiry and not CrossShardTables.ExpiryOrder;

    /// <summary>Rebuilds the mirror from RocksDB (on open and whenever the shard's state was replaced).</summary>
    private void LoadSideMirror()
    {
        DropSideMirror();
        using var cursor = shard.NewCursor(RocksTable.SideRecords);
        while (cursor.MoveNext())
        {
            var key = cursor.Key;
            Invariant.Check(key.Length == 1 + IdBytes, "side-table keys are a tag and a u128");
            if (IsMirrored(key[0]) && !TryMirrorPut(key[0], BinaryPrimitives.ReadUInt128BigEndian(key[1..]), cursor.Value.ToArray()))
            {
                DropSideMirror();
                return;
            }
        }

        sideMirrorComplete = true;
    }

    private void DropSideMirror()
    {
        Array.Clear(sideMirror);
        sideMirrorComplete = false;
        sideMirrorEntries = 0;
        sideMirrorBytes = 0;
    }

    /// <summary>Applies a committed batch's side-table writes, in order; drops the mirror when it outgrows its limits.</summary>
    private void MirrorSideRecords(LedgerWriteSet writes)
    {
        commitsApplied++;
        if (!sideMirrorComplete)
        {
            return;
        }

        foreach (ref readonly var record in writes.SideRecords)
        {
            if (!IsMirrored(record.Table))
            {
                continue;
            }

            // The ledger hands over its own arrays and may reuse them; the mirror keeps a copy of a put.
            if (record.Value is null)
            {
                MirrorDelete(record.Table, record.Key);
            }
            else if (!TryMirrorPut(record.Table, record.Key, record.Value.AsSpan().ToArray()))
            {
                DropSideMirror();
                return;
            }
        }
    }

    /// <summary>Keeps <paramref name="value"/> itself (callers pass an array nobody else holds); false when over the limits.</summary>
    private bool TryMirrorPut(byte table, UInt128 key, byte[] value)
    {
        var records = sideMirror[table] ??= [];
        if (records.Remove(key, out var old))
        {
            sideMirrorEntries--;
            sideMirrorBytes -= old.Length;
        }

        records[key] = value;
        sideMirrorEntries++;
        sideMirrorBytes += value.Length;
        return sideMirrorEntries <= sideMirrorEntriesMax && sideMirrorBytes <= sideMirrorBytesMax;
    }

    private void MirrorDelete(byte table, UInt128 key)
    {
        if (sideMirror[table] is { } records && records.Remove(key, out var old))
        {
            sideMirrorEntries--;
            sideMirrorBytes -= old.Length;
        }
    }

    /// <summary>A mirrored record, copied (callers may keep it); false when the mirror cannot answer for this table.</summary>
    private bool TryGetMirrored(byte table, UInt128 key, out bool found, out byte[] value)
    {
        value = [];
        found = false;
        if (!sideMirrorComplete || !IsMirrored(table))
        {
            return false;
        }

        if (sideMirror[table] is { } records && records.TryGetValue(key, out var stored))
        {
            value = stored.AsSpan().ToArray();
            found = true;
        }

        return true;
    }

    /// <summary>Every side record ascending by (table, key): mirrored tables from memory, the others from RocksDB table by table.</summary>
    private IEnumerable<SideRecord> EnumerateSideRecordsMirrored()
    {
        var startedAt = commitsApplied;
        for (var tag = 0; tag < SideTagCount; tag++)
        {
            // Each tag is copied when reached: a commit in between would mix two states (or a dropped mirror skip records).
            Invariant.Check(commitsApplied == startedAt, "the store committed while its side table was being enumerated");
            var table = (byte)tag;
            var records = IsMirrored(table) ? MirroredInOrder(table) : StoredInOrder(table);
            foreach (var record in records)
            {
                yield return record;
            }
        }
    }

    // A sorted copy taken up front, so a commit between two steps of the caller's enumeration cannot break it.
    private SideRecord[] MirroredInOrder(byte table)
    {
        if (sideMirror[table] is not { Count: > 0 } records)
        {
            return [];
        }

        var ordered = new SideRecord[records.Count];
        var next = 0;
        foreach (var (key, value) in records)
        {
            ordered[next++] = new SideRecord(table, key, value.AsSpan().ToArray());
        }

        Array.Sort(ordered, static (a, b) => a.Key.CompareTo(b.Key));
        return ordered;
    }

    private IEnumerable<SideRecord> StoredInOrder(byte table)
    {
        // Bounded to this tag's keys, so the iterator does not walk other tables' deletion markers.
        var lower = new byte[RocksLedgerLimits.TablePrefixBytes + 1];
        RocksKeys.Write(lower, shard.ShardId, RocksTable.SideRecords, [table]);
        var upper = RocksKeys.TableEnd(shard.ShardId, RocksTable.SideRecords);
        if (table < byte.MaxValue)
        {
            upper = (byte[])lower.Clone();
            upper[^1] = (byte)(table + 1);
        }

        using var cursor = shard.NewRawCursor(lower, upper);
        while (cursor.MoveNext())
        {
            var key = cursor.Key;
            Invariant.Check(key.Length == 1 + IdBytes && key[0] == table, "side-table keys are a tag and a u128");
            yield return new SideRecord(table, BinaryPrimitives.ReadUInt128BigEndian(key[1..]), cursor.Value.ToArray());
        }
    }
}
