using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RaftLedger.Common;
using RaftLedger.Node.Transport;
using RaftLedger.Raft;
using RaftLedger.Storage.Rocks;

namespace RaftLedger.Node.Host;

/// <summary>
/// One shard's state as last published by the scheduler (read by any thread; may lag one round). The cross-shard
/// figures are this replica's driver's (a leader's: transactions it coordinates, transactions whose legs it holds
/// prepared, pending transfers it will expire within an abandonment timeout, expiry transactions started).
/// </summary>
public readonly record struct ShardView(
    int Shard, bool Hosted, ulong Leader, ulong Term, ulong Commit, ulong Applied, RaftRole Role, CrossShardView CrossShard = default, ulong ReplicaLag = 0);

/// <summary>A shard's cross-shard driver figures (see <see cref="ShardView"/>); all zero without a driver.</summary>
public readonly record struct CrossShardView(int Coordinating, int Prepared, int ExpiriesTracked, long ExpiriesStarted);

/// <summary>
/// The multi-raft scheduler: one loop drives every Raft group on this node. Each round it takes the inputs that
/// arrived (peer messages, ticks, client requests), lets each replica propose and start reads, collects every
/// group's Ready, makes all their entries and hard states durable with one call to the node log (one fsync),
/// sends the messages, applies committed entries to the ledgers, and advances the cores.
/// </summary>
public sealed partial class MultiRaftHost : IPeerMessageSink, IAsyncDisposable
{
    private readonly Channel<HostInput> inbox = Channel.CreateUnbounded<HostInput>(new UnboundedChannelOptions { SingleReader = true });
    private readonly HostOptions options;
    private readonly INodeStorage log;
    private readonly ILogger logger;
    private readonly Dictionary<ulong, ShardReplica> replicasByGroup = [];
    private readonly ShardReplica[] replicas;
    private readonly ShardView[] views;
    private readonly CancellationTokenSource stopping = new();
    private readonly BackgroundThreads background;
    private IRaftMessageSender? sender;
    private Task? loop;
    private Task? ticker;
    private long inboxPeerMessages;
    private long droppedPeerMessages;
    private long ticks;

    internal MultiRaftHost(HostOptions options, int shardCount, IEnumerable<ShardReplica> replicas, INodeStorage log, ILogger logger)
    {
        this.options = options;
        this.log = log;
        this.logger = logger;
        this.replicas = [.. replicas];
        foreach (var replica in this.replicas)
        {
            replicasByGroup.Add(replica.GroupId, replica);
        }

        views = new ShardView[shardCount];
        PublishViews();
        background = new BackgroundThreads(
            HostOptions.BackgroundThreadCount,
            HostOptions.BackgroundThreadNiceIncrement,
            HostOptions.BackgroundQueuedItemsMax,
            errno => logger.LogWarning("could not lower a background thread's priority (errno {Errno}); snapshot work runs at the node's priority", errno));
    }

    /// <summary>Peer messages dropped because the inbox was full or they did not decode.</summary>
    public long DroppedPeerMessages => Interlocked.Read(ref droppedPeerMessages);

    /// <summary>The state of every shard as of the last round (non-hosted shards: Hosted = false).</summary>
    public ShardView View(int shard) => views[shard];

    public int ShardCount => views.Length;

    /// <summary>
    /// True when every shard hosted here has a leader and it is the shard's preferred replica, so the leader balancer
    /// has nothing left to move. Until then a planned leadership transfer may interrupt a request (its outcome is
    /// then unknown and the client retries); tests and tools that need a steady cluster wait for this.
    /// </summary>
    public bool LeadersSettled
    {
        get
        {
            foreach (var replica in replicas)
            {
                if (views[replica.Shard].Leader != replica.Replicas[0])
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>Completes when the scheduler loop ends; faulted when it failed (a failed fsync, a broken invariant).</summary>
    public Task Completion => loop ?? Task.CompletedTask;

    /// <summary>Starts the loop and the tick timer; messages go out through <paramref name="messageSender"/>.</summary>
    public void Start(IRaftMessageSender messageSender)
    {
        Invariant.Check(loop is null, "Start is called once");
        sender = messageSender;
        loop = Task.Factory.StartNew(() => RunAsync(stopping.Token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        ticker = Task.Run(() => TickAsync(stopping.Token));
    }

    /// <summary>
    /// Runs a client request on this node's replica of its shard. Completes with NotLeader (and a hint) when this
    /// node does not lead the shard, and with OutcomeUnknown or NoLeader when the deadline passes.
    /// </summary>
    public async Task<ShardCallResult> ExecuteAsync(int shard, ShardRequestKind kind, ReadOnlyMemory<byte> payload, CancellationToken cancel)
    {
        if (!ShardPayload.IsWellFormed(kind, payload.Length) || shard < 0 || shard >= views.Length)
        {
            throw new ArgumentException($"malformed {kind} request for shard {shard} ({payload.Length} bytes)");
        }

        var request = new ShardRequest(shard, kind, payload);
        if (!inbox.Writer.TryWrite(new HostInput.Request(request)))
        {
            return ShardCallResult.Fail(ShardCallStatus.Unavailable, "the node is stopping; retry on another node");
        }

        try
        {
            return await request.Done.Task.WaitAsync(options.RequestTimeout, options.Time, cancel).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            return request.TryAbandon()
                ? ShardCallResult.Fail(ShardCallStatus.NoLeader, $"shard {shard} could not take the request within {options.RequestTimeout.TotalSeconds:0.#} s; nothing was applied, retry")
                : request.IsWrite
                    ? ShardCallResult.Fail(ShardCallStatus.OutcomeUnknown, $"shard {shard} did not confirm the write within {options.RequestTimeout.TotalSeconds:0.#} s; retry with the same ids")
                    : ShardCallResult.Fail(ShardCallStatus.NoLeader, $"shard {shard} did not confirm the read within {options.RequestTimeout.TotalSeconds:0.#} s; retry");
        }
    }

    /// <summary>
    /// Runs <paramref name="query"/> over every local replica's state, taken on the scheduler thread, and returns its
    /// value. <paramref name="fingerprintShard"/>'s replica (none when negative) also gets a fingerprint. On durable
    /// storage it is the hash of the shard's RocksDB records (<see cref="RocksShardSnapshot.ContentFingerprint"/>),
    /// read from a RocksDB snapshot taken on the loop at the replica's applied index and hashed off the loop: reading a
    /// large shard on the loop held every group's heartbeats for seconds and started elections. On in-memory
    /// storage the ledger's own fingerprint is computed on the loop.
    /// </summary>
    public Task<T> QueryAsync<T>(Func<IReadOnlyList<ShardReplicaState>, T> query, int fingerprintShard = -1)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var input = new HostInput.Query(() =>
        {
            try
            {
                var states = new List<ShardReplicaState>(replicas.Length);
                RocksShardSnapshot? contents = null;
                var at = -1;
                foreach (var replica in replicas)
                {
                    var fingerprint = UInt128.Zero;
                    if (replica.Shard == fingerprintShard)
                    {
                        (contents, at) = SnapshotStorage is { } storage ? (storage.CreateSnapshot(replica.Shard), states.Count) : (null, -1);
                        fingerprint = contents is null ? replica.Ledger.Fingerprint() : UInt128.Zero;
                    }

                    states.Add(new ShardReplicaState(replica.Shard, replica.Raft.Status(), fingerprint, replica.Replicas, replica.CrossShardUnfinished));
                }

                if (contents is null)
                {
                    done.TrySetResult(query(states));
                    return;
                }

                _ = Task.Run(() => CompleteWithContentFingerprint(states, at, contents, query, done));
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        });
        if (!inbox.Writer.TryWrite(input))
        {
            done.TrySetException(new ObjectDisposedException(nameof(MultiRaftHost), "the node is stopping"));
        }

        return done.Task;
    }

    // Off the loop: hashes the snapshot's records, releases it, and answers the query with the fingerprint filled in.
    private static void CompleteWithContentFingerprint<T>(
        List<ShardReplicaState> states, int at, RocksShardSnapshot contents, Func<IReadOnlyList<ShardReplicaState>, T> query, TaskCompletionSource<T> done)
    {
        try
        {
            using (contents)
            {
                states[at] = states[at] with { Fingerprint = contents.ContentFingerprint() };
            }

            done.TrySetResult(query(states));
        }
        catch (Exception e)
        {
            done.TrySetException(e);
        }
    }

    /// <summary>Asks this node's replica of <paramref name="shard"/> to hand leadership to <paramref name="toNode"/>.</summary>
    public void TransferLeadership(int shard, ulong toNode) =>
        inbox.Writer.TryWrite(new HostInput.Transfer(shard, toNode));

    /// <summary>Transport callback: decodes off the scheduler thread, then queues for the loop.</summary>
    public void OnMessage(ulong fromNode, ulong groupId, ReadOnlyMemory<byte> raft)
    {
        if (Interlocked.Increment(ref inboxPeerMessages) > HostOptions.InboxPeerMessagesMax ||
            !MessageCodec.TryDecode(raft, out var message, out _) || message is null || message.From != fromNode ||
            !inbox.Writer.TryWrite(new HostInput.Peer(groupId, message)))
        {
            Interlocked.Decrement(ref inboxPeerMessages);
            Interlocked.Increment(ref droppedPeerMessages);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        inbox.Writer.TryComplete();
        if (loop is not null)
        {
            await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (ticker is not null)
        {
            await ticker.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        background.Dispose();
        await WaitForSnapshotTasksAsync().ConfigureAwait(false);

        foreach (var replica in replicas)
        {
            replica.Shutdown();
        }

        meta?.FailAll(ShardCallResult.Fail(ShardCallStatus.Unavailable, "the node is stopping; retry on another node"), failProposed: true);

        while (inbox.Reader.TryRead(out var input))
        {
            if (input is HostInput.Request request)
            {
                request.Value.Complete(ShardCallResult.Fail(ShardCallStatus.Unavailable, "the node is stopping; retry on another node"));
            }
            else if (input is HostInput.MetaPropose propose)
            {
                propose.Proposal.Done.TrySetResult(ShardCallResult.Fail(ShardCallStatus.Unavailable, "the node is stopping; retry on another node"));
            }
        }

        stopping.Dispose();
    }

    private async Task TickAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(options.TickInterval, options.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                inbox.Writer.TryWrite(HostInput.Tick.Instance);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void PublishViews()
    {
        PublishMetaView();
        foreach (var replica in replicas)
        {
            var raft = replica.Raft;
            var before = views[replica.Shard];
            views[replica.Shard] = new ShardView(replica.Shard, true, raft.Leader, raft.Term, raft.CommitIndex, replica.Applied, raft.Role, replica.CrossShardFigures, raft.ReplicaLag());
            if (before.Hosted && (before.Leader != raft.Leader || before.Term != raft.Term))
            {
                // Leadership history is what an operator reads to explain a latency spike; it changes rarely.
                logger.LogInformation("shard {Shard}: term {Term}, leader {Leader}, this node {Role} (was term {OldTerm}, leader {OldLeader})",
                    replica.Shard, raft.Term, raft.Leader, raft.Role, before.Term, before.Leader);
            }
        }
    }
}

/// <summary>A replica's state taken on the scheduler thread (Fingerprint is 0 unless asked for).</summary>
public sealed record ShardReplicaState(int Shard, RaftStatus Raft, UInt128 Fingerprint, IReadOnlyList<ulong> Replicas, int CrossShardUnfinished = 0);

/// <summary>What the scheduler loop consumes.</summary>
internal abstract record HostInput
{
    public sealed record Peer(ulong GroupId, Message Message) : HostInput;

    public sealed record Tick : HostInput
    {
        public static readonly Tick Instance = new();
    }

    public sealed record Request(ShardRequest Value) : HostInput;

    public sealed record Query(Action Run) : HostInput;

    public sealed record Transfer(int Shard, ulong ToNode) : HostInput;

    /// <summary>A command for the meta group (see MultiRaftHost.Meta).</summary>
    public sealed record MetaPropose(MetaProposal Proposal) : HostInput;

    /// <summary>A cross-shard protocol message for this node's replica of <c>ToShard</c> (see MultiRaftHost.CrossShard).</summary>
    public sealed record ShardMessage(ulong FromNode, int FromShard, int ToShard, ReadOnlyMemory<byte> Message) : HostInput;

    public sealed record PeerDown(ulong Node) : HostInput;

    public sealed record LedgerDurable : HostInput
    {
        public static readonly LedgerDurable Instance = new();
    }

    /// <summary>A snapshot received in full: the meta group's file at <c>Path</c>, or a shard's <c>Prepared</c> install.</summary>
    public sealed record SnapshotReceived(ulong GroupId, Message Message, string Path, RocksPreparedInstall? Prepared) : HostInput;

    public sealed record SnapshotSent(ulong GroupId, ulong ToNode, bool Finished) : HostInput;
}
