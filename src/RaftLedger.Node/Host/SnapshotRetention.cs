using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// Leader side of a catch-up: the log a follower needs after the snapshot it is being sent. A follower that installs a
/// snapshot at index I continues from the leader's entry I + 1; if the leader compacted past I meanwhile, which under
/// heavy load it does every few seconds (the WAL is compacted by size), the follower needs another snapshot of
/// millions of records, and can fall behind for good (in a catch-up at 100,000 transfers/s three of eight shards needed
/// two snapshots each). So from the start of a stream until the follower has acknowledged what the leader would
/// compact, the leader compacts that shard's log only up to I, or up to what the follower acknowledged since (not once
/// the follower's node is found down); unless its WAL holds more than <see cref="HostOptions.SnapshotRetentionLogBytesMax"/>,
/// past which disk space wins (the follower then needs another snapshot, as before), or the follower has acknowledged
/// nothing new for <see cref="HostOptions.SnapshotRetentionStallTicks"/> (alive but wedged: its leaders' logs would
/// otherwise grow to that bound, and their restarts replay all of it). Scheduler thread only; pure (no clock, no IO:
/// time is the host's tick count).
/// </summary>
internal sealed class SnapshotRetention(long logBytesMax, long stallTicksMax)
{
    private const ulong MatchUnseen = ulong.MaxValue; // No acknowledgement looked at yet since the stream started.

    private readonly Dictionary<(ulong Group, ulong To), Kept> kept = [];

    /// <summary>Streams whose log is kept (for tests and the log).</summary>
    public int Count => kept.Count;

    /// <summary>A stream of the snapshot at <paramref name="index"/> to <paramref name="to"/> started at tick <paramref name="now"/>.</summary>
    public void Started(ulong group, ulong to, ulong index, long now)
    {
        Invariant.Check(group != 0 && to != 0 && index != 0, "a shard's snapshot to a node");
        kept[(group, to)] = new Kept(index, MatchUnseen, now);
    }

    /// <summary>
    /// The stream to <paramref name="to"/> ended well at tick <paramref name="now"/>: the follower installs the snapshot
    /// next, so its stall is counted from here (a long stream is not a wedged follower).
    /// </summary>
    public void Finished(ulong group, ulong to, long now)
    {
        if (kept.TryGetValue((group, to), out var entry))
        {
            kept[(group, to)] = entry with { ProgressTick = now };
        }
    }

    /// <summary>The stream failed or was refused: the follower will be sent a newer snapshot, nothing to keep.</summary>
    public void Failed(ulong group, ulong to) => kept.Remove((group, to));

    /// <summary>
    /// The transport found <paramref name="node"/> down (connections refused or reset): a follower that stopped after
    /// its install no longer pins its leaders' logs (nor their leadership) until the WAL bound; when it returns it is
    /// sent what it then needs.
    /// </summary>
    public void NodeDown(ulong node)
    {
        foreach (var key in kept.Keys.Where(k => k.To == node).ToList())
        {
            kept.Remove(key);
        }
    }

    /// <summary>
    /// The highest index the group's log may be compacted to at tick <paramref name="now"/> (<see cref="ulong.MaxValue"/>:
    /// no limit) when the caller would compact it to <paramref name="wanted"/>, given the leader's <paramref name="status"/>:
    /// for each follower kept for, the higher of its snapshot's index and what it has acknowledged since, so that it
    /// finds in the log everything from its snapshot to the leader's last entry. Forgets a follower once it has
    /// acknowledged <paramref name="wanted"/>; every follower of the group once this node no longer leads it or the WAL
    /// is over its bound (<paramref name="overBound"/>: something was let go for that reason, the caller warns); and a
    /// follower whose acknowledgements have not moved for the stall bound (added to <paramref name="stalled"/>, the
    /// caller warns). Call it regularly while <see cref="IsKeeping"/>: progress is seen only here.
    /// </summary>
    public ulong CompactionLimit(ulong group, RaftStatus status, long logBytes, ulong wanted, long now, List<ulong> stalled, out bool overBound)
    {
        var leads = status.Role == RaftRole.Leader;
        var tooLarge = leads && logBytes > logBytesMax;
        overBound = false;
        var limit = ulong.MaxValue;
        foreach (var key in kept.Keys.Where(k => k.Group == group).ToList())
        {
            var match = MatchOf(status, key.To);
            var entry = Observe(kept[key], match, now);
            if (!leads || tooLarge || match >= wanted)
            {
                overBound |= tooLarge;
                kept.Remove(key);
                continue;
            }

            if (now - entry.ProgressTick > stallTicksMax)
            {
                stalled.Add(key.To);
                kept.Remove(key);
                continue;
            }

            kept[key] = entry;
            limit = Math.Min(limit, Math.Max(entry.Index, match));
        }

        return limit;
    }

    // The first acknowledgement looked at is the baseline; a later, higher one is progress.
    private static Kept Observe(Kept entry, ulong match, long now) =>
        entry.Match == MatchUnseen ? entry with { Match = match }
        : match > entry.Match ? new Kept(entry.Index, match, now)
        : entry;

    /// <summary>Whether log is kept for a follower of <paramref name="group"/> (until the next <see cref="CompactionLimit"/> says otherwise).</summary>
    public bool IsKeeping(ulong group)
    {
        foreach (var key in kept.Keys)
        {
            if (key.Group == group)
            {
                return true;
            }
        }

        return false;
    }

    private static ulong MatchOf(RaftStatus status, ulong node)
    {
        foreach (var peer in status.Progress)
        {
            if (peer.Id == node)
            {
                return peer.Match;
            }
        }

        return ulong.MaxValue; // Not a member: nothing to keep for it.
    }

    /// <param name="Index">The snapshot's index.</param>
    /// <param name="Match">The follower's acknowledged index when last looked at (<see cref="MatchUnseen"/>: not yet).</param>
    /// <param name="ProgressTick">Tick of the stream's start or end, or of the follower's last new acknowledgement.</param>
    private readonly record struct Kept(ulong Index, ulong Match, long ProgressTick);
}
