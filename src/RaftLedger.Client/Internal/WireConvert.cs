using RaftLedger.Ledger;
using Wire = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Client.Internal;

/// <summary>Requests and replies of ledger.proto for the SDK; the records themselves convert in <see cref="Wire.WireRecords"/>, shared with the node.</summary>
internal static class WireConvert
{
    public static Wire.AccountFilter ToWire(in AccountFilter filter) => new()
    {
        AccountIdLo = Wire.WireRecords.Lo(filter.AccountId),
        AccountIdHi = Wire.WireRecords.Hi(filter.AccountId),
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
            request.Ids.Add(new Wire.Id { Lo = Wire.WireRecords.Lo(id), Hi = Wire.WireRecords.Hi(id) });
        }

        return request;
    }

    public static Transfer[] FromWire(Wire.Transfers reply)
    {
        var transfers = new Transfer[reply.Transfers_.Count];
        for (var i = 0; i < transfers.Length; i++)
        {
            transfers[i] = Wire.WireRecords.FromWire(reply.Transfers_[i]);
        }

        return transfers;
    }

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
