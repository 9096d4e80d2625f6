using RaftLedger.Ledger;
using Wire = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Client.Internal;

/// <summary>Ledger types to and from the protobuf messages of ledger.proto (u128 = lo and hi fixed64).</summary>
internal static class WireConvert
{
    public static ulong Lo(UInt128 value) => (ulong)value;

    public static ulong Hi(UInt128 value) => (ulong)(value >> 64);

    public static Wire.Account ToWire(in Account account) => new()
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

    public static Wire.Transfer ToWire(in Transfer transfer) => new()
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

    public static Wire.AccountFilter ToWire(in AccountFilter filter) => new()
    {
        AccountIdLo = Lo(filter.AccountId),
        AccountIdHi = Hi(filter.AccountId),
        TimestampMin = filter.TimestampMin,
        TimestampMax = filter.TimestampMax,
        Limit = filter.Limit,
        Flags = (uint)filter.Flags,
    };

    public static Wire.LookupRequest Lookup(UInt128[] ids)
    {
        var request = new Wire.LookupRequest();
        foreach (var id in ids)
        {
            request.Ids.Add(new Wire.Id { Lo = Lo(id), Hi = Hi(id) });
        }

        return request;
    }

    public static Account FromWire(Wire.Account message) => new()
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
        // The node only ever sends u16 codes and flags (it refuses larger ones on input).
        Code = (ushort)message.Code,
        Flags = (AccountFlags)message.Flags,
        Timestamp = message.Timestamp,
    };

    public static Transfer FromWire(Wire.Transfer message) => new()
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

    public static Transfer[] FromWire(Wire.Transfers reply)
    {
        var transfers = new Transfer[reply.Transfers_.Count];
        for (var i = 0; i < transfers.Length; i++)
        {
            transfers[i] = FromWire(reply.Transfers_[i]);
        }

        return transfers;
    }

    public static AccountBalance FromWire(Wire.Balance message) => new()
    {
        DebitsPending = new UInt128(message.DebitsPendingHi, message.DebitsPendingLo),
        DebitsPosted = new UInt128(message.DebitsPostedHi, message.DebitsPostedLo),
        CreditsPending = new UInt128(message.CreditsPendingHi, message.CreditsPendingLo),
        CreditsPosted = new UInt128(message.CreditsPostedHi, message.CreditsPostedLo),
        Timestamp = message.Timestamp,
    };

    public static EventAnswer[] Answers(Wire.CreateResults reply)
    {
        var answers = new EventAnswer[reply.Results.Count];
        for (var i = 0; i < answers.Length; i++)
        {
            answers[i] = new EventAnswer(reply.Results[i].Status, reply.Results[i].Timestamp);
        }

        return answers;
    }

    public static ClusterMap FromWire(Wire.Cluster reply)
    {
        var nodes = new List<ClusterNode>(reply.Nodes.Count);
        foreach (var node in reply.Nodes)
        {
            nodes.Add(new ClusterNode(node.Id, node.Api, node.Peer, node.Grpc, node.Up));
        }

        var shards = new List<ClusterShard>(reply.Shards.Count);
        foreach (var shard in reply.Shards)
        {
            shards.Add(new ClusterShard(shard.Id, [.. shard.Replicas], shard.Leader, shard.Term, shard.CommitIndex, shard.AppliedIndex));
        }

        // Shards are routed by index, so keep them in id order whatever order the node used.
        shards.Sort((a, b) => a.Id.CompareTo(b.Id));
        return new ClusterMap(nodes, shards);
    }
}
