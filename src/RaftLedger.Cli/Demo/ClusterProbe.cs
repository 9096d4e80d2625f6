using RaftLedger.Cli.Client;
using RaftLedger.Node.Api;

namespace RaftLedger.Cli.Demo;

/// <summary>One replica as its node reports it on /v1/node.</summary>
public readonly record struct ReplicaView(ulong NodeId, LocalReplicaStatus Replica);

/// <summary>
/// Questions about a running cluster answered from every reachable node's /v1/node: who leads a
/// shard, whether a node has caught up, whether all replicas have converged to the same state.
/// Every wait is bounded by its caller's deadline.
/// </summary>
public sealed class ClusterProbe(LedgerHttpClient client)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Every replica of every reachable node (unreachable nodes are skipped).</summary>
    public async Task<List<ReplicaView>> ReplicasAsync(IEnumerable<(ulong Id, Uri Url)> nodes, CancellationToken cancellationToken, bool fingerprints = false)
    {
        var views = new List<ReplicaView>();
        foreach (var (id, url) in nodes)
        {
            try
            {
                var answer = await client.GetNodeAsync(url, cancellationToken, fingerprints);
                if (answer.IsOk)
                {
                    views.AddRange(answer.Value!.Replicas.Select(replica => new ReplicaView(id, replica)));
                }
            }
            catch (HttpRequestException)
            {
                // A node that is down has nothing to report.
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
        }

        return views;
    }

    /// <summary>The node leading <paramref name="shard"/> in the highest term any replica reports, waiting for one.</summary>
    public async Task<ulong> LeaderAsync(uint shard, IReadOnlyList<(ulong Id, Uri Url)> nodes, TimeSpan timeout, CancellationToken cancellationToken) =>
        (await StableLeaderAsync(shard, nodes, timeout, cancellationToken)).Node;

    /// <summary>
    /// The node leading <paramref name="shard"/> and its term, as reported by two polls in a row that agree, so a
    /// leadership transfer in progress is not mistaken for the leader. Waits for one up to <paramref name="timeout"/>.
    /// </summary>
    public async Task<(ulong Node, ulong Term)> StableLeaderAsync(uint shard, IReadOnlyList<(ulong Id, Uri Url)> nodes, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        (ulong Node, ulong Term) previous = (0, 0);
        (ulong Node, ulong Term) lastSeen = (0, 0);
        while (true)
        {
            var leader = (await ReplicasAsync(nodes, cancellationToken))
                .Where(view => view.Replica.ShardId == shard && view.Replica.IsLeader)
                .OrderByDescending(view => view.Replica.Term)
                .Select(view => (view.NodeId, view.Replica.Term))
                .FirstOrDefault();
            if (leader.NodeId != 0 && leader == previous)
            {
                return leader;
            }

            if (leader.NodeId != 0)
            {
                lastSeen = leader;
            }

            if (DateTime.UtcNow > deadline)
            {
                // Polls of a loaded machine may keep disagreeing; the last leader seen is then the best answer.
                return lastSeen.Node != 0 ? lastSeen
                    : throw new TimeoutException($"no node reported a leader for shard {shard} within {timeout.TotalSeconds:0} s.");
            }

            previous = leader;
            await Task.Delay(PollInterval, cancellationToken);
        }
    }

    /// <summary>
    /// Waits until every replica on <paramref name="nodeId"/> has applied at least what its shard's
    /// leader had committed when the wait began.
    /// </summary>
    public async Task CaughtUpAsync(ulong nodeId, IReadOnlyList<(ulong Id, Uri Url)> nodes, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var targets = (await ReplicasAsync(nodes.Where(n => n.Id != nodeId), cancellationToken))
            .Where(view => view.Replica.IsLeader)
            .GroupBy(view => view.Replica.ShardId)
            .ToDictionary(group => group.Key, group => group.Max(view => view.Replica.CommitIndex));
        while (true)
        {
            var mine = (await ReplicasAsync(nodes.Where(n => n.Id == nodeId), cancellationToken)).ToDictionary(v => v.Replica.ShardId, v => v.Replica.AppliedIndex);
            var behind = targets.Where(target => !mine.TryGetValue(target.Key, out var applied) || applied < target.Value).ToList();
            if (mine.Count > 0 && behind.Count == 0)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"node {nodeId} did not catch up within {timeout.TotalSeconds:0} s; behind on shard(s) {string.Join(", ", behind.Select(b => b.Key))}.");
            }

            await Task.Delay(PollInterval, cancellationToken);
        }
    }

    /// <summary>
    /// Waits until, for every shard, all <paramref name="replication"/> replicas report the same applied
    /// index; returns that final view with fingerprints (compare them), or the last view at the deadline. Polls
    /// without fingerprints and asks for them only once the indexes agree: each one pauses its node's scheduler.
    /// </summary>
    public async Task<(bool Converged, List<ReplicaView> Views)> ConvergedAsync(
        IReadOnlyList<(ulong Id, Uri Url)> nodes, int replication, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var views = await ReplicasAsync(nodes, cancellationToken);
            var converged = Agree(views, replication);
            if (converged)
            {
                // Each node computes its fingerprints at the applied index it reports with them: check they still agree.
                views = await ReplicasAsync(nodes, cancellationToken, fingerprints: true);
                converged = Agree(views, replication);
            }

            if (converged || DateTime.UtcNow > deadline)
            {
                return (converged, views);
            }

            await Task.Delay(PollInterval, cancellationToken);
        }
    }

    private static bool Agree(List<ReplicaView> views, int replication) =>
        views.Count > 0 && views.GroupBy(v => v.Replica.ShardId).All(shard =>
            shard.Count() == replication && shard.Select(v => v.Replica.AppliedIndex).Distinct().Count() == 1);
}
