using System.Net;
using Grpc.Core;
using RaftLedger.Node.Host;
using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport.Protos;
using RaftLedger.Raft;

namespace RaftLedger.Node.Tests.Host;

/// <summary>
/// Which answers the router retries on its own (only those that applied nothing) and which it hands back to the
/// client, against scripted local and forwarded answers. Node 1 routes; shard 0's replicas are nodes 1–3.
/// </summary>
public sealed class ShardRequestRouterTests
{
    private const int Shard = 0;

    [Fact]
    public async Task A_forwarded_write_answered_outcome_unknown_goes_back_to_the_client_after_one_attempt()
    {
        // A retry here would answer `exists` for the transfers the first attempt created, in the client's first answer.
        var paths = new ScriptedPaths(leader: 2);
        paths.Answers.Enqueue(Answer.Of(ShardCallResult.Fail(ShardCallStatus.OutcomeUnknown, "leader lost mid-transaction")));

        var result = await Router(paths).CallAsync(Shard, ShardRequestKind.CreateTransfers, new byte[1], CancellationToken.None);

        Assert.Equal(ShardCallStatus.OutcomeUnknown, result.Status);
        Assert.Equal([2UL], paths.Calls);
    }

    [Fact]
    public async Task A_forwarded_write_whose_call_broke_goes_back_as_outcome_unknown_but_a_read_is_retried()
    {
        var paths = new ScriptedPaths(leader: 2);
        paths.Answers.Enqueue(Answer.Broken(StatusCode.Internal));
        var write = await Router(paths).CallAsync(Shard, ShardRequestKind.CreateTransfers, new byte[1], CancellationToken.None);
        Assert.Equal(ShardCallStatus.OutcomeUnknown, write.Status);
        Assert.Equal([2UL], paths.Calls);

        // A read changes nothing, so the router may try again.
        paths.Calls.Clear();
        paths.Answers.Enqueue(Answer.Broken(StatusCode.Internal));
        paths.Answers.Enqueue(Answer.Of(ShardCallResult.Ok(new byte[] { 7 })));
        var read = await Router(paths).CallAsync(Shard, ShardRequestKind.LookupAccounts, new byte[1], CancellationToken.None);
        Assert.Equal(ShardCallStatus.Ok, read.Status);
        Assert.Equal([2UL, 2UL], paths.Calls);
    }

    [Fact]
    public async Task Answers_that_applied_nothing_are_retried_following_the_leader_hint()
    {
        // This node believes it leads (local call), is told node 3 does, and node 3 answers.
        var paths = new ScriptedPaths(leader: 1);
        paths.Answers.Enqueue(Answer.Of(ShardCallResult.Fail(ShardCallStatus.NotLeader, "moved", leaderHint: 3)));
        paths.Answers.Enqueue(Answer.Of(ShardCallResult.Fail(ShardCallStatus.NotLeader, "moved again", leaderHint: 2)));
        paths.Answers.Enqueue(Answer.Of(ShardCallResult.Ok(new byte[] { 1 })));

        var result = await Router(paths).CallAsync(Shard, ShardRequestKind.CreateTransfers, new byte[1], CancellationToken.None);

        Assert.Equal(ShardCallStatus.Ok, result.Status);
        Assert.Equal([1UL, 3UL, 2UL], paths.Calls);
    }

    [Fact]
    public async Task A_write_refused_for_want_of_a_leader_is_retried_and_a_later_outcome_unknown_is_returned_as_such()
    {
        var paths = new ScriptedPaths(leader: 2);
        paths.Answers.Enqueue(Answer.Of(ShardCallResult.Fail(ShardCallStatus.NoLeader, "election running")));
        paths.Answers.Enqueue(Answer.Broken(StatusCode.Unavailable)); // Connected, then the call broke: may have applied.
        paths.Answers.Enqueue(Answer.Of(ShardCallResult.Ok(new byte[] { 1 })));

        var result = await Router(paths).CallAsync(Shard, ShardRequestKind.CreateTransfers, new byte[1], CancellationToken.None);

        Assert.Equal(ShardCallStatus.OutcomeUnknown, result.Status);
        Assert.Equal(2, paths.Calls.Count);
        Assert.Single(paths.Answers); // The third answer was never asked for.
    }

    private static ShardRequestRouter Router(ScriptedPaths paths)
    {
        var map = ClusterMap.Bootstrap([.. Enumerable.Range(1, 3).Select(i => new ClusterNode((ulong)i, $"127.0.0.1:{7000 + i}", ""))], 1, 3);
        var options = new HostOptions
        {
            NodeId = 1,
            DataDirectory = "unused",
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Peers = new Dictionary<ulong, string> { [1] = "127.0.0.1:7001", [2] = "127.0.0.1:7002", [3] = "127.0.0.1:7003" },
            // The router waits one tick between retries after NoLeader; the request timeout is far beyond any run.
            TickInterval = TimeSpan.FromMilliseconds(1),
            RequestTimeout = TimeSpan.FromMinutes(5),
        };
        return new ShardRequestRouter(options, map, paths);
    }

    /// <summary>One scripted answer: a result, or a forward call that throws.</summary>
    private readonly record struct Answer(ShardCallResult Result, StatusCode? BrokenWith)
    {
        public static Answer Of(ShardCallResult result) => new(result, null);

        public static Answer Broken(StatusCode code) => new(default, code);
    }

    /// <summary>Answers calls in script order and records the node each went to (this node's id for local calls).</summary>
    private sealed class ScriptedPaths(ulong leader) : IShardCallPaths
    {
        public Queue<Answer> Answers { get; } = new();

        public List<ulong> Calls { get; } = [];

        public ShardView View(int shard) => new(shard, true, leader, 1, 0, 0, leader == 1 ? RaftRole.Leader : RaftRole.Follower);

        public Task<ShardCallResult> ExecuteAsync(int shard, ShardRequestKind kind, ReadOnlyMemory<byte> payload, CancellationToken cancel)
        {
            Calls.Add(1);
            var answer = Next();
            Assert.Null(answer.BrokenWith); // A local call has no connection to break.
            return Task.FromResult(answer.Result);
        }

        public Task<ForwardResponse> ForwardAsync(ulong node, ForwardRequest request, TimeSpan timeout, CancellationToken cancel)
        {
            Calls.Add(node);
            var answer = Next();
            if (answer.BrokenWith is { } code)
            {
                throw new RpcException(new Status(code, "stream reset"));
            }

            return Task.FromResult(new ForwardResponse
            {
                Status = (uint)answer.Result.Status,
                Payload = Google.Protobuf.ByteString.CopyFrom(answer.Result.Payload.Span),
                LeaderHint = answer.Result.LeaderHint,
                Detail = answer.Result.Detail,
            });
        }

        private Answer Next()
        {
            Assert.True(Answers.Count > 0, $"the router made more calls than scripted: {string.Join(", ", Calls)}");
            return Answers.Dequeue();
        }
    }
}
