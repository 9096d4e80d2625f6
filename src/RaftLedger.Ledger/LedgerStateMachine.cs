using RaftLedger.Common;

namespace RaftLedger.Ledger;

/// <summary>
/// What <see cref="LedgerStateMachine.Apply"/> did: which operation, and how many result bytes it wrote
/// (one per event for create commands; for cross-shard commands the count of result bytes).
/// </summary>
public readonly record struct LedgerApplyResult(LedgerOperation Operation, int EventCount);

/// <summary>
/// The ledger: a pure, deterministic state machine with TigerBeetle's semantics for accounts and
/// transfers. No clock, no IO, no threads: the caller (the Raft leader, through the command) gives
/// each batch its timestamp, and all state goes through an <see cref="ILedgerStore"/>.
/// </summary>
/// <remarks>
/// Timestamps: a batch of n events with batch timestamp T gives event i (0-based) the timestamp
/// T - n + i + 1, so the last event gets T and timestamps strictly increase across the ledger's
/// life. The first event's timestamp must be above <see cref="LastTimestamp"/>; the leader must
/// therefore propose T &gt;= LastTimestamp + n (e.g. max(clock_ns, last + n)). A batch that breaks
/// this is a bug in the caller and stops the replica (<see cref="InvariantViolationException"/>).
/// Before the events run, every pending transfer whose expiry time is at or before the first
/// event's timestamp is expired (its reservation released).
/// </remarks>
public sealed partial class LedgerStateMachine
{
    private const AccountFlags AccountFlagsKnown = AccountFlags.Linked | AccountFlags.DebitsMustNotExceedCredits |
        AccountFlags.CreditsMustNotExceedDebits | AccountFlags.History | AccountFlags.Imported | AccountFlags.Closed;

    private const TransferFlags TransferFlagsKnown = (TransferFlags)0x1FF;

    private const int ExpiryChunk = 256;

    // How many events ahead the in-memory store's lookups are prefetched: enough to overlap
    // several cache misses, few enough that the lines are still cached when the event runs.
    private const int PrefetchDistance = 8;

    // Prefetch stages, each PrefetchDistance events after the previous one: a post or void needs
    // four dependent loads (pending id entry, pending record, account id entries, account records),
    // a new transfer two (id entries, account records: stages 2 and 3).
    private const int PrefetchStages = 4;

    private readonly ILedgerStore store;
    private readonly BatchState batch;
    private readonly ExpiryEntry[] expiredScratch = new ExpiryEntry[ExpiryChunk];
    // The transfer ids a batch will look up, handed to the store in one call (see ILedgerStore.PrefetchTransfers).
    private readonly UInt128[] lookupIdScratch = new UInt128[2 * LedgerLimits.BatchEventsMax];

    public LedgerStateMachine(ILedgerStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        this.store = store;
        batch = new BatchState(store);
    }

    /// <summary>
    /// True when <see cref="Transfer"/>'s memory layout is exactly its <see cref="LedgerCodec"/> form
    /// (little-endian machine, same field offsets, 128 bytes): then encoded events can be read in place.
    /// Checked once by encoding a probe both ways, so a layout change falls back to decoding.
    /// </summary>
    internal static readonly bool TransferLayoutMatchesCodec = ProbeTransferLayout();

    private static bool ProbeTransferLayout()
    {
        if (!BitConverter.IsLittleEndian || System.Runtime.CompilerServices.Unsafe.SizeOf<Transfer>() != LedgerCodec.TransferSizeBytes)
        {
            return false;
        }

        // Every field distinct and with no zero byte, so a moved or resized field changes the bytes.
        var probe = new Transfer
        {
            Id = new UInt128(0x0102030405060708, 0x090A0B0C0D0E0F10),
            DebitAccountId = new UInt128(0x1112131415161718, 0x191A1B1C1D1E1F20),
            CreditAccountId = new UInt128(0x2122232425262728, 0x292A2B2C2D2E2F30),
            Amount = new UInt128(0x3132333435363738, 0x393A3B3C3D3E3F40),
            PendingId = new UInt128(0x4142434445464748, 0x494A4B4C4D4E4F50),
            UserData128 = new UInt128(0x5152535455565758, 0x595A5B5C5D5E5F60),
            UserData64 = 0x6162636465666768,
            UserData32 = 0x696A6B6C,
            TimeoutSeconds = 0x6D6E6F70,
            Ledger = 0x71727374,
            Code = 0x7576,
            Flags = (TransferFlags)0x7778,
            Timestamp = 0x797A7B7C7D7E7F80,
        };
        Span<byte> encoded = stackalloc byte[LedgerCodec.TransferSizeBytes];
        Span<byte> raw = stackalloc byte[LedgerCodec.TransferSizeBytes];
        LedgerCodec.WriteTransfer(encoded, probe);
        System.Runtime.InteropServices.MemoryMarshal.Write(raw, in probe);
        return encoded.SequenceEqual(raw);
    }

    /// <summary>The store this ledger reads and writes.</summary>
    public ILedgerStore Store => store;

    /// <summary>Timestamp (ns) of the last event applied: the next batch's first event must be above it.</summary>
    public ulong LastTimestamp => store.LastTimestamp;

    /// <summary>
    /// Applies one encoded command (<see cref="LedgerCommand"/>) and writes one result byte per event
    /// into <paramref name="results"/> (a <see cref="CreateAccountResult"/> or <see cref="CreateTransferResult"/>
    /// value, by operation). <paramref name="appliedIndex"/> is the Raft index, passed to the store's commit.
    /// Throws <see cref="InvalidDataException"/> for bytes that are not a command (corruption, never user input).
    /// </summary>
    public LedgerApplyResult Apply(ReadOnlySpan<byte> command, Span<byte> results, ulong appliedIndex = 0)
    {
        if (!LedgerCommand.TryReadHeader(command, out var operation, out var timestamp, out var count))
        {
            throw new InvalidDataException($"A ledger command of {command.Length} bytes is malformed (bad header, version or length).");
        }

        if (operation >= LedgerOperation.CrossShardPrepare)
        {
            // Cross-shard commands: count is the timestamps they consume; their result bytes vary.
            return ApplyCrossShard(operation, command, count, timestamp, results, appliedIndex);
        }

        if (results.Length < count)
        {
            throw new ArgumentException($"The command has {count} events but results has room for {results.Length}.", nameof(results));
        }

        if (operation == LedgerOperation.CreateAccounts)
        {
            RunBatch(new EncodedAccounts(command, count), timestamp, results, appliedIndex);
        }
        else if (TransferLayoutMatchesCodec)
        {
            // The events already are Transfer structs byte for byte: apply them in place, no decode.
            var events = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Transfer>(command[LedgerLimits.CommandHeaderBytes..]);
            Invariant.Check(events.Length == count);
            RunBatch(new TypedTransfers(events), timestamp, results, appliedIndex);
        }
        else
        {
            RunBatch(new EncodedTransfers(command, count), timestamp, results, appliedIndex);
        }

        return new LedgerApplyResult(operation, count);
    }

    /// <summary>Creates accounts: one result per event, in order. See the class remarks for timestamps.</summary>
    public void CreateAccounts(ReadOnlySpan<Account> events, ulong batchTimestamp, Span<CreateAccountResult> results, ulong appliedIndex = 0)
    {
        CheckBatch(events.Length, results.Length);
        RunBatch(new TypedAccounts(events), batchTimestamp, System.Runtime.InteropServices.MemoryMarshal.AsBytes(results[..events.Length]), appliedIndex);
    }

    /// <summary>Creates transfers: one result per event, in order. See the class remarks for timestamps.</summary>
    public void CreateTransfers(ReadOnlySpan<Transfer> events, ulong batchTimestamp, Span<CreateTransferResult> results, ulong appliedIndex = 0)
    {
        CheckBatch(events.Length, results.Length);
        RunBatch(new TypedTransfers(events), batchTimestamp, System.Runtime.InteropServices.MemoryMarshal.AsBytes(results[..events.Length]), appliedIndex);
    }

    private static void CheckBatch(int eventCount, int resultCount)
    {
        if (eventCount > LedgerLimits.BatchEventsMax)
        {
            throw new ArgumentException($"A batch holds at most {LedgerLimits.BatchEventsMax} events, this one has {eventCount}: split it.", nameof(eventCount));
        }

        if (resultCount < eventCount)
        {
            throw new ArgumentException($"There are {eventCount} events but room for {resultCount} results.", nameof(resultCount));
        }
    }

    /// <summary>
    /// The batch driver shared by both operations: timestamps, expiry, linked chains, commit.
    /// A chain is all-or-nothing: the failing event keeps its status, the chain's other events get
    /// linked_event_failed, and a chain still open at the end of the batch fails with
    /// linked_event_chain_open on its last event.
    /// </summary>
    private void RunBatch<TEvents>(TEvents events, ulong batchTimestamp, Span<byte> results, ulong appliedIndex)
        where TEvents : struct, IEventSource, allows ref struct
    {
        var count = events.Count;
        Invariant.Check(count <= LedgerLimits.BatchEventsMax);
        Invariant.Check(batchTimestamp <= LedgerLimits.TimestampMax, "batch timestamps stay below 2^63");
        var firstTimestamp = batchTimestamp - (ulong)Math.Max(count, 1) + 1;
        Invariant.Check(batchTimestamp >= (ulong)Math.Max(count, 1) && firstTimestamp > store.LastTimestamp,
            "the leader must give each batch a timestamp of at least last timestamp + event count");

        batch.Reset();
        var lookups = events.LookedUpTransferIds(lookupIdScratch);
        if (lookups > 0)
        {
            store.PrefetchTransfers(lookupIdScratch.AsSpan(0, lookups));
        }

        ExpirePendingTransfers(firstTimestamp);
        var chainStart = -1;
        var chainBroken = false;
        for (var i = 0; i < count; i++)
        {
            for (var stage = 0; stage < PrefetchStages; stage++)
            {
                var ahead = i + ((PrefetchStages - stage) * PrefetchDistance);
                if (ahead < count)
                {
                    events.Prefetch(this, ahead, stage);
                }
            }

            var linked = events.IsLinked(i);
            if (linked && chainStart < 0)
            {
                chainStart = i;
                chainBroken = false;
                batch.Savepoint();
            }

            byte result;
            if (chainStart >= 0 && chainBroken)
            {
                result = (byte)CreateTransferResult.LinkedEventFailed;
            }
            else if (linked && i == count - 1)
            {
                result = (byte)CreateTransferResult.LinkedEventChainOpen;
            }
            else
            {
                result = events.Execute(this, i, firstTimestamp + (ulong)i);
            }

            results[i] = result;
            if (result != 0 && chainStart >= 0 && !chainBroken)
            {
                chainBroken = true;
                batch.Rollback();
                results[chainStart..i].Fill((byte)CreateTransferResult.LinkedEventFailed);
            }

            events.AfterResult(this, i, result);
            if (!linked && chainStart >= 0)
            {
                if (!chainBroken)
                {
                    batch.Release();
                }

                chainStart = -1;
            }
        }

        batch.Commit(batchTimestamp, appliedIndex);
    }

    /// <summary>Releases every reservation that expired at or before <paramref name="now"/>, in expiry order.</summary>
    private void ExpirePendingTransfers(ulong now)
    {
        var after = default(ExpiryEntry);
        while (true)
        {
            var found = store.CollectExpired(now, after, expiredScratch);
            for (var i = 0; i < found; i++)
            {
                if (!HeldByStatusLeg(expiredScratch[i].TransferId))
                {
                    Expire(expiredScratch[i]);
                }
            }

            if (found < expiredScratch.Length)
            {
                return;
            }

            after = expiredScratch[found - 1];
        }
    }

    private void Expire(ExpiryEntry entry)
    {
        Invariant.Check(batch.TryGetTransfer(entry.TransferId, out var pending));
        Invariant.Check(batch.GetPendingStatus(entry.TransferId) == PendingStatus.Pending);
        var debit = batch.LoadAccount(pending.DebitAccountId);
        var credit = batch.LoadAccount(pending.CreditAccountId);
        ref var dr = ref batch.Modify(debit);
        BalanceSteps.Release(ref dr, BalanceSide.Debit, pending.Amount);
        ref var cr = ref batch.Modify(credit);
        BalanceSteps.Release(ref cr, BalanceSide.Credit, pending.Amount);
        Reopen(pending, ref dr, ref cr);
        batch.SetPendingStatus(entry.TransferId, PendingStatus.Expired);
        batch.Writes.RemoveExpiry(entry);
    }

    // A closing transfer that is voided or expires reopens the account it closed.
    private static void Reopen(in Transfer pending, ref Account dr, ref Account cr)
    {
        if ((pending.Flags & TransferFlags.ClosingDebit) != 0)
        {
            dr.Flags &= ~AccountFlags.Closed;
        }

        if ((pending.Flags & TransferFlags.ClosingCredit) != 0)
        {
            cr.Flags &= ~AccountFlags.Closed;
        }
    }

    /// <summary>The events of one batch, whatever their form (typed or encoded); a struct so the driver is specialised per form.</summary>
    private interface IEventSource
    {
        int Count { get; }

        bool IsLinked(int index);

        byte Execute(LedgerStateMachine ledger, int index, ulong timestamp);

        void AfterResult(LedgerStateMachine ledger, int index, byte result);

        void Prefetch(LedgerStateMachine ledger, int index, int stage);

        /// <summary>Writes the transfer ids the batch will look up into <paramref name="into"/>; returns how many.</summary>
        int LookedUpTransferIds(Span<UInt128> into);
    }

    private readonly ref struct TypedAccounts(ReadOnlySpan<Account> events) : IEventSource
    {
        private readonly ReadOnlySpan<Account> events = events;

        public int Count => events.Length;

        public bool IsLinked(int index) => (events[index].Flags & AccountFlags.Linked) != 0;

        public byte Execute(LedgerStateMachine ledger, int index, ulong timestamp) => (byte)ledger.CreateAccount(events[index], timestamp);

        public void AfterResult(LedgerStateMachine ledger, int index, byte result)
        {
        }

        public void Prefetch(LedgerStateMachine ledger, int index, int stage)
        {
        }

        public int LookedUpTransferIds(Span<UInt128> into) => 0;
    }

    private readonly ref struct EncodedAccounts(ReadOnlySpan<byte> command, int count) : IEventSource
    {
        private readonly ReadOnlySpan<byte> command = command;

        public int Count => count;

        public bool IsLinked(int index) => (FlagsOf(command, index) & (ushort)AccountFlags.Linked) != 0;

        public byte Execute(LedgerStateMachine ledger, int index, ulong timestamp) =>
            (byte)ledger.CreateAccount(LedgerCodec.ReadAccount(LedgerCommand.Event(command, index)), timestamp);

        public void AfterResult(LedgerStateMachine ledger, int index, byte result)
        {
        }

        public void Prefetch(LedgerStateMachine ledger, int index, int stage)
        {
        }

        public int LookedUpTransferIds(Span<UInt128> into) => 0;
    }

    private readonly ref struct TypedTransfers(ReadOnlySpan<Transfer> events) : IEventSource
    {
        private readonly ReadOnlySpan<Transfer> events = events;

        public int Count => events.Length;

        public bool IsLinked(int index) => (events[index].Flags & TransferFlags.Linked) != 0;

        public byte Execute(LedgerStateMachine ledger, int index, ulong timestamp) => (byte)ledger.CreateTransfer(events[index], timestamp);

        public void AfterResult(LedgerStateMachine ledger, int index, byte result) => ledger.AfterTransfer(events[index].Id, result);

        public void Prefetch(LedgerStateMachine ledger, int index, int stage)
        {
            ref readonly var e = ref events[index];
            if (e.PendingId != UInt128.Zero)
            {
                // A post or void reads its pending transfer and that transfer's accounts.
                ledger.batch.PrefetchPending(e.Id, e.PendingId, stage);
            }
            else if (stage == 2)
            {
                ledger.batch.Prefetch(e.Id, e.DebitAccountId, e.CreditAccountId);
            }
            else if (stage == 3)
            {
                ledger.batch.PrefetchAccountRecords(e.DebitAccountId, e.CreditAccountId);
            }
        }

        public int LookedUpTransferIds(Span<UInt128> into)
        {
            var written = 0;
            foreach (ref readonly var e in events)
            {
                written = AddLookedUpIds(into, written, e.Id, e.PendingId);
            }

            return written;
        }
    }

    private readonly ref struct EncodedTransfers(ReadOnlySpan<byte> command, int count) : IEventSource
    {
        private readonly ReadOnlySpan<byte> command = command;

        public int Count => count;

        public bool IsLinked(int index) => (FlagsOf(command, index) & (ushort)TransferFlags.Linked) != 0;

        public byte Execute(LedgerStateMachine ledger, int index, ulong timestamp) =>
            (byte)ledger.CreateTransfer(LedgerCodec.ReadTransfer(LedgerCommand.Event(command, index)), timestamp);

        public void AfterResult(LedgerStateMachine ledger, int index, byte result) =>
            ledger.AfterTransfer(LedgerCodec.ReadId(LedgerCommand.Event(command, index)), result);

        public void Prefetch(LedgerStateMachine ledger, int index, int stage)
        {
            var bytes = LedgerCommand.Event(command, index);
            if (stage == 3)
            {
                ledger.batch.PrefetchAccountRecords(LedgerCodec.ReadId(bytes[16..]), LedgerCodec.ReadId(bytes[32..]));
            }
            else if (stage == 2)
            {
                ledger.batch.Prefetch(LedgerCodec.ReadId(bytes), LedgerCodec.ReadId(bytes[16..]), LedgerCodec.ReadId(bytes[32..]));
            }
        }

        public int LookedUpTransferIds(Span<UInt128> into)
        {
            var written = 0;
            for (var i = 0; i < count; i++)
            {
                var bytes = LedgerCommand.Event(command, i);
                written = AddLookedUpIds(into, written, LedgerCodec.ReadId(bytes), LedgerCodec.ReadId(bytes[LedgerCodec.TransferPendingIdOffset..]));
            }

            return written;
        }
    }

    // A transfer event looks up its own id (duplicate and burnt-id checks) and, for a post or void, its pending id.
    private static int AddLookedUpIds(Span<UInt128> into, int written, UInt128 id, UInt128 pendingId)
    {
        into[written++] = id;
        if (pendingId != UInt128.Zero)
        {
            into[written++] = pendingId;
        }

        return written;
    }

    // Accounts and transfers both keep their flags at byte 118 of the record.
    private static ushort FlagsOf(ReadOnlySpan<byte> command, int index) =>
        System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(LedgerCommand.Event(command, index)[118..]);

    // Runs after a chain's rollback, so a burnt id survives the rollback of its chain.
    private void AfterTransfer(UInt128 id, byte result)
    {
        if (LedgerResults.IsTransient((CreateTransferResult)result))
        {
            batch.AddTransientFailure(id);
        }
    }
}
