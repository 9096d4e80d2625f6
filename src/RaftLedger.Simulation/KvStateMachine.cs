using System.Buffers.Binary;
using RaftLedger.Common;

namespace RaftLedger.Simulation;

/// <summary>
/// A client command as it travels in a log entry: which client, its sequence number (for deduplicating
/// retries) and the key-value operation. Fixed-size little-endian encoding.
/// </summary>
public readonly record struct KvCommand(int ClientId, long Sequence, KvInput Input)
{
    public const int EncodedBytes = 1 + 4 + 8 + 8 + 8;

    public byte[] Encode()
    {
        var bytes = new byte[EncodedBytes];
        bytes[0] = (byte)Input.Kind;
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(1), ClientId);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(5), Sequence);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(13), Input.Key);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(21), Input.Value);
        return bytes;
    }

    /// <summary>Decodes a command; returns false for entries that are not commands (e.g. a leader's empty no-op).</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out KvCommand command)
    {
        command = default;
        if (bytes.Length != EncodedBytes)
        {
            return false;
        }

        var kind = (KvOperationKind)bytes[0];
        Invariant.Check(kind is KvOperationKind.Put or KvOperationKind.Get or KvOperationKind.Add, "corrupt command in the log");
        command = new KvCommand(
            BinaryPrimitives.ReadInt32LittleEndian(bytes[1..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[5..]),
            new KvInput(kind, BinaryPrimitives.ReadInt64LittleEndian(bytes[13..]), BinaryPrimitives.ReadInt64LittleEndian(bytes[21..])));
        return true;
    }
}

/// <summary>
/// The replicated state machine the simulator runs on top of Raft: a map of registers/counters with
/// per-client sessions, so that a retried command (same client, same sequence) is applied once and the
/// retry gets the original answer. Deterministic; snapshots to and from bytes.
/// </summary>
public sealed class KvStateMachine
{
    private readonly SortedDictionary<long, long> _values = [];

    // Per client: the highest sequence applied and its result. Clients have one command outstanding at a
    // time and never reuse a sequence, so "sequence <= last" means "a retry of something already applied".
    private readonly SortedDictionary<int, (long Sequence, long Result)> _sessions = [];

    /// <summary>Index of the last entry applied. Invariant: only grows, by one per entry, or jumps on restore.</summary>
    public ulong AppliedIndex { get; private set; }

    /// <summary>Applies the entry at <paramref name="index"/>; returns the command and its result, if it held one.</summary>
    public (KvCommand Command, long Result)? Apply(ulong index, ReadOnlySpan<byte> data)
    {
        Invariant.Check(index == AppliedIndex + 1, $"apply {index} after {AppliedIndex}: entries must be applied in order without gaps");
        AppliedIndex = index;
        if (!KvCommand.TryDecode(data, out var command))
        {
            return null;
        }

        if (_sessions.TryGetValue(command.ClientId, out var session) && command.Sequence <= session.Sequence)
        {
            // A duplicate (a retry that was already applied): answer with the original result if it is the
            // latest; an older one nobody waits for any more.
            return command.Sequence == session.Sequence ? (command, session.Result) : null;
        }

        var result = Execute(command.Input);
        _sessions[command.ClientId] = (command.Sequence, result);
        return (command, result);
    }

    public long Read(long key) => _values.GetValueOrDefault(key);

    /// <summary>Serializes the whole state (values, sessions, applied index).</summary>
    public byte[] Snapshot()
    {
        var bytes = new byte[8 + 4 + (_values.Count * 16) + 4 + (_sessions.Count * 20)];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(span, AppliedIndex);
        BinaryPrimitives.WriteInt32LittleEndian(span[8..], _values.Count);
        var at = 12;
        foreach (var (key, value) in _values)
        {
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], key);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 8)..], value);
            at += 16;
        }

        BinaryPrimitives.WriteInt32LittleEndian(span[at..], _sessions.Count);
        at += 4;
        foreach (var (client, (sequence, result)) in _sessions)
        {
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], client);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 4)..], sequence);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 12)..], result);
            at += 20;
        }

        Invariant.Check(at == bytes.Length);
        return bytes;
    }

    /// <summary>Replaces the whole state with a snapshot taken by <see cref="Snapshot"/>.</summary>
    public void Restore(ReadOnlySpan<byte> bytes)
    {
        _values.Clear();
        _sessions.Clear();
        AppliedIndex = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var count = BinaryPrimitives.ReadInt32LittleEndian(bytes[8..]);
        var at = 12;
        for (var i = 0; i < count; i++, at += 16)
        {
            _values[BinaryPrimitives.ReadInt64LittleEndian(bytes[at..])] = BinaryPrimitives.ReadInt64LittleEndian(bytes[(at + 8)..]);
        }

        count = BinaryPrimitives.ReadInt32LittleEndian(bytes[at..]);
        at += 4;
        for (var i = 0; i < count; i++, at += 20)
        {
            _sessions[BinaryPrimitives.ReadInt32LittleEndian(bytes[at..])] =
                (BinaryPrimitives.ReadInt64LittleEndian(bytes[(at + 4)..]), BinaryPrimitives.ReadInt64LittleEndian(bytes[(at + 12)..]));
        }

        Invariant.Check(at == bytes.Length, "snapshot bytes have a trailing part: corrupt snapshot");
    }

    private long Execute(KvInput input)
    {
        switch (input.Kind)
        {
            case KvOperationKind.Put:
                _values[input.Key] = input.Value;
                return input.Value;
            case KvOperationKind.Get:
                return _values.GetValueOrDefault(input.Key);
            case KvOperationKind.Add:
                var sum = _values.GetValueOrDefault(input.Key) + input.Value;
                _values[input.Key] = sum;
                return sum;
            default:
                throw new InvalidOperationException($"unknown operation {input.Kind}");
        }
    }
}
