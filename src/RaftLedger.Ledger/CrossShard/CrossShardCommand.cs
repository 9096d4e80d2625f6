using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

/// <summary>
/// Encodes the cross-shard ledger commands (operations 3..7). They share the create commands' 16-byte
/// header (<see cref="LedgerCommand"/>): version, operation, 2 zero bytes, u32 timestamp count, u64 batch
/// timestamp (0 here: the host stamps it with <see cref="LedgerCommand.SetBatchTimestamp"/>). The body
/// follows, little-endian: u16 item count, then the items (see each method). Legs are u16 event index,
/// u8 sides, u8 <see cref="BalancingGuard"/>, 128-byte transfer, and with <see cref="BalancingGuard.Clamped"/> the
/// u128 requested amount.
/// </summary>
public static class CrossShardCommand
{
    /// <summary>Bytes of one encoded leg at most (a balancing leg carries its requested amount too).</summary>
    public const int LegBytes = 4 + LedgerLimits.RecordSizeBytes + 16;

    /// <summary>Result bytes per leg of a Prepare: per side outcome (1) and ledger (4).</summary>
    public const int LegReportBytes = 10;

    /// <summary>
    /// Prepare: per item u128 transaction id, u16 home shard, u16 leg count, legs. Consumes 1 timestamp
    /// (the prepared-at time). Results per item: u8 prepared (1) or refused (0), then
    /// <see cref="LegReportBytes"/> per leg.
    /// </summary>
    public static byte[] EncodePrepare(IReadOnlyList<PrepareItem> items)
    {
        var writer = Start(LedgerOperation.CrossShardPrepare, 1, items.Count);
        foreach (var item in items)
        {
            Invariant.Check(item.Legs.Length is > 0 and <= CrossShardLimits.ParticipantLegsMax);
            writer.U128(item.TransactionId);
            writer.U16(item.Home);
            writer.U16(item.Legs.Length);
            foreach (var leg in item.Legs)
            {
                writer.Leg(leg);
            }
        }

        return writer.ToArray();
    }

    /// <summary>Encoded bytes of one Prepare item (see <see cref="EncodePrepare"/>).</summary>
    public static int PrepareItemBytes(PrepareItem item)
    {
        var bytes = CrossShardLimits.PrepareItemHeaderBytes;
        foreach (var leg in item.Legs)
        {
            bytes += LegBytesOf(leg);
        }

        return bytes;
    }

    /// <summary>Encoded bytes of one leg (a clamped balancing leg carries its requested amount).</summary>
    public static int LegBytesOf(in Leg leg) => 4 + LedgerLimits.RecordSizeBytes + ((leg.Guard & BalancingGuard.Clamped) != 0 ? 16 : 0);

    /// <summary>Encoded bytes of one Decide item (see <see cref="EncodeDecide"/>), at most <see cref="CrossShardLimits.DecideItemBytesMax"/>.</summary>
    public static int DecideItemBytes(DecideItem item)
    {
        var n = item.Events.Length;
        var perEvent = LedgerLimits.RecordSizeBytes + 1 + ((item.Flags & DecideFlags.HomeInline) != 0 ? 11 : 0) +
            ((item.Flags & DecideFlags.Clamped) != 0 ? 17 : 0) + ((item.Flags & DecideFlags.PendingElsewhere) != 0 ? 8 : 0);
        var mask = (item.Flags & DecideFlags.ExpiresElsewhere) != 0 ? (n + 7) / 8 : 0;
        return 16 + 1 + 2 + (2 * item.Participants.Length) + 2 + (n * perEvent) + mask;
    }

    /// <summary>Result bytes of a Prepare of one item.</summary>
    public static int PrepareItemResultBytes(PrepareItem item) => 1 + (item.Legs.Length * LegReportBytes);

    /// <summary>Result bytes of a Prepare of these items.</summary>
    public static int PrepareResultBytes(IReadOnlyList<PrepareItem> items)
    {
        var bytes = 0;
        foreach (var item in items)
        {
            bytes += PrepareItemResultBytes(item);
        }

        return bytes;
    }

    /// <summary>
    /// Decide: per item u128 transaction id, u8 <see cref="DecideFlags"/>, u16 participant count, u16 each,
    /// u16 event count, then per event the 128-byte transfer and u8 leg status, and with
    /// <see cref="DecideFlags.HomeInline"/> also u8 home sides and the other participants' debit and credit reports
    /// (u8 outcome, u32 ledger each; replicas built before that flag cannot read such items), then (only with
    /// <see cref="DecideFlags.ExpiresElsewhere"/>) an event mask of ⌈n / 8⌉ bytes (<see cref="DecideFlags.MaskBits"/>), then (only with <see cref="DecideFlags.Clamped"/>)
    /// per event u8 <see cref="BalancingGuard"/> and u128 requested amount. Consumes one timestamp per
    /// event. Results per item: u8 <see cref="CrossShardDecision"/>, then one <see cref="CreateTransferResult"/> per event.
    /// </summary>
    public static byte[] EncodeDecide(IReadOnlyList<DecideItem> items)
    {
        var events = 0;
        foreach (var item in items)
        {
            events += item.Events.Length;
        }

        var writer = Start(LedgerOperation.CrossShardDecide, Math.Max(events, 1), items.Count);
        foreach (var item in items)
        {
            Invariant.Check(item.Events.Length is > 0 and <= CrossShardLimits.TransactionEventsMax);
            Invariant.Check(item.LegStatuses.Length == item.Events.Length);
            var flags = (item.Flags & DecideFlags.ExpiresElsewhere) != 0 ? item.Flags | DecideFlags.MaskBits : item.Flags & ~DecideFlags.MaskBits;
            writer.U128(item.TransactionId);
            writer.U8((byte)flags);
            writer.U16(item.Participants.Length);
            foreach (var participant in item.Participants)
            {
                writer.U16(participant);
            }

            writer.U16(item.Events.Length);
            var inline = (item.Flags & DecideFlags.HomeInline) != 0;
            Invariant.Check(!inline || (item.HomeSides.Length == item.Events.Length && item.Remote.Length == item.Events.Length));
            for (var i = 0; i < item.Events.Length; i++)
            {
                writer.Transfer(item.Events[i]);
                writer.U8(item.LegStatuses[i]);
                if (inline)
                {
                    writer.U8((byte)item.HomeSides[i]);
                    WriteSide(writer, item.Remote[i].Debit);
                    WriteSide(writer, item.Remote[i].Credit);
                }
            }

            Invariant.Check(((item.Flags & DecideFlags.ExpiresElsewhere) != 0) == (Array.IndexOf(item.ExpiresElsewhere, true) >= 0));
            if ((item.Flags & DecideFlags.ExpiresElsewhere) != 0)
            {
                WriteEventMask(writer, item.ExpiresElsewhere);
            }

            Invariant.Check(((item.Flags & DecideFlags.Clamped) != 0) == (item.Guards.Length != 0));
            if ((item.Flags & DecideFlags.Clamped) != 0)
            {
                Invariant.Check(item.Guards.Length == item.Events.Length && item.Requested.Length == item.Events.Length);
                for (var i = 0; i < item.Events.Length; i++)
                {
                    writer.U8((byte)item.Guards[i]);
                    writer.U128(item.Requested[i]);
                }
            }

            Invariant.Check(((item.Flags & DecideFlags.PendingElsewhere) != 0) == (item.PendingExpiresAt.Length != 0));
            if ((item.Flags & DecideFlags.PendingElsewhere) != 0)
            {
                Invariant.Check(item.PendingExpiresAt.Length == item.Events.Length);
                foreach (var expiresAt in item.PendingExpiresAt)
                {
                    writer.U64(expiresAt);
                }
            }
        }

        return writer.ToArray();
    }

    /// <summary>
    /// Finish: per item u128 transaction id, u8 commit (bit 0: commit, else abort; bit 1 <see cref="FinishCopiesFollow"/>)
    /// and u16 copies. Consumes per item max(copies, 1) timestamps (the copies a commit stores, one per leg); an item
    /// written before the copy count (bit 1 clear, no u16) reserved <see cref="LegacyFinishCopies"/>. Results: per item
    /// u8 finished now (1) or nothing to finish (0).
    /// </summary>
    public static byte[] EncodeFinish(IReadOnlyList<FinishItem> items)
    {
        Invariant.Check(items.Count <= CrossShardLimits.FinishItemsPerCommandMax);
        var timestamps = 0;
        foreach (var item in items)
        {
            timestamps += FinishTimestamps(item);
        }

        var writer = Start(LedgerOperation.CrossShardFinish, Math.Max(timestamps, 1), items.Count);
        foreach (var item in items)
        {
            Invariant.Check(item.Copies is >= 0 and <= CrossShardLimits.ParticipantLegsMax);
            writer.U128(item.TransactionId);
            writer.U8((byte)((item.Commit ? 1 : 0) | FinishCopiesFollow));
            writer.U16(item.Copies);
        }

        return writer.ToArray();
    }

    /// <summary>Encoded bytes of one Finish item: u128 id, u8 commit, u16 copies.</summary>
    public const int FinishItemBytes = 19;

    /// <summary>Bit 1 of a Finish item's commit byte: a u16 copy count follows.</summary>
    public const byte FinishCopiesFollow = 2;

    /// <summary>Timestamps a Finish item written before the copy count reserved (the old transaction bound).</summary>
    public const int LegacyFinishCopies = 64;

    /// <summary>Timestamps one Finish item consumes.</summary>
    public static int FinishTimestamps(FinishItem item) => Math.Max(item.Copies, 1);

    internal static FinishItem ReadFinishItem(ref ByteReader reader)
    {
        var id = reader.U128();
        var commit = reader.U8();
        if ((commit & ~(1 | FinishCopiesFollow)) != 0)
        {
            throw new InvalidDataException($"A cross-shard Finish item has commit byte {commit}: it is corrupt.");
        }

        var copies = (commit & FinishCopiesFollow) != 0 ? reader.U16() : LegacyFinishCopies;
        if (copies > CrossShardLimits.ParticipantLegsMax)
        {
            throw new InvalidDataException($"A cross-shard Finish item reserves {copies} copies (at most {CrossShardLimits.ParticipantLegsMax}): it is corrupt.");
        }

        return new FinishItem(id, (commit & 1) != 0, copies);
    }

    /// <summary>One bit per event, bit i in byte i / 8.</summary>
    private static void WriteEventMask(ByteWriter writer, bool[] mask)
    {
        for (var start = 0; start < mask.Length; start += 8)
        {
            var b = 0;
            for (var bit = 0; bit < 8 && start + bit < mask.Length; bit++)
            {
                b |= mask[start + bit] ? 1 << bit : 0;
            }

            writer.U8((byte)b);
        }
    }

    /// <summary>Reads an event mask: ⌈n / 8⌉ bytes with <see cref="DecideFlags.MaskBits"/>, else (written before it) a u64.</summary>
    internal static bool[] ReadEventMask(ref ByteReader reader, DecideFlags flags, int events)
    {
        var mask = new bool[events];
        if ((flags & DecideFlags.MaskBits) == 0)
        {
            var bits = reader.U64();
            if (events < 64 && bits >> events != 0)
            {
                throw new InvalidDataException("A cross-shard Decide's u64 mask names events it does not have: it is corrupt.");
            }

            for (var i = 0; i < Math.Min(events, 64); i++)
            {
                mask[i] = (bits & (1UL << i)) != 0;
            }

            return mask;
        }

        for (var start = 0; start < events; start += 8)
        {
            var b = reader.U8();
            for (var bit = 0; bit < 8 && start + bit < events; bit++)
            {
                mask[start + bit] = (b & (1 << bit)) != 0;
            }
        }

        return mask;
    }

    /// <summary>Retire: u128 transaction ids whose every participant finished. Consumes 1 timestamp. Results: per item u8 retired (1) or unknown (0).</summary>
    public static byte[] EncodeRetire(IReadOnlyList<UInt128> transactionIds) => EncodeIds(LedgerOperation.CrossShardRetire, transactionIds);

    /// <summary>
    /// AbortIfUndecided: u128 transaction ids a participant asked about. Consumes 1 timestamp. Results:
    /// per item u8 <see cref="CrossShardDecision"/> (Committed or Aborted: a tombstone is written when nothing was decided).
    /// </summary>
    public static byte[] EncodeAbortIfUndecided(IReadOnlyList<UInt128> transactionIds) =>
        EncodeIds(LedgerOperation.CrossShardAbortIfUndecided, transactionIds);

    /// <summary>A side report (u8 outcome, u32 ledger) in a Decide item or a Prepared message.</summary>
    internal static void WriteSide(ByteWriter writer, SideReport side)
    {
        writer.U8((byte)side.Outcome);
        writer.U32(side.Ledger);
    }

    /// <summary>Reads what <see cref="WriteSide"/> wrote; an unknown outcome is corrupt data from <paramref name="source"/>.</summary>
    internal static SideReport ReadSide(ref ByteReader reader, string source)
    {
        var outcome = (LegOutcome)reader.U8();
        if (outcome > LegOutcome.PendingStatus)
        {
            throw new InvalidDataException($"A cross-shard {source} carries unknown leg outcome {(byte)outcome}: it is corrupt.");
        }

        return new SideReport(outcome, reader.U32());
    }

    private static byte[] EncodeIds(LedgerOperation operation, IReadOnlyList<UInt128> ids)
    {
        var writer = Start(operation, 1, ids.Count);
        foreach (var id in ids)
        {
            writer.U128(id);
        }

        return writer.ToArray();
    }

    private static ByteWriter Start(LedgerOperation operation, int timestamps, int items)
    {
        Invariant.Check(timestamps is > 0 and <= LedgerLimits.BatchEventsMax);
        Invariant.Check(items is > 0 and <= ushort.MaxValue);
        var writer = new ByteWriter(LedgerLimits.CommandHeaderBytes + 64);
        writer.U8(LedgerCommand.Version);
        writer.U8((byte)operation);
        writer.U16(0);
        writer.U32((uint)timestamps);
        writer.U64(0);
        writer.U16(items);
        return writer;
    }

    internal static CoordinatorRecord ReadCoordinatorRecord(ReadOnlySpan<byte> value)
    {
        var reader = new ByteReader(value);
        var decision = (CrossShardDecision)reader.U8();
        var participants = new int[reader.Count(CrossShardLimits.TransactionShardsMax)];
        for (var i = 0; i < participants.Length; i++)
        {
            participants[i] = reader.U16();
        }

        // The event ids (a retry of one of them waits until the transaction is finished) came later:
        // a record written without them reads as having none.
        var eventIds = reader.Remaining == 0 ? [] : new UInt128[reader.Count(CrossShardLimits.TransactionEventsMax)];
        for (var i = 0; i < eventIds.Length; i++)
        {
            eventIds[i] = reader.U128();
        }

        reader.End();
        return new CoordinatorRecord(decision, participants) { EventIds = eventIds };
    }

    internal static byte[] WriteCoordinatorRecord(CrossShardDecision decision, ReadOnlySpan<int> participants, ReadOnlySpan<Transfer> events)
    {
        var writer = new ByteWriter(5 + (2 * participants.Length) + (16 * events.Length));
        writer.U8((byte)decision);
        writer.U16(participants.Length);
        foreach (var participant in participants)
        {
            writer.U16(participant);
        }

        writer.U16(events.Length);
        foreach (ref readonly var t in events)
        {
            writer.U128(t.Id);
        }

        return writer.ToArray();
    }

    internal static PreparedRecord ReadPreparedRecord(ReadOnlySpan<byte> value)
    {
        var reader = new ByteReader(value);
        var home = reader.U16();
        var preparedAt = reader.U64();
        var legs = new Leg[reader.Count(CrossShardLimits.ParticipantLegsMax)];
        for (var i = 0; i < legs.Length; i++)
        {
            legs[i] = reader.Leg();
        }

        reader.End();
        return new PreparedRecord(home, preparedAt, legs);
    }

    /// <summary>Encodes a participant's prepared record (the value of a <see cref="CrossShardTables.Prepared"/> side record).</summary>
    public static byte[] WritePreparedRecord(int home, ulong preparedAt, ReadOnlySpan<Leg> legs)
    {
        var writer = new ByteWriter(12 + (legs.Length * LegBytes));
        writer.U16(home);
        writer.U64(preparedAt);
        writer.U16(legs.Length);
        foreach (var leg in legs)
        {
            writer.Leg(leg);
        }

        return writer.ToArray();
    }

    /// <summary>Reads a coordinator record of the store (for hosts and tests that inspect state).</summary>
    public static bool TryGetCoordinatorRecord(ILedgerStore store, UInt128 transactionId, out CoordinatorRecord record)
    {
        ArgumentNullException.ThrowIfNull(store);
        record = null!;
        if (!store.TryGetSideRecord(CrossShardTables.Coordinator, transactionId, out var value))
        {
            return false;
        }

        record = ReadCoordinatorRecord(value);
        return true;
    }

    /// <summary>Reads a participant's prepared record of the store.</summary>
    public static bool TryGetPreparedRecord(ILedgerStore store, UInt128 transactionId, out PreparedRecord record)
    {
        ArgumentNullException.ThrowIfNull(store);
        record = null!;
        if (!store.TryGetSideRecord(CrossShardTables.Prepared, transactionId, out var value))
        {
            return false;
        }

        record = ReadPreparedRecord(value);
        return true;
    }
}
