using System.Buffers.Binary;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Node.Host;
using RaftLedger.Node.Placement;
using RaftLedger.Raft;

namespace RaftLedger.Node.Tests.CrossShard;

/// <summary>The host's cross-shard pieces in isolation: message routing guesses, result reassembly, submission chunks.</summary>
public sealed class CrossShardHostTests
{
    private static ClusterMap Map(int nodes, int shards) =>
        ClusterMap.Bootstrap([.. Enumerable.Range(1, nodes).Select(i => new ClusterNode((ulong)i, $"127.0.0.1:{7000 + i}", ""))], shards, 3);

    private static ShardView NotHosted(int shard) => new(shard, false, 0, 0, 0, 0, RaftRole.Follower);

    [Fact]
    public void Messenger_sends_to_the_leader_the_local_replica_knows()
    {
        var messenger = new ShardMessenger(Map(3, 4));
        var local = new ShardView(2, true, 3, 5, 10, 10, RaftRole.Follower);
        Assert.Equal(3UL, messenger.Target(2, local));
        messenger.Heard(2, 1);
        Assert.Equal(3UL, messenger.Target(2, local)); // The local replica's knowledge wins over hearsay.
    }

    [Fact]
    public void Messenger_follows_the_node_it_last_heard_the_shard_from_then_tries_every_replica()
    {
        var map = Map(5, 4);
        var messenger = new ShardMessenger(map);
        var replicas = map.Shards[1].Replicas;
        var heard = replicas[1];
        messenger.Heard(1, heard);
        for (var i = 0; i < ShardMessenger.GuessSendsMax; i++)
        {
            Assert.Equal(heard, messenger.Target(1, NotHosted(1)));
        }

        // Unanswered for too long: the guess is dropped and each send tries the next replica.
        var tried = Enumerable.Range(0, replicas.Length).Select(_ => messenger.Target(1, NotHosted(1))).ToHashSet();
        Assert.Equal(replicas.ToHashSet(), tried);
    }

    [Fact]
    public void Messenger_ignores_a_sender_that_holds_no_replica_of_the_shard()
    {
        var map = Map(5, 4);
        var messenger = new ShardMessenger(map);
        var outsider = Enumerable.Range(1, 5).Select(i => (ulong)i).First(n => !map.Shards[0].Replicas.Contains(n));
        messenger.Heard(0, outsider);
        Assert.Contains(messenger.Target(0, NotHosted(0)), map.Shards[0].Replicas);
    }

    private static ShardRequest Request(int events) =>
        new(0, ShardRequestKind.CreateTransfers, new byte[events * LedgerLimits.RecordSizeBytes]);

    private static byte[] Rows(params (byte Status, ulong Timestamp)[] rows)
    {
        var bytes = new byte[rows.Length * ShardPayload.WriteResultBytes];
        for (var i = 0; i < rows.Length; i++)
        {
            bytes[i * ShardPayload.WriteResultBytes] = rows[i].Status;
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((i * ShardPayload.WriteResultBytes) + 1), rows[i].Timestamp);
        }

        return bytes;
    }

    [Fact]
    public async Task Split_request_puts_fast_and_cross_shard_results_back_in_input_order()
    {
        var parent = Request(4);
        var split = new SplitRequest(parent);
        split.Expect(2);
        split.CrossDone([1, 3], [CreateTransferResult.Created, CreateTransferResult.ExceedsCredits], [70, 0]);
        Assert.False(parent.Done.Task.IsCompleted);
        split.FastDone([0, 2], ShardCallResult.Ok(Rows((0, 50), (0, 51))));
        var result = await parent.Done.Task;
        Assert.True(result.IsOk);
        var rows = Enumerable.Range(0, 4).Select(i => ShardPayload.ReadWriteResult(result.Payload.Span, i)).ToArray();
        Assert.Equal([(0, 50UL), ((byte)CreateTransferResult.Created, 70UL), (0, 51UL), ((byte)CreateTransferResult.ExceedsCredits, 0UL)], rows);
    }

    [Fact]
    public async Task Split_request_reports_outcome_unknown_when_one_part_applied_and_another_failed()
    {
        var parent = Request(2);
        var split = new SplitRequest(parent);
        split.Expect(2);
        split.FastDone([0], ShardCallResult.Ok(Rows((0, 9))));
        split.CrossFailed(false, "coordinator busy", 0);
        var result = await parent.Done.Task;
        Assert.Equal(ShardCallStatus.OutcomeUnknown, result.Status);
    }

    [Fact]
    public async Task Split_request_reports_nothing_applied_only_when_every_part_says_so()
    {
        var parent = Request(2);
        var split = new SplitRequest(parent);
        split.Expect(2);
        split.FastDone([0], ShardCallResult.Fail(ShardCallStatus.NoLeader, "election"));
        split.CrossFailed(false, "coordinator busy", 0);
        var result = await parent.Done.Task;
        Assert.Equal(ShardCallStatus.NoLeader, result.Status);

        var unknown = Request(1);
        var alone = new SplitRequest(unknown);
        alone.Expect(1);
        alone.CrossFailed(true, "lost leadership after prepare", 0);
        Assert.Equal(ShardCallStatus.OutcomeUnknown, (await unknown.Done.Task).Status);
    }

    [Fact]
    public void Host_carries_the_largest_cross_shard_message()
    {
        Assert.True(CrossShardLimits.MessageBytesMax <= HostOptions.ShardMessageBytesMax);
        Assert.True(HostOptions.ShardMessageBytesMax <= RaftLedger.Node.Transport.TransportOptions.MessageBytesMax);

        // A full chain's Prepare or Decide (one Raft entry, larger than a full create_transfers batch) fits one Raft
        // message, which Raft requires of every entry it accepts.
        Assert.True(CrossShardLimits.CommandBytesMax <= HostOptions.RaftMessageBytesMax, "a full chain's cross-shard command is one proposable entry");
        Assert.True(RaftLedger.Storage.Wal.WalRecord.StoredBytes(CrossShardLimits.CommandBytesMax) <= RaftLedger.Storage.Wal.WalOptions.RecordBytesMaxDefault,
            "a full chain's cross-shard entry is one WAL record");
        Assert.True(LedgerLimits.SideRecordBytesMax <= RaftLedger.Storage.Rocks.RocksLedgerLimits.ValueBytesMax, "a full chain's Prepared record is one RocksDB value");
    }
}
