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
/// Expiry entries (both expiry tables) are left out: they live as long as their pending transfers, so those tables
/// grow with history rather than with work in flight. Tombstones are never deleted either, but every Decide looks one
/// up and they are written only when a coordinator died before deciding, so they are kept as a key set of their own
/// (their values are empty), bounded by <see cref="RocksLedgerLimits.TombstoneMirrorEntriesMaxDefault"/>: past it, only
/// tombstone reads go back to RocksDB, until the next reload. When the mirrored
/// tables outgrow their limits (<see cref="RocksLedgerLimits.SideMirrorEntriesMaxDefault"/>,
/// <see cref="RocksLedgerLimits.SideMirrorBytesMaxDefault"/>), as a long partition that leaves many legs prepared can
/// make them, the mirror is dropped and every read goes to RocksDB until the next reload, which rebuilds it if the
/// tables are small again. Answers are the same either way.
/// <para>
/// The four derived tables (<see cref="CrossShardTables.IsDerived"/>) are different: RocksDB never holds them. Every
/// record of theirs follows from a Prepared record and is written and removed with it, so they live here only, outside
/// the mirror's limits (they are a few small records per prepared leg, so they grow only as the Prepared table does),
/// and every reload derives them again from the Prepared records (<see cref="LedgerStateMachine.DeriveLegRecords"/>).
/// That saves four of the ~8 side-record writes and deletes per cross-shard transfer on a participant's replicas.
/// </para>
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

    // Invariant: derivedRecords[t] holds exactly the committed records of derived table t (CrossShardTables.IsDerived;
    // null when it has none), whatever sideMirrorComplete says. They are never written to RocksDB: they are what the
    // Prepared records imply, rebuilt from those on every reload (LedgerStateMachine.DeriveLegRecords).
    private readonly Dictionary<UInt128, byte[]>?[] derivedRecords = new Dictionary<UInt128, byte[]>?[CrossShardTables.DerivedTableMax + 1];

    // Invariant: when not null (only while sideMirrorComplete), exactly the keys of the committed tombstones.
    private HashSet<UInt128>? tombstones;
    private readonly int tombstoneMirrorEntriesMax;

    // Counts commits, so that an enumeration can tell that the state it walks changed underneath it.
    private ulong commitsApplied;

    /// <summary>True while reads of mirrored side tables are answered from memory (for tests and status).</summary>
    public bool SideMirrorActive => sideMirrorComplete;

    /// <summary>True while tombstone reads are answered from memory (for tests and status).</summary>
    public bool TombstoneMirrorActive => sideMirrorComplete && tombstones is not null;

    private static bool IsMirrored(byte table) =>
        table is not CrossShardTables.Tombstone and not CrossShardTables.Expiry and not CrossShardTables.ExpiryOrder && !CrossShardTables.IsDerived(table);

    /// <summary>Whether a side record of <paramref name="table"/> goes to RocksDB (derived tables live in memory only).</summary>
    private static bool IsStored(byte table) => !CrossShardTables.IsDerived(table);

    /// <summary>Rebuilds the mirror from RocksDB (on open and whenever the shard's state was replaced).</summary>
    private void LoadSideMirror()
    {
        LoadSideMirrorTables();
        LoadDerivedRecords();
    }

    private void LoadSideMirrorTables()
    {
        DropSideMirror();
        tombstones = [];
        // Tag by tag runs, so the expiry tables (one record per pending transfer held, maybe millions) are not walked.
        for (var first = 0; first < SideTagCount; first++)
        {
            if (!IsLoaded((byte)first))
            {
                continue;
            }

            var last = first;
            while (last + 1 < SideTagCount && IsLoaded((byte)(last + 1)))
            {
                last++;
            }

            if (!TryLoadTags((byte)first, (byte)last))
            {
                DropSideMirror();
                return;
            }

            first = last;
        }

        sideMirrorComplete = true;
    }

    private static bool IsLoaded(byte table) => IsMirrored(table) || table == CrossShardTables.Tombstone;

    /// <summary>
    /// Rebuilds the derived tables from the Prepared records (from the mirror when it holds them, else RocksDB), and
    /// deletes any derived record a build that still stored them left in RocksDB: nothing reads those.
    /// </summary>
    private void LoadDerivedRecords()
    {
        Array.Clear(derivedRecords);
        var prepared = sideMirrorComplete ? MirroredInOrder(CrossShardTables.Prepared) : StoredInOrder(CrossShardTables.Prepared);
        foreach (var record in LedgerStateMachine.DeriveLegRecords(prepared))
        {
            (derivedRecords[record.Table] ??= [])[record.Key] = record.Value!;
        }

        DeleteStoredDerivedRecords();
    }

    private void DeleteStoredDerivedRecords()
    {
        if (shard.IsInstalling)
        {
            return; // Only a complete state is cleaned; the next reload after the install does it.
        }

        using var cleanup = shard.NewBatch();
        Span<byte> key = stackalloc byte[1 + IdBytes];
        for (var table = 0; table <= CrossShardTables.DerivedTableMax; table++)
        {
            if (!CrossShardTables.IsDerived((byte)table))
            {
                continue;
            }

            foreach (var stale in StoredInOrder((byte)table))
            {
                cleanup.Delete(RocksTable.SideRecords, SideKey(key, stale.Table, stale.Key));
            }
        }

        if (cleanup.Count > 0)
        {
            cleanup.CommitWithoutIndex();
        }
    }

    /// <summary>Loads the records of tags first..last into the mirror; false when it outgrew its limits.</summary>
    private bool TryLoadTags(byte first, byte last)
    {
        using var cursor = SideTagsCursor(first, last);
        while (cursor.MoveNext())
        {
            var key = cursor.Key;
            Invariant.Check(key.Length == 1 + IdBytes && key[0] >= first && key[0] <= last, "side-table keys are a tag and a u128");
            var id = BinaryPrimitives.ReadUInt128BigEndian(key[1..]);
            if (key[0] == CrossShardTables.Tombstone)
            {
                MirrorTombstonePut(id, cursor.Value.Length);
            }
            else if (!TryMirrorPut(key[0], id, cursor.Value.ToArray()))
            {
                return false;
            }
        }

        return true;
    }

    private void DropSideMirror()
    {
        Array.Clear(sideMirror);
        tombstones = null;
        sideMirrorComplete = false;
        sideMirrorEntries = 0;
        sideMirrorBytes = 0;
    }

    /// <summary>Applies a committed batch's side-table writes, in order; drops the mirror when it outgrows its limits.</summary>
    private void MirrorSideRecords(LedgerWriteSet writes)
    {
        commitsApplied++;
        KeepDerivedRecords(writes);
        if (!sideMirrorComplete)
        {
            return;
        }

        foreach (ref readonly var record in writes.SideRecords)
        {
            if (record.Table == CrossShardTables.Tombstone)
            {
                MirrorTombstoneWrite(record);
                continue;
            }

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

    /// <summary>Applies a committed batch's writes of derived tables, in order: their only copy (a put is copied).</summary>
    private void KeepDerivedRecords(LedgerWriteSet writes)
    {
        foreach (ref readonly var record in writes.SideRecords)
        {
            if (!CrossShardTables.IsDerived(record.Table))
            {
                continue;
            }

            if (record.Value is null)
            {
                derivedRecords[record.Table]?.Remove(record.Key);
            }
            else
            {
                (derivedRecords[record.Table] ??= [])[record.Key] = record.Value.AsSpan().ToArray();
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

    private void MirrorTombstoneWrite(in SideRecord record)
    {
        if (record.Value is null)
        {
            tombstones?.Remove(record.Key);
        }
        else
        {
            MirrorTombstonePut(record.Key, record.Value.Length);
        }
    }

    /// <summary>Adds a tombstone to the key set; stops mirroring tombstones past the limit or for one that carries a value.</summary>
    private void MirrorTombstonePut(UInt128 key, int valueLength)
    {
        if (tombstones is not null && (valueLength != 0 || (tombstones.Add(key) && tombstones.Count > tombstoneMirrorEntriesMax)))
        {
            tombstones = null;
        }
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
        if (CrossShardTables.IsDerived(table))
        {
            if (derivedRecords[table] is { } derived && derived.TryGetValue(key, out var kept))
            {
                value = kept.AsSpan().ToArray();
                found = true;
            }

            return true;
        }

        if (table == CrossShardTables.Tombstone && TombstoneMirrorActive)
        {
            found = tombstones!.Contains(key);
            return true;
        }

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
            foreach (var record in TableInOrder((byte)tag))
            {
                yield return record;
            }
        }
    }

    /// <summary>
    /// One table ascending by key, from memory when the mirror holds it (a copy), else from RocksDB. Mirror complete
    /// only, except for a derived table, which is always in memory.
    /// </summary>
    private IEnumerable<SideRecord> TableInOrder(byte table) =>
        CrossShardTables.IsDerived(table) ? InOrder(table, derivedRecords[table])
        : IsMirrored(table) ? MirroredInOrder(table)
        : table == CrossShardTables.Tombstone && tombstones is { } keys ? TombstonesInOrder(keys)
        : StoredInOrder(table);

    private static SideRecord[] TombstonesInOrder(HashSet<UInt128> keys)
    {
        var ordered = keys.ToArray();
        Array.Sort(ordered);
        return Array.ConvertAll(ordered, static key => new SideRecord(CrossShardTables.Tombstone, key, []));
    }

    // A sorted copy taken up front, so a commit between two steps of the caller's enumeration cannot break it.
    private SideRecord[] MirroredInOrder(byte table) => InOrder(table, sideMirror[table]);

    private static SideRecord[] InOrder(byte table, Dictionary<UInt128, byte[]>? records)
    {
        if (records is not { Count: > 0 })
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
        using var cursor = SideTagsCursor(table, table);
        while (cursor.MoveNext())
        {
            var key = cursor.Key;
            Invariant.Check(key.Length == 1 + IdBytes && key[0] == table, "side-table keys are a tag and a u128");
            yield return new SideRecord(table, BinaryPrimitives.ReadUInt128BigEndian(key[1..]), cursor.Value.ToArray());
        }
    }

    /// <summary>A cursor over the side records of tags <paramref name="first"/> to <paramref name="last"/> (inclusive), in key order.</summary>
    private RocksShardCursor SideTagsCursor(byte first, byte last)
    {
        var lower = new byte[RocksLedgerLimits.TablePrefixBytes + 1];
        RocksKeys.Write(lower, shard.ShardId, RocksTable.SideRecords, [first]);
        var upper = RocksKeys.TableEnd(shard.ShardId, RocksTable.SideRecords);
        if (last < byte.MaxValue)
        {
            upper = (byte[])lower.Clone();
            upper[^1] = (byte)(last + 1);
        }

        return shard.NewRawCursor(lower, upper);
    }
}
