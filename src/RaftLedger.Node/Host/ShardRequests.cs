using System.Buffers.Binary;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Host;

/// <summary>What a request to a shard asks for. The numeric values travel between nodes (peer Forward call).</summary>
public enum ShardRequestKind : byte
{
    /// <summary>Payload: n × 128-byte accounts. Result: n × (status byte, timestamp u64).</summary>
    CreateAccounts = 1,

    /// <summary>Payload: n × 128-byte transfers. Result: n × (status byte, timestamp u64).</summary>
    CreateTransfers = 2,

    /// <summary>Payload: n × 16-byte ids. Result: the found accounts, 128 bytes each, in id order.</summary>
    LookupAccounts = 3,

    /// <summary>Payload: n × 16-byte ids. Result: the found transfers, 128 bytes each, in id order.</summary>
    LookupTransfers = 4,

    /// <summary>Payload: an encoded <see cref="AccountFilter"/>. Result: transfers, 128 bytes each.</summary>
    AccountTransfers = 5,

    /// <summary>Payload: an encoded <see cref="AccountFilter"/>. Result: balances, 128 bytes each.</summary>
    AccountBalances = 6,
}

/// <summary>How a shard request ended. The numeric values travel between nodes.</summary>
public enum ShardCallStatus : byte
{
    /// <summary>Done; the payload holds the result.</summary>
    Ok = 0,

    /// <summary>This node does not lead the shard; retry on <see cref="ShardCallResult.LeaderHint"/> (0 = unknown). Nothing applied.</summary>
    NotLeader = 1,

    /// <summary>The shard has no leader (election running) or it is not ready to take writes yet. Nothing applied.</summary>
    NoLeader = 2,

    /// <summary>The shard's queue is full; back off. Nothing applied.</summary>
    Overloaded = 3,

    /// <summary>The request was proposed but its outcome was not known by the deadline: retry with the same ids.</summary>
    OutcomeUnknown = 4,

    /// <summary>The node is stopping or cannot reach the shard's leader. Nothing applied.</summary>
    Unavailable = 5,
}

/// <summary>The outcome of one request to one shard: a status and, when Ok, the encoded result.</summary>
public readonly record struct ShardCallResult(ShardCallStatus Status, ReadOnlyMemory<byte> Payload, ulong LeaderHint, string Detail)
{
    public bool IsOk => Status == ShardCallStatus.Ok;

    public static ShardCallResult Ok(ReadOnlyMemory<byte> payload) => new(ShardCallStatus.Ok, payload, 0, "");

    public static ShardCallResult Fail(ShardCallStatus status, string detail, ulong leaderHint = 0) => new(status, default, leaderHint, detail);
}

/// <summary>Encodings of request payloads and results shared by the local path and the peer Forward call.</summary>
public static class ShardPayload
{
    /// <summary>Bytes of one write result: status byte then the event's timestamp.</summary>
    public const int WriteResultBytes = 9;

    /// <summary>Bytes of an encoded account filter.</summary>
    public const int FilterBytes = 40;

    public static byte[] EncodeAccounts(ReadOnlySpan<Account> accounts)
    {
        var bytes = new byte[accounts.Length * LedgerLimits.RecordSizeBytes];
        for (var i = 0; i < accounts.Length; i++)
        {
            LedgerCodec.WriteAccount(bytes.AsSpan(i * LedgerLimits.RecordSizeBytes), accounts[i]);
        }

        return bytes;
    }

    public static byte[] EncodeTransfers(ReadOnlySpan<Transfer> transfers)
    {
        var bytes = new byte[transfers.Length * LedgerLimits.RecordSizeBytes];
        for (var i = 0; i < transfers.Length; i++)
        {
            LedgerCodec.WriteTransfer(bytes.AsSpan(i * LedgerLimits.RecordSizeBytes), transfers[i]);
        }

        return bytes;
    }

    public static Account[] DecodeAccounts(ReadOnlySpan<byte> bytes)
    {
        var accounts = new Account[bytes.Length / LedgerLimits.RecordSizeBytes];
        for (var i = 0; i < accounts.Length; i++)
        {
            accounts[i] = LedgerCodec.ReadAccount(bytes[(i * LedgerLimits.RecordSizeBytes)..]);
        }

        return accounts;
    }

    public static Transfer[] DecodeTransfers(ReadOnlySpan<byte> bytes)
    {
        var transfers = new Transfer[bytes.Length / LedgerLimits.RecordSizeBytes];
        for (var i = 0; i < transfers.Length; i++)
        {
            transfers[i] = LedgerCodec.ReadTransfer(bytes[(i * LedgerLimits.RecordSizeBytes)..]);
        }

        return transfers;
    }

    public static AccountBalance[] DecodeBalances(ReadOnlySpan<byte> bytes)
    {
        var balances = new AccountBalance[bytes.Length / LedgerLimits.RecordSizeBytes];
        for (var i = 0; i < balances.Length; i++)
        {
            balances[i] = LedgerCodec.ReadAccountBalance(bytes[(i * LedgerLimits.RecordSizeBytes)..]);
        }

        return balances;
    }

    public static byte[] EncodeIds(ReadOnlySpan<UInt128> ids)
    {
        var bytes = new byte[ids.Length * 16];
        for (var i = 0; i < ids.Length; i++)
        {
            BinaryPrimitives.WriteUInt128LittleEndian(bytes.AsSpan(i * 16), ids[i]);
        }

        return bytes;
    }

    public static UInt128[] DecodeIds(ReadOnlySpan<byte> bytes)
    {
        var ids = new UInt128[bytes.Length / 16];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = BinaryPrimitives.ReadUInt128LittleEndian(bytes[(i * 16)..]);
        }

        return ids;
    }

    public static byte[] EncodeFilter(in AccountFilter filter)
    {
        var bytes = new byte[FilterBytes];
        BinaryPrimitives.WriteUInt128LittleEndian(bytes, filter.AccountId);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), filter.TimestampMin);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(24), filter.TimestampMax);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(32), filter.Limit);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(36), (uint)filter.Flags);
        return bytes;
    }

    public static AccountFilter DecodeFilter(ReadOnlySpan<byte> bytes) => new()
    {
        AccountId = BinaryPrimitives.ReadUInt128LittleEndian(bytes),
        TimestampMin = BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]),
        TimestampMax = BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]),
        Limit = BinaryPrimitives.ReadUInt32LittleEndian(bytes[32..]),
        Flags = (AccountFilterFlags)BinaryPrimitives.ReadUInt32LittleEndian(bytes[36..]),
    };

    /// <summary>Write result <paramref name="index"/>: the status byte and the timestamp (0 unless created).</summary>
    public static (byte Status, ulong Timestamp) ReadWriteResult(ReadOnlySpan<byte> results, int index)
    {
        var at = index * WriteResultBytes;
        return (results[at], BinaryPrimitives.ReadUInt64LittleEndian(results[(at + 1)..]));
    }

    /// <summary>True when a payload's size fits its kind (user input reaching another node is checked again there).</summary>
    public static bool IsWellFormed(ShardRequestKind kind, int payloadBytes) => kind switch
    {
        ShardRequestKind.CreateAccounts or ShardRequestKind.CreateTransfers =>
            payloadBytes > 0 && payloadBytes % LedgerLimits.RecordSizeBytes == 0 &&
            payloadBytes / LedgerLimits.RecordSizeBytes <= LedgerLimits.BatchEventsMax,
        ShardRequestKind.LookupAccounts or ShardRequestKind.LookupTransfers =>
            payloadBytes % 16 == 0 && payloadBytes / 16 <= LedgerLimits.LookupIdsMax,
        ShardRequestKind.AccountTransfers or ShardRequestKind.AccountBalances => payloadBytes == FilterBytes,
        _ => false,
    };
}
