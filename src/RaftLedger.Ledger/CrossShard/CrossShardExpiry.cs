using System.Buffers.Binary;

namespace RaftLedger.Ledger.CrossShard;

/// <summary>
/// Expiry of pending transfers whose legs live on other shards (docs/design/cross-shard.md, "Expiry across
/// shards"). The pending transfer's id home keeps its status and, in side table <see cref="CrossShardTables.Expiry"/>,
/// when it expires; once cluster time passes that, its leader runs an expiry transaction: a void-shaped event
/// whose Resolve legs release the reservation on the accounts' shards and whose Decide sets the status to
/// expired in log order (so a post or void decided later gets pending_transfer_expired, one decided earlier wins).
/// </summary>
public static class CrossShardExpiry
{
    /// <summary>Bytes of an <see cref="CrossShardTables.Expiry"/> record: u64 expires-at (cluster ns).</summary>
    public const int RecordBytes = 8;

    /// <summary>
    /// The event of an expiry transaction of <paramref name="pending"/>: a void whose id is the pending transfer's own
    /// id (no client can send one: a post/void whose pending id equals its id is refused with pending_id_must_be_different),
    /// with the pending transfer's accounts, ledger, code and amount. It creates no transfer.
    /// </summary>
    public static Transfer EventOf(in Transfer pending) => new()
    {
        Id = pending.Id,
        PendingId = pending.Id,
        DebitAccountId = pending.DebitAccountId,
        CreditAccountId = pending.CreditAccountId,
        Amount = pending.Amount,
        Ledger = pending.Ledger,
        Code = pending.Code,
        Flags = TransferFlags.VoidPendingTransfer,
    };

    /// <summary>True for the event of an expiry transaction (see <see cref="EventOf"/>).</summary>
    public static bool IsExpiry(in Transfer t) => t.Id == t.PendingId && (t.Flags & TransferFlags.VoidPendingTransfer) != 0;

    internal static byte[] WriteRecord(ulong expiresAtNs)
    {
        var value = new byte[RecordBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(value, expiresAtNs);
        return value;
    }

    internal static ulong ReadRecord(ReadOnlySpan<byte> value)
    {
        if (value.Length != RecordBytes)
        {
            throw new InvalidDataException($"A cross-shard expiry record has {value.Length} bytes instead of {RecordBytes}.");
        }

        return BinaryPrimitives.ReadUInt64LittleEndian(value);
    }
}
