using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using RaftLedger.Common;

namespace RaftLedger.Storage.Wal;

/// <summary>
/// TEST INSTRUMENT (off unless <see cref="WalOptions.SyncedMarkPath"/> is set): how much of the log a power cut
/// would keep. Every segment below <see cref="Segment"/> is durable whole, segment <see cref="Segment"/> up to
/// <see cref="OffsetBytes"/>, and nothing of any later segment. The writer overwrites the mark after every successful
/// fdatasync (and when it rolls or opens), without syncing the mark itself: it survives a SIGKILL in the page cache,
/// which is all <c>raftledger verify</c>'s power-cut fault needs to make the log look as a power cut would leave it
/// (<see cref="WalPowerCut"/>).
/// </summary>
public readonly record struct WalSyncedMark(ulong Segment, long OffsetBytes)
{
    /// <summary>Size of the mark file: magic, segment, offset, CRC32C of the three, padding.</summary>
    public const int RecordBytes = 32;

    private const ulong Magic = 0x4B52_414D_4E59_5357; // "WSYNMARK" little-endian

    /// <summary>Reads the mark at <paramref name="path"/>; null when there is no file. Throws when it is damaged.</summary>
    public static WalSyncedMark? Read(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var bytes = File.ReadAllBytes(path);
        if (bytes.Length != RecordBytes || BinaryPrimitives.ReadUInt64LittleEndian(bytes) != Magic ||
            BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(24)) != Crc32C.Compute(bytes.AsSpan(0, 24)))
        {
            throw new InvalidDataException($"{path} is not a WAL synced mark ({bytes.Length} bytes, bad magic or checksum).");
        }

        return new WalSyncedMark(BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)), BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(16)));
    }

    /// <summary>Overwrites the mark in <paramref name="handle"/> with one pwrite at offset 0 (no sync).</summary>
    internal void Write(SafeFileHandle handle, Span<byte> scratch)
    {
        Invariant.Check(scratch.Length == RecordBytes);
        Invariant.Check(OffsetBytes >= 0);
        scratch.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(scratch, Magic);
        BinaryPrimitives.WriteUInt64LittleEndian(scratch[8..], Segment);
        BinaryPrimitives.WriteInt64LittleEndian(scratch[16..], OffsetBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(scratch[24..], Crc32C.Compute(scratch[..24]));
        RandomAccess.Write(handle, scratch, 0);
    }
}

/// <summary>
/// The writer's side of the mark (<see cref="WalOptions.SyncedMarkPath"/>). With <see cref="WalOptions.SyncedMarkLagMarks"/>
/// above 0 it is DELIBERATELY WRONG: it writes the mark as it stood that many updates earlier, which is what a build that
/// acknowledged before its fdatasync would keep after a power cut (tests of verify only).
/// </summary>
internal sealed class WalSyncedMarkWriter : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly byte[] _scratch = new byte[WalSyncedMark.RecordBytes];
    private readonly WalSyncedMark[] _recent; // Ring of the last lag + 1 true marks.
    private long _updates;

    public WalSyncedMarkWriter(string path, int lagMarks)
    {
        Invariant.Check(lagMarks >= 0);
        _recent = new WalSyncedMark[lagMarks + 1];
        _handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read);
    }

    /// <summary>Records that <paramref name="segment"/> is durable up to <paramref name="offsetBytes"/> and every earlier segment whole.</summary>
    public void Update(ulong segment, long offsetBytes)
    {
        _recent[_updates % _recent.Length] = new WalSyncedMark(segment, offsetBytes);
        _updates++;
        // The oldest mark the ring holds: lag updates back once it is full, the first one (at open) before that.
        var written = _updates >= _recent.Length ? _recent[_updates % _recent.Length] : _recent[0];
        written.Write(_handle, _scratch);
    }

    public void Dispose() => _handle.Dispose();
}
