using System.Buffers.Binary;
using RaftLedger.Common;

namespace RaftLedger.Ledger;

/// <summary>
/// Fixed-size little-endian encoding of accounts, transfers and balances: 128 bytes each, in
/// TigerBeetle's field layout. Used by stores (values on disk), by commands (events in Raft entries)
/// and by snapshots, so one record has one byte form everywhere.
/// </summary>
/// <remarks>
/// Account: id 0, debits_pending 16, debits_posted 32, credits_pending 48, credits_posted 64,
/// user_data_128 80, user_data_64 96, user_data_32 104, reserved (zero) 108, ledger 112, code 116,
/// flags 118, timestamp 120.
/// Transfer: id 0, debit_account_id 16, credit_account_id 32, amount 48, pending_id 64,
/// user_data_128 80, user_data_64 96, user_data_32 104, timeout 108, ledger 112, code 116, flags 118,
/// timestamp 120.
/// AccountBalance: debits_pending 0, debits_posted 16, credits_pending 32, credits_posted 48,
/// timestamp 64, reserved (zero) 72..127.
/// </remarks>
public static class LedgerCodec
{
    public const int AccountSizeBytes = LedgerLimits.RecordSizeBytes;
    public const int TransferSizeBytes = LedgerLimits.RecordSizeBytes;
    public const int AccountBalanceSizeBytes = LedgerLimits.RecordSizeBytes;

    /// <summary>Where a transfer record keeps its pending id (read on its own by the batch's lookup prefetch).</summary>
    public const int TransferPendingIdOffset = 64;

    public static void WriteAccount(Span<byte> destination, in Account account)
    {
        Invariant.Check(destination.Length >= AccountSizeBytes);
        BinaryPrimitives.WriteUInt128LittleEndian(destination, account.Id);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[16..], account.DebitsPending);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[32..], account.DebitsPosted);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[48..], account.CreditsPending);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[64..], account.CreditsPosted);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[80..], account.UserData128);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[96..], account.UserData64);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[104..], account.UserData32);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[108..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[112..], account.Ledger);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[116..], account.Code);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[118..], (ushort)account.Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[120..], account.Timestamp);
    }

    public static Account ReadAccount(ReadOnlySpan<byte> source)
    {
        Invariant.Check(source.Length >= AccountSizeBytes);
        return new Account
        {
            Id = BinaryPrimitives.ReadUInt128LittleEndian(source),
            DebitsPending = BinaryPrimitives.ReadUInt128LittleEndian(source[16..]),
            DebitsPosted = BinaryPrimitives.ReadUInt128LittleEndian(source[32..]),
            CreditsPending = BinaryPrimitives.ReadUInt128LittleEndian(source[48..]),
            CreditsPosted = BinaryPrimitives.ReadUInt128LittleEndian(source[64..]),
            UserData128 = BinaryPrimitives.ReadUInt128LittleEndian(source[80..]),
            UserData64 = BinaryPrimitives.ReadUInt64LittleEndian(source[96..]),
            UserData32 = BinaryPrimitives.ReadUInt32LittleEndian(source[104..]),
            Ledger = BinaryPrimitives.ReadUInt32LittleEndian(source[112..]),
            Code = BinaryPrimitives.ReadUInt16LittleEndian(source[116..]),
            Flags = (AccountFlags)BinaryPrimitives.ReadUInt16LittleEndian(source[118..]),
            Timestamp = BinaryPrimitives.ReadUInt64LittleEndian(source[120..]),
        };
    }

    public static void WriteTransfer(Span<byte> destination, in Transfer transfer)
    {
        Invariant.Check(destination.Length >= TransferSizeBytes);
        BinaryPrimitives.WriteUInt128LittleEndian(destination, transfer.Id);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[16..], transfer.DebitAccountId);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[32..], transfer.CreditAccountId);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[48..], transfer.Amount);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[TransferPendingIdOffset..], transfer.PendingId);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[80..], transfer.UserData128);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[96..], transfer.UserData64);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[104..], transfer.UserData32);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[108..], transfer.TimeoutSeconds);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[112..], transfer.Ledger);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[116..], transfer.Code);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[118..], (ushort)transfer.Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[120..], transfer.Timestamp);
    }

    public static Transfer ReadTransfer(ReadOnlySpan<byte> source)
    {
        Invariant.Check(source.Length >= TransferSizeBytes);
        return new Transfer
        {
            Id = BinaryPrimitives.ReadUInt128LittleEndian(source),
            DebitAccountId = BinaryPrimitives.ReadUInt128LittleEndian(source[16..]),
            CreditAccountId = BinaryPrimitives.ReadUInt128LittleEndian(source[32..]),
            Amount = BinaryPrimitives.ReadUInt128LittleEndian(source[48..]),
            PendingId = BinaryPrimitives.ReadUInt128LittleEndian(source[TransferPendingIdOffset..]),
            UserData128 = BinaryPrimitives.ReadUInt128LittleEndian(source[80..]),
            UserData64 = BinaryPrimitives.ReadUInt64LittleEndian(source[96..]),
            UserData32 = BinaryPrimitives.ReadUInt32LittleEndian(source[104..]),
            TimeoutSeconds = BinaryPrimitives.ReadUInt32LittleEndian(source[108..]),
            Ledger = BinaryPrimitives.ReadUInt32LittleEndian(source[112..]),
            Code = BinaryPrimitives.ReadUInt16LittleEndian(source[116..]),
            Flags = (TransferFlags)BinaryPrimitives.ReadUInt16LittleEndian(source[118..]),
            Timestamp = BinaryPrimitives.ReadUInt64LittleEndian(source[120..]),
        };
    }

    public static void WriteAccountBalance(Span<byte> destination, in AccountBalance balance)
    {
        Invariant.Check(destination.Length >= AccountBalanceSizeBytes);
        BinaryPrimitives.WriteUInt128LittleEndian(destination, balance.DebitsPending);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[16..], balance.DebitsPosted);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[32..], balance.CreditsPending);
        BinaryPrimitives.WriteUInt128LittleEndian(destination[48..], balance.CreditsPosted);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[64..], balance.Timestamp);
        destination[72..AccountBalanceSizeBytes].Clear();
    }

    public static AccountBalance ReadAccountBalance(ReadOnlySpan<byte> source)
    {
        Invariant.Check(source.Length >= AccountBalanceSizeBytes);
        return new AccountBalance
        {
            DebitsPending = BinaryPrimitives.ReadUInt128LittleEndian(source),
            DebitsPosted = BinaryPrimitives.ReadUInt128LittleEndian(source[16..]),
            CreditsPending = BinaryPrimitives.ReadUInt128LittleEndian(source[32..]),
            CreditsPosted = BinaryPrimitives.ReadUInt128LittleEndian(source[48..]),
            Timestamp = BinaryPrimitives.ReadUInt64LittleEndian(source[64..]),
        };
    }

    /// <summary>Writes a u128 id little-endian (16 bytes), e.g. as part of a store key.</summary>
    public static void WriteId(Span<byte> destination, UInt128 id) =>
        BinaryPrimitives.WriteUInt128LittleEndian(destination, id);

    public static UInt128 ReadId(ReadOnlySpan<byte> source) =>
        BinaryPrimitives.ReadUInt128LittleEndian(source);
}
