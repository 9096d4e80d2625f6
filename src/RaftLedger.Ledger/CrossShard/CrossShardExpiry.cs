using System.Buffers.Binary;
using RaftLedger.Common;

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

    /// <summary>Bytes of one pending transfer id in an <see cref="CrossShardTables.ExpiryOrder"/> record.</summary>
    public const int OrderIdBytes = 16;

    /// <summary>The <see cref="CrossShardTables.ExpiryOrder"/> key of a pending transfer: ascending keys are ascending expiry times.</summary>
    public static UInt128 OrderKey(ulong expiresAtNs, UInt128 pendingId) => new(expiresAtNs, (ulong)pendingId);

    /// <summary>The expiry time an <see cref="CrossShardTables.ExpiryOrder"/> key stands for.</summary>
    internal static ulong OrderKeyExpiresAt(UInt128 key) => (ulong)(key >> 64);

    /// <summary>The ids of an <see cref="CrossShardTables.ExpiryOrder"/> record (null: none) with <paramref name="pendingId"/> added.</summary>
    public static byte[] OrderWithId(byte[]? ids, UInt128 pendingId)
    {
        var count = ids is null ? 0 : OrderIdCount(ids);
        var value = new byte[(count + 1) * OrderIdBytes];
        ids?.CopyTo(value, 0);
        BinaryPrimitives.WriteUInt128LittleEndian(value.AsSpan(count * OrderIdBytes), pendingId);
        return value;
    }

    /// <summary>The ids of an <see cref="CrossShardTables.ExpiryOrder"/> record without <paramref name="pendingId"/>; null when none is left.</summary>
    internal static byte[]? OrderWithoutId(byte[] ids, UInt128 pendingId)
    {
        var kept = Array.FindAll(OrderIds(ids), id => id != pendingId);
        Invariant.Check(kept.Length == OrderIdCount(ids) - 1, "an expiry-order record holds each of its pending transfers once");
        if (kept.Length == 0)
        {
            return null;
        }

        var value = new byte[kept.Length * OrderIdBytes];
        for (var i = 0; i < kept.Length; i++)
        {
            BinaryPrimitives.WriteUInt128LittleEndian(value.AsSpan(i * OrderIdBytes), kept[i]);
        }

        return value;
    }

    /// <summary>The pending transfer ids of an <see cref="CrossShardTables.ExpiryOrder"/> record, in the order they were added.</summary>
    internal static UInt128[] OrderIds(ReadOnlySpan<byte> ids)
    {
        var result = new UInt128[OrderIdCount(ids)];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = BinaryPrimitives.ReadUInt128LittleEndian(ids[(i * OrderIdBytes)..]);
        }

        return result;
    }

    private static int OrderIdCount(ReadOnlySpan<byte> ids)
    {
        if (ids.Length == 0 || ids.Length % OrderIdBytes != 0)
        {
            throw new InvalidDataException($"A cross-shard expiry-order record has {ids.Length} bytes, not a positive multiple of {OrderIdBytes}.");
        }

        return ids.Length / OrderIdBytes;
    }

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
