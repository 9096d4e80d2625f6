namespace RaftLedger.Simulation;

/// <summary>
/// A simulated client: one operation outstanding at a time, sent to the node it believes leads, retried
/// (same sequence number, so the state machine applies it once) on another node after a timeout.
/// </summary>
public sealed class SimClient(int id)
{
    public int Id { get; } = id;

    /// <summary>Sequence number of the current (or last) operation; each new operation takes the next.</summary>
    public long Sequence { get; internal set; }

    /// <summary>History handle of the outstanding operation, or -1 when idle.</summary>
    public int Outstanding { get; internal set; } = -1;

    public KvInput Input { get; internal set; }

    /// <summary>The node the client will try next (its guess of the leader), 0 for "any".</summary>
    public int Target { get; internal set; }

    /// <summary>Tick of the next attempt (a new operation when idle, a retry otherwise).</summary>
    public long NextAttemptTick { get; internal set; }

    public long Attempts { get; internal set; }

    public long Retries { get; internal set; }

    public bool IsIdle => Outstanding < 0;
}
