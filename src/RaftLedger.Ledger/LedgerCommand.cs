using System.Buffers.Binary;
using RaftLedger.Common;

namespace RaftLedger.Ledger;

/// <summary>What a command asks the ledger to do.</summary>
public enum LedgerOperation : byte
{
    CreateAccounts = 1,
    CreateTransfers = 2,

    /// <summary>Cross-shard: a participant reserves the legs it holds (see <see cref="CrossShard.CrossShardCommand"/>).</summary>
    CrossShardPrepare = 3,

    /// <summary>Cross-shard: the home shard decides commit or abort (the commit point).</summary>
    CrossShardDecide = 4,

    /// <summary>Cross-shard: a participant posts or releases its legs.</summary>
    CrossShardFinish = 5,

    /// <summary>Cross-shard: the home shard forgets a transaction every participant finished.</summary>
    CrossShardRetire = 6,

    /// <summary>Cross-shard: the home shard aborts a transaction nobody decided (presumed abort), or reports its decision.</summary>
    CrossShardAbortIfUndecided = 7,
}

/// <summary>
/// The byte form of a ledger command, as the node puts it in a Raft entry. Every replica decodes the
/// same bytes and applies them with <see cref="LedgerStateMachine.Apply"/>, so all replicas change
/// state identically.
/// </summary>
/// <remarks>
/// Layout (little-endian): byte 0 version (<see cref="Version"/>), byte 1 operation, bytes 2..3 zero,
/// bytes 4..7 event count, bytes 8..15 batch timestamp (ns, assigned by the leader when it proposes),
/// then count × 128-byte events in <see cref="LedgerCodec"/> form.
/// </remarks>
public static class LedgerCommand
{
    public const byte Version = 1;

    /// <summary>Bytes a command with <paramref name="eventCount"/> events takes.</summary>
    public static int EncodedLength(int eventCount)
    {
        Invariant.Check(eventCount >= 0 && eventCount <= LedgerLimits.BatchEventsMax);
        return LedgerLimits.CommandHeaderBytes + (eventCount * LedgerLimits.RecordSizeBytes);
    }

    /// <summary>Encodes a create_accounts command into a new array.</summary>
    public static byte[] EncodeCreateAccounts(ulong batchTimestamp, ReadOnlySpan<Account> events)
    {
        var bytes = new byte[EncodedLength(CheckBatch(events.Length))];
        EncodeCreateAccounts(batchTimestamp, events, bytes);
        return bytes;
    }

    /// <summary>Encodes a create_accounts command into <paramref name="destination"/>; returns bytes written.</summary>
    public static int EncodeCreateAccounts(ulong batchTimestamp, ReadOnlySpan<Account> events, Span<byte> destination)
    {
        var length = WriteHeader(LedgerOperation.CreateAccounts, batchTimestamp, events.Length, destination);
        for (var i = 0; i < events.Length; i++)
        {
            LedgerCodec.WriteAccount(destination[EventOffset(i)..], events[i]);
        }

        return length;
    }

    /// <summary>Encodes a create_transfers command into a new array.</summary>
    public static byte[] EncodeCreateTransfers(ulong batchTimestamp, ReadOnlySpan<Transfer> events)
    {
        var bytes = new byte[EncodedLength(CheckBatch(events.Length))];
        EncodeCreateTransfers(batchTimestamp, events, bytes);
        return bytes;
    }

    /// <summary>Encodes a create_transfers command into <paramref name="destination"/>; returns bytes written.</summary>
    public static int EncodeCreateTransfers(ulong batchTimestamp, ReadOnlySpan<Transfer> events, Span<byte> destination)
    {
        var length = WriteHeader(LedgerOperation.CreateTransfers, batchTimestamp, events.Length, destination);
        for (var i = 0; i < events.Length; i++)
        {
            LedgerCodec.WriteTransfer(destination[EventOffset(i)..], events[i]);
        }

        return length;
    }

    /// <summary>
    /// Reads a command header. False when the bytes are not a well-formed command of this version
    /// (wrong version, unknown operation, too many events, or a length that does not match).
    /// </summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> command, out LedgerOperation operation, out ulong batchTimestamp, out int eventCount)
    {
        operation = default;
        batchTimestamp = 0;
        eventCount = 0;
        if (command.Length < LedgerLimits.CommandHeaderBytes || command[0] != Version || command[2] != 0 || command[3] != 0)
        {
            return false;
        }

        var op = (LedgerOperation)command[1];
        var count = BinaryPrimitives.ReadUInt32LittleEndian(command[4..]);
        if (count > LedgerLimits.BatchEventsMax)
        {
            return false;
        }

        if (op is LedgerOperation.CreateAccounts or LedgerOperation.CreateTransfers)
        {
            if (command.Length != LedgerLimits.CommandHeaderBytes + ((int)count * LedgerLimits.RecordSizeBytes))
            {
                return false;
            }
        }
        else if (op is < LedgerOperation.CrossShardPrepare or > LedgerOperation.CrossShardAbortIfUndecided ||
            count == 0 || command.Length > CrossShard.CrossShardLimits.CommandBytesMax)
        {
            // Cross-shard commands: count is the timestamps they consume; the body is checked when applied.
            return false;
        }

        operation = op;
        eventCount = (int)count;
        batchTimestamp = BinaryPrimitives.ReadUInt64LittleEndian(command[8..]);
        return true;
    }

    /// <summary>
    /// Stamps a command's batch timestamp (bytes 8..15). The host calls it on every command it proposes
    /// (including a cross-shard driver's), with T &gt;= max(clock, last proposed + <see cref="TimestampCount"/>).
    /// </summary>
    public static void SetBatchTimestamp(Span<byte> command, ulong batchTimestamp)
    {
        Invariant.Check(command.Length >= LedgerLimits.CommandHeaderBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(command[8..], batchTimestamp);
    }

    /// <summary>How many timestamps a command consumes (its event count; bytes 4..7).</summary>
    public static int TimestampCount(ReadOnlySpan<byte> command)
    {
        Invariant.Check(command.Length >= LedgerLimits.CommandHeaderBytes);
        return (int)BinaryPrimitives.ReadUInt32LittleEndian(command[4..]);
    }

    /// <summary>The bytes of event <paramref name="index"/> of a well-formed command.</summary>
    public static ReadOnlySpan<byte> Event(ReadOnlySpan<byte> command, int index) =>
        command.Slice(EventOffset(index), LedgerLimits.RecordSizeBytes);

    private static int EventOffset(int index) => LedgerLimits.CommandHeaderBytes + (index * LedgerLimits.RecordSizeBytes);

    private static int CheckBatch(int eventCount)
    {
        if (eventCount > LedgerLimits.BatchEventsMax)
        {
            throw new ArgumentException(
                $"A batch holds at most {LedgerLimits.BatchEventsMax} events, this one has {eventCount}: split it into several batches.",
                nameof(eventCount));
        }

        return eventCount;
    }

    private static int WriteHeader(LedgerOperation operation, ulong batchTimestamp, int eventCount, Span<byte> destination)
    {
        var length = EncodedLength(CheckBatch(eventCount));
        if (destination.Length < length)
        {
            throw new ArgumentException($"The command needs {length} bytes, the destination has {destination.Length}.", nameof(destination));
        }

        destination[0] = Version;
        destination[1] = (byte)operation;
        destination[2] = 0;
        destination[3] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], (uint)eventCount);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], batchTimestamp);
        return length;
    }
}
