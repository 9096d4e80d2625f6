using Prometheus;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Api;

/// <summary>Client-API metrics on /metrics, beside prometheus-net's HTTP request metrics.</summary>
internal static class ApiMetrics
{
    private static readonly Counter Events = Metrics.CreateCounter(
        "raftledger_api_events_total",
        "Create events answered by this node's API, by operation and outcome (created or failed).",
        new CounterConfiguration { LabelNames = ["operation", "outcome"] });

    private static readonly Counter.Child AccountsCreated = Events.WithLabels("create_accounts", "created");
    private static readonly Counter.Child AccountsFailed = Events.WithLabels("create_accounts", "failed");
    private static readonly Counter.Child TransfersCreated = Events.WithLabels("create_transfers", "created");
    private static readonly Counter.Child TransfersFailed = Events.WithLabels("create_transfers", "failed");

    public static void CountResults(ReadOnlySpan<AccountEventResult> results)
    {
        var created = 0;
        foreach (var result in results)
        {
            created += result.Status == CreateAccountResult.Created ? 1 : 0;
        }

        AccountsCreated.Inc(created);
        AccountsFailed.Inc(results.Length - created);
    }

    public static void CountResults(ReadOnlySpan<TransferEventResult> results)
    {
        var created = 0;
        foreach (var result in results)
        {
            created += result.Status == CreateTransferResult.Created ? 1 : 0;
        }

        TransfersCreated.Inc(created);
        TransfersFailed.Inc(results.Length - created);
    }
}
