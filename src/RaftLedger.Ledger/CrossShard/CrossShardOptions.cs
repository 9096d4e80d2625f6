namespace RaftLedger.Ledger.CrossShard;

/// <summary>Timing of a <see cref="CrossShardDriver"/>, in cluster time (ns). Validated by <see cref="Validate"/>.</summary>
public sealed record CrossShardOptions
{
    /// <summary>How long a message goes unanswered before the driver sends it again.</summary>
    public required ulong RetryIntervalNs { get; init; }

    /// <summary>
    /// How long a participant keeps a leg prepared before it asks the coordinator for the decision
    /// (and the coordinator, finding none, aborts). Must be several retry intervals.
    /// </summary>
    public required ulong AbandonTimeoutNs { get; init; }

    /// <summary>
    /// How long the coordinator waits for every participant's prepare answer before it aborts: half the
    /// abandonment timeout, so it decides before any participant starts asking.
    /// </summary>
    public ulong CoordinatorTimeoutNs => AbandonTimeoutNs / 2;

    /// <summary>Defaults for a local cluster: retry every 50 ms, abandon after 5 s.</summary>
    public static CrossShardOptions Default { get; } = new() { RetryIntervalNs = 50_000_000, AbandonTimeoutNs = 5_000_000_000 };

    /// <summary>Throws <see cref="ArgumentException"/> when the options cannot work together.</summary>
    public void Validate()
    {
        if (RetryIntervalNs == 0)
        {
            throw new ArgumentException("RetryIntervalNs must be above 0: it is how often unanswered messages are sent again.");
        }

        if (AbandonTimeoutNs < 4 * RetryIntervalNs)
        {
            throw new ArgumentException(
                $"AbandonTimeoutNs ({AbandonTimeoutNs}) must be at least 4 × RetryIntervalNs ({RetryIntervalNs}), so that a slow prepare is not aborted before its retries had a chance.");
        }
    }
}
