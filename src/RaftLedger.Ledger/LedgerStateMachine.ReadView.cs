using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger;

// What clients see of an account (docs/design/cross-shard.md, "Read semantics"): a prepared cross-shard leg
// reserves its amount as pending, so that every later check on the account counts it, but the transfer is
// not decided yet. No prefix of committed transfers has that amount pending, so lookups and balance history
// leave it out: the per-account totals of such reservations (side table Reserved, written in the same write
// as the legs) are subtracted. Pending two-phase transfers are committed transfers and keep showing.
public sealed partial class LedgerStateMachine
{
    private const int ReservedRecordBytes = 32;

    /// <summary>
    /// The account as a client sees it, or false when it does not exist: the reservations of undecided
    /// cross-shard legs are not in its pending balances. Committed state.
    /// </summary>
    public bool TryLookupAccount(UInt128 id, out Account account)
    {
        if (!store.TryGetAccount(id, out account))
        {
            return false;
        }

        HideReservations(ref account, store.TryGetSideRecord(CrossShardTables.Reserved, id, out var reserved) ? reserved : []);
        if (store.TryGetSideRecord(CrossShardTables.Closing, id, out _))
        {
            account.Flags &= ~AccountFlags.Closed; // Closed by an undecided closing leg: not a committed close yet.
        }

        return true;
    }

    /// <summary>The account as the ledger checks it: pending balances include undecided cross-shard legs. Committed state.</summary>
    public bool TryLookupAccountWithReservations(UInt128 id, out Account account) => store.TryGetAccount(id, out account);

    /// <summary>
    /// Records a leg's change of the account's reserved total: <paramref name="add"/> when the leg is prepared,
    /// subtract when it is posted or released. Outside savepoints (side records are not rolled back).
    /// </summary>
    private void AdjustReserved(UInt128 accountId, BalanceSide side, UInt128 amount, bool add)
    {
        var (debits, credits) = batch.TryGetSideRecord(CrossShardTables.Reserved, accountId, out var value) ? ReadReserved(value) : (UInt128.Zero, UInt128.Zero);
        ref var total = ref side == BalanceSide.Debit ? ref debits : ref credits;
        // Invariant: a side's reserved total is the sum of its prepared legs' amounts, so it never underflows,
        // and it is at most the account's pending balance on that side (which cannot overflow).
        Invariant.Check(add || total >= amount, "a finished leg's amount was reserved");
        total = add ? total + amount : total - amount;
        batch.SetSideRecord(CrossShardTables.Reserved, accountId, debits == UInt128.Zero && credits == UInt128.Zero ? null : WriteReserved(debits, credits));
    }

    /// <summary>The account's balances for its history at <paramref name="timestamp"/>, without undecided legs (during apply).</summary>
    private AccountBalance HistoryBalanceOf(in Account a, ulong timestamp)
    {
        var view = a;
        if (batch.TryGetSideRecord(CrossShardTables.Reserved, a.Id, out var reserved))
        {
            HideReservations(ref view, reserved);
        }

        return BalanceOf(view, timestamp);
    }

    private static void HideReservations(ref Account account, ReadOnlySpan<byte> reserved)
    {
        if (reserved.IsEmpty)
        {
            return;
        }

        var (debits, credits) = ReadReserved(reserved);
        Invariant.Check(account.DebitsPending >= debits && account.CreditsPending >= credits, "reservations are part of the pending balances");
        account.DebitsPending -= debits;
        account.CreditsPending -= credits;
    }

    private static (UInt128 Debits, UInt128 Credits) ReadReserved(ReadOnlySpan<byte> value)
    {
        Invariant.Check(value.Length == ReservedRecordBytes);
        return (BinaryPrimitives.ReadUInt128LittleEndian(value), BinaryPrimitives.ReadUInt128LittleEndian(value[16..]));
    }

    private static byte[] WriteReserved(UInt128 debits, UInt128 credits)
    {
        var value = new byte[ReservedRecordBytes];
        BinaryPrimitives.WriteUInt128LittleEndian(value, debits);
        BinaryPrimitives.WriteUInt128LittleEndian(value.AsSpan(16), credits);
        return value;
    }

    /// <summary>
    /// Cross-shard work this replica's committed state still holds: coordinator records (decided, not every
    /// participant finished) plus prepared transactions (legs reserved, not finished). Zero once the cluster is
    /// quiet; any replica. Counted without copying the records (a RocksDB store counts its in-memory mirror).
    /// </summary>
    public int CrossShardUnfinishedCount() =>
        store.CountSideRecords(CrossShardTables.Coordinator) + store.CountSideRecords(CrossShardTables.Prepared);
}
