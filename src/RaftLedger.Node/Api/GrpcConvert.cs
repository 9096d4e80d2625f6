using RaftLedger.Ledger;
using Proto = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Node.Api;

/// <summary>Ledger types to and from their protobuf messages (u128 = hi and lo fixed64).</summary>
public static class GrpcConvert
{
    public static Account ToAccount(Proto.Account message)
    {
        if (message.Code > ushort.MaxValue || message.Flags > ushort.MaxValue)
        {
            throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.InvalidArgument,
                $"account code and flags are u16 (at most {ushort.MaxValue}); got code {message.Code}, flags {message.Flags}."));
        }

        return new Account
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
    }

    public static Transfer ToTransfer(Proto.Transfer message)
    {
        if (message.Code > ushort.MaxValue || message.Flags > ushort.MaxValue)
        {
            throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.InvalidArgument,
                $"transfer code and flags are u16 (at most {ushort.MaxValue}); got code {message.Code}, flags {message.Flags}."));
        }

        return new Transfer
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
    }

    public static Proto.Account FromAccount(in Account account) => new()
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

    public static Proto.Transfer FromTransfer(in Transfer transfer) => new()
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

    public static Proto.Balance FromBalance(in AccountBalance balance) => new()
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

    public static Proto.Cluster FromCluster(ClusterStatus cluster)
    {
        var reply = new Proto.Cluster();
        foreach (var node in cluster.Nodes)
        {
            reply.Nodes.Add(new Proto.Node
            {
                Id = node.Id,
                Api = node.ApiAddress,
                Peer = node.PeerAddress,
                Grpc = node.GrpcAddress ?? "",
                Up = node.Up,
            });
        }

        foreach (var shard in cluster.Shards)
        {
            var message = new Proto.Shard
            {
                Id = shard.Id,
                Leader = shard.Leader,
                Term = shard.Term,
                CommitIndex = shard.CommitIndex,
                AppliedIndex = shard.AppliedIndex,
            };
            message.Replicas.AddRange(shard.Replicas);
            reply.Shards.Add(message);
        }

        if (cluster.Meta is { } meta)
        {
            reply.Meta = new Proto.MetaGroup { Leader = meta.Leader, Term = meta.Term, CommitIndex = meta.CommitIndex, AppliedIndex = meta.AppliedIndex };
            reply.Meta.Members.AddRange(meta.Members);
        }

        return reply;
    }

    public static ulong Lo(UInt128 value) => (ulong)value;

    public static ulong Hi(UInt128 value) => (ulong)(value >> 64);
}
