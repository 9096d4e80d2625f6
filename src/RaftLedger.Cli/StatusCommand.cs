using System.CommandLine;
using System.Globalization;
using System.Text;
using RaftLedger.Cli.Client;
using RaftLedger.Node.Api;

namespace RaftLedger.Cli;

/// <summary>
/// <c>raftledger status</c>: the cluster table as one node sees it, with each shard's row taken from its leader when
/// the leader answers: only a leader knows how far its followers' logs are, so one node's view alone shows the lag of
/// the shards that node leads and "-" for the rest, and an operator about to wipe or restart a node needs all of them.
/// </summary>
public static class StatusCommand
{
    public static Command Create()
    {
        var api = new Option<string>("--api") { Description = "Any node's REST API URL.", DefaultValueFactory = _ => "http://127.0.0.1:8101" };
        var command = new Command("status", "Print the cluster's nodes and shards (leaders, terms, indexes, lag), each shard as its leader reports it.") { api };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!Uri.TryCreate(parse.GetValue(api), UriKind.Absolute, out var url))
            {
                await Console.Error.WriteLineAsync($"raftledger status: --api must be a URL like http://127.0.0.1:8101, got '{parse.GetValue(api)}'.");
                return 2;
            }

            using var client = new LedgerHttpClient(TimeSpan.FromSeconds(5));
            try
            {
                var answer = await client.GetClusterAsync(url, cancellationToken);
                if (!answer.IsOk)
                {
                    await Console.Error.WriteLineAsync($"raftledger status: {url} answered {(int)answer.StatusCode}: {answer.Problem}");
                    return 1;
                }

                var leaderViews = await ReadOtherViewsAsync(client, url, answer.Value!, cancellationToken);
                Console.Write(Format(WithLeaderRows(answer.Value!, leaderViews)));
                return 0;
            }
            catch (HttpRequestException exception)
            {
                await Console.Error.WriteLineAsync($"raftledger status: cannot reach {url} ({exception.Message}). Is a node running there? Try --api.");
                return 1;
            }
        });
        return command;
    }

    /// <summary>
    /// <paramref name="asked"/> with each shard row that has no follower progress (the asked node does not lead it)
    /// replaced by the row of a view that has it: the one with the highest term, since a deposed leader may still answer
    /// with its old progress until it hears of the new term. Rows no view has progress for stay as asked (lag "-").
    /// </summary>
    public static ClusterStatus WithLeaderRows(ClusterStatus asked, IReadOnlyList<ClusterStatus> others)
    {
        ArgumentNullException.ThrowIfNull(asked);
        ArgumentNullException.ThrowIfNull(others);
        var shards = new ShardInfo[asked.Shards.Count];
        for (var i = 0; i < shards.Length; i++)
        {
            var row = asked.Shards[i];
            if (row.Progress.Count == 0)
            {
                foreach (var view in others)
                {
                    var candidate = view.Shards.FirstOrDefault(s => s.Id == row.Id);
                    if (candidate is { Progress.Count: > 0 } && (row.Progress.Count == 0 || candidate.Term > row.Term))
                    {
                        row = candidate;
                    }
                }
            }

            shards[i] = row;
        }

        return asked with { Shards = shards };
    }

    /// <summary>
    /// The views of the other nodes the asked one lists as up, read only when some shard row lacks progress; a node
    /// that does not answer within the client's timeout is left out (its shards keep "-").
    /// </summary>
    private static async Task<ClusterStatus[]> ReadOtherViewsAsync(LedgerHttpClient client, Uri asked, ClusterStatus view, CancellationToken cancellationToken)
    {
        if (view.Shards.All(s => s.Progress.Count > 0))
        {
            return [];
        }

        var reads = new List<Task<ClusterStatus?>>();
        foreach (var node in view.Nodes)
        {
            if (node.Up && Uri.TryCreate($"{asked.Scheme}://{node.ApiAddress}", UriKind.Absolute, out var url) && url.Authority != asked.Authority)
            {
                reads.Add(ReadQuietlyAsync(client, url, cancellationToken));
            }
        }

        var answers = await Task.WhenAll(reads);
        return [.. answers.OfType<ClusterStatus>()];
    }

    /// <summary>A node's view, or null when it does not answer or answers with an error.</summary>
    private static async Task<ClusterStatus?> ReadQuietlyAsync(LedgerHttpClient client, Uri node, CancellationToken cancellationToken)
    {
        try
        {
            var answer = await client.GetClusterAsync(node, cancellationToken);
            return answer.IsOk ? answer.Value : null;
        }
        catch (Exception exception) when ((exception is HttpRequestException or TaskCanceledException) && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>The nodes table and the shards table, as plain text.</summary>
    public static string Format(ClusterStatus cluster)
    {
        var text = new StringBuilder();
        var nodes = new TextTable("node", "api", "peer", "grpc", "up");
        foreach (var node in cluster.Nodes)
        {
            nodes.Add(Number(node.Id), node.ApiAddress, node.PeerAddress, node.GrpcAddress ?? "-", node.Up ? "up" : "DOWN");
        }

        var shards = new TextTable("shard", "replicas", "leader", "term", "commit", "applied", "lag");
        foreach (var shard in cluster.Shards)
        {
            shards.Add(
                Number(shard.Id),
                string.Join(',', shard.Replicas),
                shard.Leader == 0 ? "none" : Number(shard.Leader),
                Number(shard.Term),
                Number(shard.CommitIndex),
                Number(shard.AppliedIndex),
                Lag(shard));
        }

        text.Append(nodes.Render()).AppendLine().Append(shards.Render());
        if (cluster.Meta is { } meta)
        {
            var group = new TextTable("meta group", "members", "leader", "term", "commit", "applied");
            group.Add("0", string.Join(',', meta.Members), meta.Leader == 0 ? "none" : Number(meta.Leader),
                Number(meta.Term), Number(meta.CommitIndex), Number(meta.AppliedIndex));
            text.AppendLine().Append(group.Render());
        }

        return text.ToString();
    }

    /// <summary>The furthest any replica's log is behind the leader's commit index, when the leader reported it.</summary>
    private static string Lag(ShardInfo shard)
    {
        if (shard.Progress.Count == 0)
        {
            return "-";
        }

        ulong lag = 0;
        foreach (var progress in shard.Progress)
        {
            lag = Math.Max(lag, shard.CommitIndex > progress.MatchIndex ? shard.CommitIndex - progress.MatchIndex : 0);
        }

        return Number(lag);
    }

    private static string Number(ulong value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A left-aligned plain-text table.</summary>
public sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> rows = [];

    public void Add(params string[] cells)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(cells.Length, headers.Length);
        rows.Add(cells);
    }

    public string Render()
    {
        var widths = new int[headers.Length];
        foreach (var row in rows.Prepend(headers))
        {
            for (var i = 0; i < row.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        var text = new StringBuilder();
        foreach (var row in rows.Prepend(headers))
        {
            for (var i = 0; i < row.Length; i++)
            {
                text.Append(row[i].PadRight(widths[i] + 2));
            }

            text.Length -= 2;
            text.AppendLine();
        }

        return text.ToString();
    }
}
