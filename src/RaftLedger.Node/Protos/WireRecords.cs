using RaftLedger.Ledger;

namespace RaftLedger.Node.Api.Wire;

/// <summary>
/// The ledger's records to and from their ledger.proto messages (u128 = hi and lo fixed64). One source for both
/// sides of the contract: the node compiles it here and the client SDK links it next to its own copy of ledger.proto,
/// so a field added to a record cannot be mapped on one side and forgotten on the other. No range checks: the node
/// checks what it receives before it converts (in the node's GrpcConvert), and the client trusts
/// the node, which only sends u16 codes and flags.
/// </summary>
internal static class WireRecords
{
    public static ulong Lo(UInt128 value) => (ulong)value;

    public static ulong Hi(UInt128 value) => (ulong)(value >> 64);

    public static Account ToWire(in RaftLedger.Ledger.Account account) => new()
    {
        IdLo = Lo(account.Id),
        IdHi = Hi(account.Id),
        DebitsPendingLo = Lo(account.DebitsPending),
        DebitsPendingHi = Hi(account.DebitsPending),
        DebitsPostedLo = Lo(account.DebitsPosted),
        DebitsPostedHi = Hi(account.DebitsPosted),
        CreditsPendingLo = Lo(account.CreditsPending),
        CreditsPendingHi = Hi(account.CreditsPending),
        CreditsPostedLo = Lo(account.CreditsPosted),
        CreditsPostedHi = Hi(account.CreditsPosted),
        UserData128Lo = Lo(account.UserData128),
        UserData128Hi = Hi(account.UserData128),
        UserData64 = account.UserData64,
        UserData32 = account.UserData32,
        Ledger = account.Ledger,
        Code = account.Code,
        Flags = (uint)account.Flags,
        Timestamp = account.Timestamp,
    };

    public static Transfer ToWire(in RaftLedger.Ledger.Transfer transfer) => new()
    {
        IdLo = Lo(transfer.Id),
        IdHi = Hi(transfer.Id),
        DebitAccountIdLo = Lo(transfer.DebitAccountId),
        DebitAccountIdHi = Hi(transfer.DebitAccountId),
        CreditAccountIdLo = Lo(transfer.CreditAccountId),
        CreditAccountIdHi = Hi(transfer.CreditAccountId),
        AmountLo = Lo(transfer.Amount),
        AmountHi = Hi(transfer.Amount),
        PendingIdLo = Lo(transfer.PendingId),
        PendingIdHi = Hi(transfer.PendingId),
        UserData128Lo = Lo(transfer.UserData128),
        UserData128Hi = Hi(transfer.UserData128),
        UserData64 = transfer.UserData64,
        UserData32 = transfer.UserData32,
        Timeout = transfer.TimeoutSeconds,
        Ledger = transfer.Ledger,
        Code = transfer.Code,
        Flags = (uint)transfer.Flags,
        Timestamp = transfer.Timestamp,
    };

    public static Balance ToWire(in AccountBalance balance) => new()
    {
        DebitsPendingLo = Lo(balance.DebitsPending),
        DebitsPendingHi = Hi(balance.DebitsPending),
        DebitsPostedLo = Lo(balance.DebitsPosted),
        DebitsPostedHi = Hi(balance.DebitsPosted),
        CreditsPendingLo = Lo(balance.CreditsPending),
        CreditsPendingHi = Hi(balance.CreditsPending),
        CreditsPostedLo = Lo(balance.CreditsPosted),
        CreditsPostedHi = Hi(balance.CreditsPosted),
        Timestamp = balance.Timestamp,
    };

    /// <summary>Codes and flags are cast to u16 unchecked: callers that take them from outside check them first.</summary>
    public static RaftLedger.Ledger.Account FromWire(Account message) => new()
    {
        Id = new UInt128(message.IdHi, message.IdLo),
        DebitsPending = new UInt128(message.DebitsPendingHi, message.DebitsPendingLo),
        DebitsPosted = new UInt128(message.DebitsPostedHi, message.DebitsPostedLo),
        CreditsPending = new UInt128(message.CreditsPendingHi, message.CreditsPendingLo),
        CreditsPosted = new UInt128(message.CreditsPostedHi, message.CreditsPostedLo),
        UserData128 = new UInt128(message.UserData128Hi, message.UserData128Lo),
        UserData64 = message.UserData64,
        UserData32 = message.UserData32,
        Ledger = message.Ledger,
        Code = (ushort)message.Code,
        Flags = (AccountFlags)message.Flags,
        Timestamp = message.Timestamp,
    };

    /// <summary>Codes and flags are cast to u16 unchecked: callers that take them from outside check them first.</summary>
    public static RaftLedger.Ledger.Transfer FromWire(Transfer message) => new()
    {
        Id = new UInt128(message.IdHi, message.IdLo),
        DebitAccountId = new UInt128(message.DebitAccountIdHi, message.DebitAccountIdLo),
        CreditAccountId = new UInt128(message.CreditAccountIdHi, message.CreditAccountIdLo),
        Amount = new UInt128(message.AmountHi, message.AmountLo),
        PendingId = new UInt128(message.PendingIdHi, message.PendingIdLo),
        UserData128 = new UInt128(message.UserData128Hi, message.UserData128Lo),
        UserData64 = message.UserData64,
        UserData32 = message.UserData32,
        TimeoutSeconds = message.Timeout,
        Ledger = message.Ledger,
        Code = (ushort)message.Code,
        Flags = (TransferFlags)message.Flags,
        Timestamp = message.Timestamp,
    };

    public static AccountBalance FromWire(Balance message) => new()
    {
        DebitsPending = new UInt128(message.DebitsPendingHi, message.DebitsPendingLo),
        DebitsPosted = new UInt128(message.DebitsPostedHi, message.DebitsPostedLo),
        CreditsPending = new UInt128(message.CreditsPendingHi, message.CreditsPendingLo),
        CreditsPosted = new UInt128(message.CreditsPostedHi, message.CreditsPostedLo),
        Timestamp = message.Timestamp,
    };
}
