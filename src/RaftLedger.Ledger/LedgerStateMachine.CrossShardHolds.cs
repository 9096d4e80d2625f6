using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger;

// The records a prepared transaction implies besides its Prepared record: leg holds, id claims, closing marks and
// the accounts' reserved totals (CrossShardTables.IsDerived). Prepare writes them in the write that puts the
// Prepared record, and Finish and Decide delete or subtract them in the write that deletes it, so at every commit
// they are a function of the Prepared records. A store may therefore keep them in memory only and rebuild them with
// DeriveLegRecords whenever it loads its state (docs/PERFORMANCE.md, "Twenty-ninth session"); the simulator checks
// the function against what the apply path wrote (DerivedLegRecordsMismatch).
public sealed partial class LedgerStateMachine
{
    /// <summary>
    /// The derived side records (<see cref="CrossShardTables.IsDerived"/>) that the given Prepared records imply,
    /// as Prepare writes them: table by table, keys ascending. Pure.
    /// </summary>
    public static List<SideRecord> DeriveLegRecords(IEnumerable<SideRecord> preparedRecords)
    {
        ArgumentNullException.ThrowIfNull(preparedRecords);
        var tables = new SortedDictionary<UInt128, byte[]>[CrossShardTables.DerivedTableMax + 1];
        var reserved = new Dictionary<UInt128, (UInt128 Debits, UInt128 Credits)>();
        foreach (var prepared in preparedRecords)
        {
            Invariant.Check(prepared.Table == CrossShardTables.Prepared && prepared.Value is not null, "derived from Prepared records");
            var record = CrossShardCommand.ReadPreparedRecord(prepared.Value);
            foreach (var leg in record.Legs)
            {
                AddLegRecords(tables, reserved, leg, prepared.Key);
            }
        }

        foreach (var (account, (debits, credits)) in reserved)
        {
            if (debits != UInt128.Zero || credits != UInt128.Zero)
            {
                Put(tables, CrossShardTables.Reserved, account, WriteReserved(debits, credits));
            }
        }

        var derived = new List<SideRecord>();
        for (var table = 0; table < tables.Length; table++)
        {
            foreach (var (key, value) in tables[table] ?? [])
            {
                derived.Add(new SideRecord((byte)table, key, value));
            }
        }

        return derived;
    }

    /// <summary>
    /// Null when the store's derived side records are exactly what its Prepared records imply, else the first
    /// difference (for the simulator's always-on check and tests). Committed state.
    /// </summary>
    public string? DerivedLegRecordsMismatch()
    {
        var expected = DeriveLegRecords(store.EnumerateSideRecords(CrossShardTables.Prepared));
        var actual = new List<SideRecord>();
        for (var table = 0; table <= CrossShardTables.DerivedTableMax; table++)
        {
            if (CrossShardTables.IsDerived((byte)table))
            {
                actual.AddRange(store.EnumerateSideRecords((byte)table));
            }
        }

        for (var i = 0; i < Math.Max(expected.Count, actual.Count); i++)
        {
            var e = i < expected.Count ? expected[i] : default(SideRecord?);
            var a = i < actual.Count ? actual[i] : default(SideRecord?);
            if (e is null || a is null || e.Value.Table != a.Value.Table || e.Value.Key != a.Value.Key || !e.Value.Value.AsSpan().SequenceEqual(a.Value.Value))
            {
                return $"derived side record #{i}: the Prepared records imply {Describe(e)}, the store holds {Describe(a)}";
            }
        }

        return null;
    }

    private static string Describe(SideRecord? record) =>
        record is { } r ? $"table {r.Table} key {r.Key} value {Convert.ToHexString(r.Value ?? [])}" : "nothing";

    // Mirrors SetLegHolds, SetIdClaims, HoldClosedAccounts and AdjustLegReserved at Prepare.
    private static void AddLegRecords(SortedDictionary<UInt128, byte[]>[] tables, Dictionary<UInt128, (UInt128 Debits, UInt128 Credits)> reserved, in Leg leg, UInt128 transactionId)
    {
        var holder = new byte[16];
        BinaryPrimitives.WriteUInt128LittleEndian(holder, transactionId);
        Put(tables, CrossShardTables.LegHold, leg.Transfer.Id, holder);
        if ((leg.Sides & LegSides.Status) != 0)
        {
            Put(tables, CrossShardTables.LegHold, leg.Transfer.PendingId, holder);
        }

        if ((leg.Sides & LegSides.Id) != 0)
        {
            Put(tables, CrossShardTables.IdClaim, leg.Transfer.Id, holder);
        }

        if ((leg.Sides & LegSides.Resolve) != 0)
        {
            return; // A post/void reserves nothing and closes nothing at Prepare.
        }

        foreach (var side in SidesOf(leg.Sides))
        {
            var account = side == BalanceSide.Debit ? leg.Transfer.DebitAccountId : leg.Transfer.CreditAccountId;
            if (Closes(leg.Transfer, side))
            {
                Put(tables, CrossShardTables.Closing, account, holder);
            }

            var (debits, credits) = reserved.GetValueOrDefault(account);
            reserved[account] = side == BalanceSide.Debit ? (debits + leg.Transfer.Amount, credits) : (debits, credits + leg.Transfer.Amount);
        }
    }

    private static void Put(SortedDictionary<UInt128, byte[]>[] tables, byte table, UInt128 key, byte[] value)
    {
        var records = tables[table] ??= [];
        // Prepare refuses an event id, pending id or closing account another prepared transaction holds, so no two
        // Prepared records imply the same hold; if they did, which one the live state kept would depend on history.
        Invariant.Check(!records.TryGetValue(key, out var held) || held.AsSpan().SequenceEqual(value), "two prepared transactions hold the same key");
        records[key] = value;
    }
}
