using System.Buffers.Binary;
using System.Numerics;

namespace RaftLedger.Storage.Wal;

/// <summary>
/// CRC-32C (Castagnoli). System.IO.Hashing 10.0.1 has only CRC-32 (IEEE), so we use
/// <see cref="BitOperations.Crc32C(uint, ulong)"/>, which compiles to the SSE4.2 / ARMv8 CRC
/// instruction when the CPU has it and falls back to a table otherwise.
/// </summary>
public static class Crc32C
{
    /// <summary>CRC-32C of <paramref name="data"/> (standard initial value and final inversion).</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(uint.MaxValue, data);

    /// <summary>
    /// CRC-32C of the 8 little-endian bytes of <paramref name="prefix"/> followed by <paramref name="data"/>, without
    /// copying them together: the WAL seals each record with its segment's sequence this way.
    /// </summary>
    public static uint Compute(ulong prefix, ReadOnlySpan<byte> data) => ~Append(BitOperations.Crc32C(uint.MaxValue, prefix), data);

    private static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return crc;
    }
}
