using RaftLedger.Common;

namespace RaftLedger.Node.Transport;

/// <summary>
/// Decides which refused peer connections are logged as warnings: the first one per peer, then at most one per
/// <see cref="IntervalSeconds"/>. A refused dialer redials every second or so, and a warning per attempt would bury
/// the rest of the log; one every half minute still tells an operator who looks at it now. The host uses one keyed by
/// group for snapshot sends that must wait for a free stream, which the core retries every few ticks. Thread-safe.
/// </summary>
internal sealed class RefusalWarnings(TimeProvider time)
{
    /// <summary>Shortest time between two warnings about the same peer.</summary>
    public const int IntervalSeconds = 30;

    /// <summary>
    /// Peers remembered at most: the accepting side keys by the node id a refused caller claims, which a stranger
    /// chooses freely. When full, entries older than the interval are forgotten; if none are, the warning is skipped
    /// (the refusal is still counted in /metrics).
    /// </summary>
    public const int PeersMax = 1024;

    private readonly Dictionary<ulong, long> lastWarned = [];

    /// <summary>True when a refusal involving <paramref name="peer"/> should be logged now (and records that it was).</summary>
    public bool ShouldWarn(ulong peer)
    {
        var now = time.GetTimestamp();
        lock (lastWarned)
        {
            if (lastWarned.TryGetValue(peer, out var last) && !Elapsed(last, now))
            {
                return false;
            }

            if (!lastWarned.ContainsKey(peer) && lastWarned.Count >= PeersMax && !ForgetElapsed(now))
            {
                return false;
            }

            lastWarned[peer] = now;
            Invariant.Check(lastWarned.Count <= PeersMax);
            return true;
        }
    }

    private bool Elapsed(long since, long now) => time.GetElapsedTime(since, now) >= TimeSpan.FromSeconds(IntervalSeconds);

    /// <summary>Forgets the peers last warned about longer than the interval ago; true when any was forgotten.</summary>
    private bool ForgetElapsed(long now)
    {
        var before = lastWarned.Count;
        foreach (var (peer, last) in lastWarned)
        {
            if (Elapsed(last, now))
            {
                lastWarned.Remove(peer);
            }
        }

        return lastWarned.Count < before;
    }
}
