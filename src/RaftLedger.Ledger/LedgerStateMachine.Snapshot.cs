using System.Buffers.Binary;
using System.IO.Hashing;
using RaftLedger.Common;

namespace RaftLedger.Ledger;

public sealed partial class LedgerStateMachine
{
    // Snapshot format (little-endian): magic "RLLEDGR1" (8 bytes), last timestamp (8), then records,
    // each a tag byte and a fixed-size body, then the end tag and the 16-byte fingerprint of the
    // state. Records come in an order that restores cleanly: accounts before the transfers that
    // name them, transfers ascending by timestamp.
    private static ReadOnlySpan<byte> SnapshotMagic => "RLLEDGR1"u8;

    private const byte TagEnd = 0;
    private const byte TagAccount = 1;
    private const byte TagTransfer = 2; // body: transfer (128) + pending status (1)
    private const byte TagTransientFailure = 3; // body: id (16)
    private const byte TagAccountBalance = 4; // body: account id (16) + balance (128)
    private const byte TagSideRecord = 5; // body: table (1) + key (16) + value length (u32) + value
    private const int SideRecordHeaderBytes = 1 + 16 + 4;
    private const int RecordBodyBytesMax = 16 + LedgerLimits.RecordSizeBytes;
    private const int RestoreChunkRecords = 4096;

    /// <summary>
    /// A 128-bit fingerprint of the whole committed state: the same state gives the same value on
    /// any machine, whatever the store and its iteration order (records are hashed one by one with
    /// XxHash128 and the hashes added, so order does not matter).
    /// </summary>
    public UInt128 Fingerprint()
    {
        Span<byte> body = stackalloc byte[RecordBodyBytesMax];
        BinaryPrimitives.WriteUInt64LittleEndian(body, store.LastTimestamp);
        var sum = RecordHash(TagEnd, body[..8]);
        foreach (var account in store.EnumerateAccounts())
        {
            LedgerCodec.WriteAccount(body, account);
            sum += RecordHash(TagAccount, body[..LedgerLimits.RecordSizeBytes]);
        }

        foreach (var transfer in store.EnumerateTransfers())
        {
            sum += RecordHash(TagTransfer, TransferBody(transfer, body));
        }

        foreach (var id in store.EnumerateTransientFailures())
        {
            LedgerCodec.WriteId(body, id);
            sum += RecordHash(TagTransientFailure, body[..16]);
        }

        foreach (var entry in store.EnumerateAccountBalances())
        {
            sum += RecordHash(TagAccountBalance, BalanceBody(entry, body));
        }

        var side = new byte[SideRecordHeaderBytes + LedgerLimits.SideRecordBytesMax];
        foreach (var record in store.EnumerateSideRecords())
        {
            sum += RecordHash(TagSideRecord, SideRecordBody(record, side));
        }

        return sum;
    }

    /// <summary>Writes the whole committed state to <paramref name="destination"/>.</summary>
    public void WriteSnapshot(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Span<byte> body = stackalloc byte[1 + RecordBodyBytesMax];
        destination.Write(SnapshotMagic);
        BinaryPrimitives.WriteUInt64LittleEndian(body, store.LastTimestamp);
        destination.Write(body[..8]);
        foreach (var account in store.EnumerateAccounts())
        {
            body[0] = TagAccount;
            LedgerCodec.WriteAccount(body[1..], account);
            destination.Write(body[..(1 + LedgerLimits.RecordSizeBytes)]);
        }

        foreach (var transfer in store.EnumerateTransfers())
        {
            WriteRecord(destination, TagTransfer, TransferBody(transfer, body[1..]), body);
        }

        foreach (var id in store.EnumerateTransientFailures())
        {
            LedgerCodec.WriteId(body[1..], id);
            WriteRecord(destination, TagTransientFailure, body.Slice(1, 16), body);
        }

        foreach (var entry in store.EnumerateAccountBalances())
        {
            WriteRecord(destination, TagAccountBalance, BalanceBody(entry, body[1..]), body);
        }

        var side = new byte[SideRecordHeaderBytes + LedgerLimits.SideRecordBytesMax];
        foreach (var record in store.EnumerateSideRecords())
        {
            destination.WriteByte(TagSideRecord);
            destination.Write(SideRecordBody(record, side));
        }

        body[0] = TagEnd;
        BinaryPrimitives.WriteUInt128LittleEndian(body[1..], Fingerprint());
        destination.Write(body[..17]);
    }

    /// <summary>
    /// Replaces the whole state with a snapshot from <see cref="WriteSnapshot"/>. Throws
    /// <see cref="InvalidDataException"/> when the snapshot is truncated or corrupt (its fingerprint
    /// does not match what was restored); the store is then in an undefined state and must be
    /// restored again from a good snapshot.
    /// </summary>
    public void RestoreSnapshot(Stream source)
    {
        ArgumentNullException.ThrowIfNull(source);
        Span<byte> header = stackalloc byte[16];
        ReadExactly(source, header);
        if (!header[..8].SequenceEqual(SnapshotMagic))
        {
            throw new InvalidDataException("This is not a RaftLedger ledger snapshot (bad magic); restore from a snapshot written by WriteSnapshot.");
        }

        var lastTimestamp = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        batch.Reset();
        store.Clear();
        var expected = RestoreRecords(source, lastTimestamp);
        var actual = Fingerprint();
        if (actual != expected)
        {
            throw new InvalidDataException($"The restored ledger state has fingerprint {actual:X32} but the snapshot says {expected:X32}: the snapshot is corrupt.");
        }

        CheckCrossShardExpiryOrder();
    }

    private UInt128 RestoreRecords(Stream source, ulong lastTimestamp)
    {
        var writes = new LedgerWriteSet();
        var expiring = new List<Transfer>();
        var pending = 0;
        Span<byte> body = stackalloc byte[RecordBodyBytesMax];
        while (true)
        {
            var tag = source.ReadByte();
            if (tag < 0)
            {
                throw new InvalidDataException("The ledger snapshot ends before its end record: it is truncated.");
            }

            if (tag == TagEnd)
            {
                ReadExactly(source, body[..16]);
                CommitRestoreChunk(writes, lastTimestamp);
                RestoreExpiryIndex(expiring, writes, lastTimestamp);
                return BinaryPrimitives.ReadUInt128LittleEndian(body);
            }

            RestoreRecord(source, (byte)tag, body, writes, expiring);
            if (++pending == RestoreChunkRecords)
            {
                CommitRestoreChunk(writes, lastTimestamp);
                pending = 0;
            }
        }
    }

    private static void RestoreRecord(Stream source, byte tag, Span<byte> body, LedgerWriteSet writes, List<Transfer> expiring)
    {
        switch (tag)
        {
            case TagAccount:
                ReadExactly(source, body[..LedgerLimits.RecordSizeBytes]);
                writes.AddAccount(LedgerCodec.ReadAccount(body));
                break;
            case TagTransfer:
                ReadExactly(source, body[..(LedgerLimits.RecordSizeBytes + 1)]);
                var transfer = LedgerCodec.ReadTransfer(body);
                var status = (PendingStatus)body[LedgerLimits.RecordSizeBytes];
                writes.AddTransfer(transfer);
                if (status != PendingStatus.None)
                {
                    writes.AddPendingStatus(transfer.Id, status);
                }

                if (status == PendingStatus.Pending && transfer.TimeoutSeconds != 0)
                {
                    expiring.Add(transfer); // Indexed once every account is restored (RestoreExpiryIndex).
                }

                break;
            case TagTransientFailure:
                ReadExactly(source, body[..16]);
                writes.AddTransientFailure(LedgerCodec.ReadId(body));
                break;
            case TagAccountBalance:
                ReadExactly(source, body[..RecordBodyBytesMax]);
                writes.AddAccountBalance(new AccountBalanceEntry(LedgerCodec.ReadId(body), LedgerCodec.ReadAccountBalance(body[16..])));
                break;
            case TagSideRecord:
                writes.AddSideRecord(ReadSideRecord(source, body));
                break;
            default:
                throw new InvalidDataException($"The ledger snapshot has an unknown record tag {tag}: it is corrupt.");
        }
    }

    /// <summary>
    /// The ledger's expiry index holds the pending transfers with a timeout whose accounts both live here (the
    /// local ones); one with an account on another shard is expired by the cross-shard protocol, from its Expiry
    /// side record (restored as such), never by this ledger's index.
    /// </summary>
    private void RestoreExpiryIndex(List<Transfer> expiring, LedgerWriteSet writes, ulong lastTimestamp)
    {
        if (expiring.Count == 0)
        {
            return;
        }

        foreach (var transfer in expiring)
        {
            if (store.TryGetAccount(transfer.DebitAccountId, out _) && store.TryGetAccount(transfer.CreditAccountId, out _))
            {
                Invariant.Check(!store.TryGetSideRecord(CrossShard.CrossShardTables.Expiry, transfer.Id, out _), "one expiry per pending transfer");
                writes.AddExpiry(new ExpiryEntry((ulong)ExpiresAt(transfer.Timestamp, transfer.TimeoutSeconds), transfer.Id));
            }
        }

        CommitRestoreChunk(writes, lastTimestamp);
    }

    private void CommitRestoreChunk(LedgerWriteSet writes, ulong lastTimestamp)
    {
        writes.LastTimestamp = lastTimestamp;
        store.Commit(writes);
        writes.Clear();
    }

    private ReadOnlySpan<byte> TransferBody(in Transfer transfer, Span<byte> body)
    {
        LedgerCodec.WriteTransfer(body, transfer);
        body[LedgerLimits.RecordSizeBytes] = (byte)store.GetPendingStatus(transfer.Id);
        return body[..(LedgerLimits.RecordSizeBytes + 1)];
    }

    private static ReadOnlySpan<byte> SideRecordBody(in SideRecord record, byte[] buffer)
    {
        var value = record.Value!;
        Invariant.Check(value.Length <= LedgerLimits.SideRecordBytesMax);
        buffer[0] = record.Table;
        LedgerCodec.WriteId(buffer.AsSpan(1), record.Key);
        BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(17), value.Length);
        value.CopyTo(buffer.AsSpan(SideRecordHeaderBytes));
        return buffer.AsSpan(0, SideRecordHeaderBytes + value.Length);
    }

    private static SideRecord ReadSideRecord(Stream source, Span<byte> body)
    {
        ReadExactly(source, body[..SideRecordHeaderBytes]);
        var length = BinaryPrimitives.ReadInt32LittleEndian(body[17..]);
        if (length < 0 || length > LedgerLimits.SideRecordBytesMax)
        {
            throw new InvalidDataException($"The ledger snapshot has a side record of {length} bytes (at most {LedgerLimits.SideRecordBytesMax}): it is corrupt.");
        }

        var value = new byte[length];
        ReadExactly(source, value);
        return new SideRecord(body[0], LedgerCodec.ReadId(body[1..]), value);
    }

    private static ReadOnlySpan<byte> BalanceBody(in AccountBalanceEntry entry, Span<byte> body)
    {
        LedgerCodec.WriteId(body, entry.AccountId);
        LedgerCodec.WriteAccountBalance(body[16..], entry.Balance);
        return body[..RecordBodyBytesMax];
    }

    private static void WriteRecord(Stream destination, byte tag, ReadOnlySpan<byte> recordBody, Span<byte> buffer)
    {
        Invariant.Check(recordBody.Length <= RecordBodyBytesMax);
        buffer[0] = tag;
        destination.Write(buffer[..(1 + recordBody.Length)]);
    }

    private static void ReadExactly(Stream source, Span<byte> into)
    {
        try
        {
            source.ReadExactly(into);
        }
        catch (EndOfStreamException exception)
        {
            throw new InvalidDataException("The ledger snapshot ends in the middle of a record: it is truncated.", exception);
        }
    }

    private static UInt128 RecordHash(byte tag, ReadOnlySpan<byte> body) =>
        XxHash128.HashToUInt128(body, seed: tag);
}
