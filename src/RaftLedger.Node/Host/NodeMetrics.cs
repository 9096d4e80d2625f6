using System.Collections.Concurrent;
using System.Globalization;
using Prometheus;
using RaftLedger.Node.Transport;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// The node's Raft, log and apply metrics on /metrics (prometheus-net's default registry), labelled by node id so
/// that nodes sharing a process (tests) stay apart. Per-shard state is read from the scheduler's published views
/// when /metrics is scraped, so the scheduler loop itself only pays for one counter and two histogram observations
/// per round.
/// </summary>
internal static class NodeMetrics
{
    /// <summary>Round and fsync histogram buckets: 100 µs doubling to 3.3 s (a slow round is ≥ 3 ticks of 100 ms).</summary>
    private static readonly double[] SecondsBuckets = Histogram.ExponentialBuckets(0.0001, 2, 16);

    private static readonly ConcurrentDictionary<ulong, (MultiRaftHost Host, PeerTransport Transport)> Hosts = new();

    // The drivers' expiry counts as last published, per (node, shard): a driver rebuilt after a snapshot install
    // counts from zero again, and the counter must go on from where it was.
    private static readonly ConcurrentDictionary<(ulong Node, int Shard), long> ExpiriesStartedSeen = new();

    private static readonly Counter Rounds = Metrics.CreateCounter(
        "raftledger_scheduler_rounds_total", "Scheduler rounds that had work (a Ready from some Raft group).", "node");

    private static readonly Histogram RoundSeconds = Metrics.CreateHistogram(
        "raftledger_scheduler_round_seconds",
        "Duration of a scheduler round: Readies, leaders' appends sent, one durable write, messages sent, entries applied.",
        new HistogramConfiguration { LabelNames = ["node"], Buckets = SecondsBuckets });

    private static readonly Histogram PersistSeconds = Metrics.CreateHistogram(
        "raftledger_log_persist_seconds",
        "Duration of a round's durable write: every group's entries and hard states in the node's write-ahead log, one fdatasync.",
        new HistogramConfiguration { LabelNames = ["node"], Buckets = SecondsBuckets });

    private static readonly Counter EntriesApplied = Metrics.CreateCounter(
        "raftledger_entries_applied_total", "Committed Raft entries applied to this node's ledger state (all shards).", "node");

    private static readonly Counter PeerMessagesDropped = Metrics.CreateCounter(
        "raftledger_peer_messages_dropped_total", "Peer messages dropped because the scheduler's inbox was full or they did not decode.", "node");

    private static readonly Counter PeerStreamsRefused = Metrics.CreateCounter(
        "raftledger_peer_streams_refused_total",
        "Peer connections and calls this node refused: another cluster secret, a bad node id or a malformed hello (see the warnings in the log).", "node");

    private static readonly Counter PeerDialsRefused = Metrics.CreateCounter(
        "raftledger_peer_dials_refused_total",
        "Peer connections this node dialed that the peer refused: the nodes have different secrets, or our node id is bad there.", "node");

    private static readonly Gauge ShardLeader = Metrics.CreateGauge(
        "raftledger_shard_is_leader", "1 when this node's replica of the shard is its leader, else 0.", "node", "shard");

    private static readonly Gauge ShardTerm = Metrics.CreateGauge(
        "raftledger_shard_term", "Raft term of this node's replica of the shard.", "node", "shard");

    private static readonly Gauge ShardCommit = Metrics.CreateGauge(
        "raftledger_shard_commit_index", "Highest log index this replica knows to be committed.", "node", "shard");

    private static readonly Gauge ShardApplied = Metrics.CreateGauge(
        "raftledger_shard_applied_index", "Highest log index applied to this replica's ledger state.", "node", "shard");

    private static readonly Gauge ShardReplicaLag = Metrics.CreateGauge(
        "raftledger_shard_replica_lag_entries",
        "On the shard's leader: committed entries the replica furthest behind lacks (commit index minus its match index); 0 on other replicas.",
        "node", "shard");

    private static readonly Gauge CrossShardCoordinating = Metrics.CreateGauge(
        "raftledger_crossshard_coordinating",
        "Cross-shard transactions this replica's leader coordinates and has not yet answered and retired (0 on followers).", "node", "shard");

    private static readonly Gauge CrossShardPrepared = Metrics.CreateGauge(
        "raftledger_crossshard_prepared",
        "Cross-shard transactions whose legs this replica's leader holds prepared, waiting for their decision (0 on followers).", "node", "shard");

    private static readonly Gauge CrossShardExpiriesTracked = Metrics.CreateGauge(
        "raftledger_crossshard_expiries_tracked",
        "Cross-shard pending transfers homed here that this replica's leader will expire within an abandonment timeout.", "node", "shard");

    private static readonly Counter CrossShardExpiriesStarted = Metrics.CreateCounter(
        "raftledger_crossshard_expiries_started_total",
        "Expiry transactions of cross-shard pending transfers started by this replica while leader (retries included).", "node", "shard");

    static NodeMetrics() => Metrics.DefaultRegistry.AddBeforeCollectCallback(PublishShards);

    /// <summary>Starts reporting <paramref name="host"/>'s shards and <paramref name="transport"/>'s refusals under <paramref name="nodeId"/>.</summary>
    public static void Track(ulong nodeId, MultiRaftHost host, PeerTransport transport) => Hosts[nodeId] = (host, transport);

    /// <summary>Stops reporting a stopped node's shards (its series keep their last values).</summary>
    public static void Untrack(ulong nodeId, MultiRaftHost host, PeerTransport transport) => Hosts.TryRemove(KeyValuePair.Create(nodeId, (host, transport)));

    /// <summary>The round metrics of one node, with the label lookups done once.</summary>
    public static RoundMetrics ForNode(ulong nodeId)
    {
        var node = nodeId.ToString(CultureInfo.InvariantCulture);
        return new RoundMetrics(Rounds.WithLabels(node), RoundSeconds.WithLabels(node), PersistSeconds.WithLabels(node), EntriesApplied.WithLabels(node));
    }

    private static void PublishShards()
    {
        foreach (var (nodeId, (host, transport)) in Hosts)
        {
            var node = nodeId.ToString(CultureInfo.InvariantCulture);
            PeerMessagesDropped.WithLabels(node).IncTo(host.DroppedPeerMessages);
            PeerStreamsRefused.WithLabels(node).IncTo(transport.RejectedStreams);
            PeerDialsRefused.WithLabels(node).IncTo(transport.RefusedDials);
            for (var shard = 0; shard < host.ShardCount; shard++)
            {
                var view = host.View(shard);
                if (!view.Hosted)
                {
                    continue;
                }

                var label = shard.ToString(CultureInfo.InvariantCulture);
                ShardLeader.WithLabels(node, label).Set(view.Role == RaftRole.Leader ? 1 : 0);
                ShardTerm.WithLabels(node, label).Set(view.Term);
                ShardCommit.WithLabels(node, label).Set(view.Commit);
                ShardApplied.WithLabels(node, label).Set(view.Applied);
                ShardReplicaLag.WithLabels(node, label).Set(view.ReplicaLag);
                CrossShardCoordinating.WithLabels(node, label).Set(view.CrossShard.Coordinating);
                CrossShardPrepared.WithLabels(node, label).Set(view.CrossShard.Prepared);
                CrossShardExpiriesTracked.WithLabels(node, label).Set(view.CrossShard.ExpiriesTracked);
                var started = view.CrossShard.ExpiriesStarted;
                var seen = ExpiriesStartedSeen.GetValueOrDefault((nodeId, shard));
                CrossShardExpiriesStarted.WithLabels(node, label).Inc(started >= seen ? started - seen : started);
                ExpiriesStartedSeen[(nodeId, shard)] = started;
            }
        }
    }

    internal sealed class RoundMetrics(Counter.Child rounds, Histogram.Child roundSeconds, Histogram.Child persistSeconds, Counter.Child applied)
    {
        /// <summary>Records one round that had work; <paramref name="persisted"/> is false when it wrote nothing.</summary>
        public void Observe(TimeSpan round, TimeSpan persist, bool persisted, int entriesApplied)
        {
            rounds.Inc();
            roundSeconds.Observe(round.TotalSeconds);
            if (persisted)
            {
                persistSeconds.Observe(persist.TotalSeconds);
            }

            if (entriesApplied > 0)
            {
                applied.Inc(entriesApplied);
            }
        }
    }
}
