using System.Buffers.Binary;

namespace RaftLedger.Ledger.CrossShard;

/// <summary>Reads little-endian fields from a span; any read past the end throws <see cref="InvalidDataException"/>.</summary>
internal ref struct ByteReader(ReadOnlySpan<byte> bytes)
{
    private readonly ReadOnlySpan<byte> bytes = bytes;
    private int position;

    public readonly int Remaining => bytes.Length - position;

    public byte U8() => Take(1)[0];

    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));

    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public UInt128 U128() => BinaryPrimitives.ReadUInt128LittleEndian(Take(16));

    public Transfer Transfer() => LedgerCodec.ReadTransfer(Take(LedgerLimits.RecordSizeBytes));

    public Account Account() => LedgerCodec.ReadAccount(Take(LedgerLimits.RecordSizeBytes));

    public Leg Leg()
    {
        var index = U16();
        var sides = (LegSides)U8();
        var guard = (BalancingGuard)U8();
        const LegSides inChain = LegSides.PostedInChain | LegSides.VoidedInChain;
        if (sides == LegSides.None || (sides & ~(LegSides.Debit | LegSides.Credit | LegSides.Id | LegSides.Resolve | LegSides.Status | inChain)) != 0 ||
            sides == LegSides.Resolve || ((sides & inChain) != 0 && ((sides & LegSides.Id) == 0 || (sides & inChain) == inChain)))
        {
            throw new InvalidDataException($"A cross-shard leg has sides {(byte)sides}: it is corrupt.");
        }

        if ((guard & ~(BalancingGuard.DebitBinds | BalancingGuard.CreditBinds | BalancingGuard.Clamped)) != 0)
        {
            throw new InvalidDataException($"A cross-shard leg has guard {(byte)guard}: it is corrupt.");
        }

        var transfer = Transfer();
        var requested = (guard & BalancingGuard.Clamped) != 0 ? U128() : UInt128.Zero;
        return new Leg(index, sides, transfer) { Guard = guard, Requested = requested };
    }

    /// <summary>A count read as u16 and checked against <paramref name="max"/>.</summary>
    public int Count(int max)
    {
        var count = U16();
        if (count > max)
        {
            throw new InvalidDataException($"A cross-shard record says {count} items where at most {max} are allowed: it is corrupt.");
        }

        return count;
    }

    public readonly void End()
    {
        if (position != bytes.Length)
        {
            throw new InvalidDataException($"A cross-shard record has {bytes.Length - position} trailing bytes: it is corrupt.");
        }
    }

    private ReadOnlySpan<byte> Take(int length)
    {
        if (length > bytes.Length - position)
        {
            throw new InvalidDataException("A cross-shard record ends early: it is truncated or corrupt.");
        }

        var slice = bytes.Slice(position, length);
        position += length;
        return slice;
    }
}

/// <summary>Appends little-endian fields to a growable buffer.</summary>
internal sealed class ByteWriter
{
    private byte[] buffer;
    private int length;

    public ByteWriter(int capacity) => buffer = new byte[Math.Max(capacity, 16)];

    public int Length => length;

    public void U8(byte value) => Take(1)[0] = value;

    public void U16(int value)
    {
        RaftLedger.Common.Invariant.Check(value >= 0 && value <= ushort.MaxValue);
        BinaryPrimitives.WriteUInt16LittleEndian(Take(2), (ushort)value);
    }

    public void U32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), value);

    public void U64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), value);

    public void U128(UInt128 value) => BinaryPrimitives.WriteUInt128LittleEndian(Take(16), value);

    public void Transfer(in Transfer transfer) => LedgerCodec.WriteTransfer(Take(LedgerLimits.RecordSizeBytes), transfer);

    public void Account(in Account account) => LedgerCodec.WriteAccount(Take(LedgerLimits.RecordSizeBytes), account);

    public void Leg(in Leg leg)
    {
        U16(leg.EventIndex);
        U8((byte)leg.Sides);
        U8((byte)leg.Guard);
        Transfer(leg.Transfer);
        if ((leg.Guard & BalancingGuard.Clamped) != 0)
        {
            U128(leg.Requested);
        }
    }

    /// <summary>Overwrites a u32 already written at <paramref name="offset"/> (a count known only at the end).</summary>
    public void PatchU32(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(offset, 4), value);

    public byte[] ToArray() => buffer.AsSpan(0, length).ToArray();

    private Span<byte> Take(int count)
    {
        if (length + count > buffer.Length)
        {
            Array.Resize(ref buffer, Math.Max(buffer.Length * 2, length + count));
        }

        var slice = buffer.AsSpan(length, count);
        length += count;
        return slice;
    }
}
