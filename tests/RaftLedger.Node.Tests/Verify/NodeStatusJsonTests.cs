using System.Buffers;
using System.Text.Json;
using RaftLedger.Cli.Client;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Verify;

/// <summary>/v1/node as the node writes it and verify reads it: the cross-shard work each replica still holds.</summary>
public sealed class NodeStatusJsonTests
{
    private static byte[] Written(NodeStatus status)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            JsonResponseWriter.WriteNode(writer, status);
        }

        return buffer.WrittenSpan.ToArray();
    }

    [Fact]
    public void Cross_shard_unfinished_count_of_each_replica_survives_the_json_round_trip()
    {
        var status = new NodeStatus(2, [new LocalReplicaStatus(0, true, 3, 40, 39, 0, CrossShardUnfinished: 5), new LocalReplicaStatus(1, false, 3, 40, 40, 0)]);

        var read = StatusJson.ReadNode(Written(status));

        Assert.Equal([5, 0], read.Replicas.Select(r => r.CrossShardUnfinished));
        Assert.Equal(status.Replicas, read.Replicas);
    }

    [Fact]
    public void Node_status_without_the_count_reads_as_nothing_unfinished()
    {
        var json = """{"id":1,"replicas":[{"shard":0,"leader":true,"term":"3","commit_index":"4","applied_index":"4"}]}"""u8.ToArray();

        Assert.Equal(0, StatusJson.ReadNode(json).Replicas[0].CrossShardUnfinished);
    }
}
