using System.CommandLine;
using System.Globalization;
using System.Text;
using RaftLedger.Cli.Client;
using RaftLedger.Node.Api;

namespace RaftLedger.Cli;

/// <summary><c>raftledger status</c>: the cluster table as one node sees it.</summary>
public static class StatusCommand
{
    public static Command Create()
    {
        var api = new Option<string>("--api") { Description = "Any node's REST API URL.", DefaultValueFactory = _ => "http://127.0.0.1:8101" };
        var command = new Command("status", "Print the cluster's nodes and shards (leaders, terms, indexes, lag).") { api };
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

                Console.Write(Format(answer.Value!));
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
