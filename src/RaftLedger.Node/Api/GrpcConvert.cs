using RaftLedger.Ledger;
using Proto = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Node.Api;

/// <summary>
/// Ledger types to and from their protobuf messages, for the node's gRPC service: what comes in is range-checked here
/// (codes and flags are u16), then converted by <see cref="Proto.WireRecords"/>, which the client SDK shares.
/// </summary>
public static class GrpcConvert
{
    public static Account ToAccount(Proto.Account message)
    {
        if (message.Code > ushort.MaxValue || message.Flags > ushort.MaxValue)
        {
            throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.InvalidArgument,
                $"account code and flags are u16 (at most {ushort.MaxValue}); got code {message.Code}, flags {message.Flags}."));
        }

        return Proto.WireRecords.FromWire(message);
    }

    public static Transfer ToTransfer(Proto.Transfer message)
    {
        if (message.Code > ushort.MaxValue || message.Flags > ushort.MaxValue)
        {
            throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.InvalidArgument,
                $"transfer code and flags are u16 (at most {ushort.MaxValue}); got code {message.Code}, flags {message.Flags}."));
        }

        return Proto.WireRecords.FromWire(message);
    }

    public static Proto.Account FromAccount(in Account account) => Proto.WireRecords.ToWire(account);

    public static Proto.Transfer FromTransfer(in Transfer transfer) => Proto.WireRecords.ToWire(transfer);

    public static Proto.Balance FromBalance(in AccountBalance balance) => Proto.WireRecords.ToWire(balance);

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

    public static ulong Lo(UInt128 value) => Proto.WireRecords.Lo(value);

    public static ulong Hi(UInt128 value) => Proto.WireRecords.Hi(value);
}
