using System.Diagnostics;
using RaftLedger.Client;
using RaftLedger.Ledger;

namespace RaftLedger.Cli.Bench;

public sealed partial class BenchRun
{
    private LedgerClient? sdk;

    /// <summary>The SDK client shared by every --clients caller, as an application would share one.</summary>
    private async Task<LedgerClient> ConnectSdkAsync(IReadOnlyList<BenchNode> nodes, CancellationToken cancellationToken)
    {
        var byId = new Dictionary<ulong, Uri>();
        foreach (var node in nodes)
        {
            if (node.Id != 0)
            {
                byId[node.Id] = node.GrpcUrl;
            }
        }

        var client = new LedgerClient(new LedgerClientOptions
        {
            Addresses = [.. nodes.Select(node => node.GrpcUrl)],
            NodeAddresses = byId,
            CallTimeout = BenchLimits.RequestDeadline,
        });
        await client.ConnectAsync(cancellationToken);
        return client;
    }

    /// <summary>
    /// One independent caller: one transfer at a time through the SDK, which batches concurrent
    /// callers' transfers per shard. Latency is the caller's: from making the transfer to its outcome.
    /// </summary>
    private async Task ClientCallerAsync(LedgerClient client, int stream, CancellationToken stopping, CancellationToken abort)
    {
        var generator = new WorkloadGenerator(chooser!, Mix, options.Seed, ids!, stream);
        var one = new Transfer[1];
        var pacer = NewPacer(stream, 1);
        long events = 0;
        try
        {
            while (await PaceAsync(pacer, stopping))
            {
                var shard = generator.NextShard();
                var allowed = ReservePayments(1);
                var started = Stopwatch.GetTimestamp();
                var fill = generator.Fill(shard, one, allowed);
                ReturnPayments(allowed - fill.Payments);
                if (fill.Events == 0)
                {
                    break;
                }

                events++;
                var (created, error) = await CallSdkAsync(client, one[0], abort);
                var answered = Stopwatch.GetTimestamp();
                if (created)
                {
                    Recorder.Commit(shard, 1, answered);
                    Recorder.TransferLatency.Record(LatencyHistogram.ToMicroseconds(answered - started));
                }
                else
                {
                    Recorder.Error(error, 1);
                }

                generator.Acknowledge(one[0], created);
            }
        }
        finally
        {
            totals.Add(generator, events);
        }
    }

    private static async Task<(bool Created, string Error)> CallSdkAsync(LedgerClient client, Transfer transfer, CancellationToken abort)
    {
        try
        {
            var outcome = await client.CreateTransferAsync(transfer, BenchLimits.RequestDeadline, abort);
            return outcome.Outcome switch
            {
                // Ids are new in every run, so `exists` only answers the SDK's own retry of a lost attempt.
                EventOutcome.Answered => (outcome.IsCreatedOrExists, outcome.StatusName),
                EventOutcome.NotApplied => (false, "unanswered_not_applied"),
                _ => (false, "unanswered_unknown"),
            };
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            return (false, "unanswered_at_exit");
        }
        catch (LedgerUnavailableException)
        {
            return (false, "unanswered_no_cluster_map");
        }
        catch (LedgerRequestException)
        {
            return (false, "refused_request");
        }
    }
}
