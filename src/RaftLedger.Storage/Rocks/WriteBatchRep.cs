using System.Buffers.Binary;
using RaftLedger.Common;
using RocksDbSharp;

namespace RaftLedger.Storage.Rocks;

/// <summary>
/// Builds a RocksDB WriteBatch in managed memory, in RocksDB's own serialized batch format, and hands it to the
/// native side in one call (<c>rocksdb_writebatch_create_from</c>). Staging every put through the native
/// <see cref="WriteBatch"/> costs one P/Invoke per key, which profiles showed to be about a fifth of applying a
/// transfer (five to six keys each); here a put is a copy into a reused buffer.
/// Format (RocksDB write_batch.cc, default column family only): fixed64 sequence (0), fixed32 count, then per
/// record a tag byte — 0x1 put: varint32 key length, key, varint32 value length, value; 0x0 delete: varint32 key
/// length, key. Reusable: nothing is allocated once the buffer has grown to the largest batch.
/// </summary>
public sealed class WriteBatchRep
{
    private const int HeaderBytes = 12;
    private const byte TagDelete = 0x0;
    private const byte TagPut = 0x1;
    private const int Varint32BytesMax = 5;

    // Invariant: bytes[0..length) is a valid batch holding `count` records; length >= HeaderBytes.
    private byte[] bytes = new byte[64 * 1024];
    private int length = HeaderBytes;
    private int count;

    /// <summary>Records staged.</summary>
    public int Count => count;

    /// <summary>Stages a put of <paramref name="value"/> under <paramref name="key"/>.</summary>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        Reserve(1 + Varint32BytesMax + key.Length + Varint32BytesMax + value.Length);
        bytes[length++] = TagPut;
        WriteSlice(key);
        WriteSlice(value);
        count++;
    }

    /// <summary>Stages the deletion of <paramref name="key"/>.</summary>
    public void Delete(ReadOnlySpan<byte> key)
    {
        Reserve(1 + Varint32BytesMax + key.Length);
        bytes[length++] = TagDelete;
        WriteSlice(key);
        count++;
    }

    /// <summary>Drops everything staged.</summary>
    public void Clear()
    {
        length = HeaderBytes;
        count = 0;
    }

    /// <summary>A native batch holding exactly what is staged (the caller disposes it).</summary>
    public WriteBatch ToNative()
    {
        Invariant.Check(length >= HeaderBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)count);
        return new WriteBatch(bytes, length);
    }

    private void WriteSlice(ReadOnlySpan<byte> slice)
    {
        var value = (uint)slice.Length;
        while (value >= 0x80)
        {
            bytes[length++] = (byte)(value | 0x80);
            value >>= 7;
        }

        bytes[length++] = (byte)value;
        slice.CopyTo(bytes.AsSpan(length));
        length += slice.Length;
    }

    private void Reserve(int more)
    {
        if (length + more <= bytes.Length)
        {
            return;
        }

        Invariant.Check((long)length + more <= Array.MaxLength, "a batch fits in one array");
        Array.Resize(ref bytes, (int)Math.Min(Array.MaxLength, Math.Max((long)bytes.Length * 2, (long)length + more)));
    }
}
