namespace RaftLedger.Cli.Bench;

/// <summary>
/// The transfer ids of one bench run, shared by all its callers: every id is above every id made before it, by
/// any caller, as the SDK's time-ordered ids (<c>TransferIds.New</c>, ULID-like) are to the millisecond. Giving
/// each caller its own id range instead (as the bench did before the eighth session) made every caller's ids but
/// one's fall below ids already stored, which no client following the SDK's advice produces, and charged the
/// node a lookup per transfer. Thread-safe.
/// </summary>
/// <param name="runId">Differs between runs against the same cluster (the bench uses its start time in ms, so later runs' ids are higher).</param>
public sealed class BenchIdSequence(ulong runId)
{
    private long last;

    /// <summary>The next id: higher than every id this sequence made before.</summary>
    public UInt128 Next() => new(runId, (ulong)Interlocked.Increment(ref last));
}
