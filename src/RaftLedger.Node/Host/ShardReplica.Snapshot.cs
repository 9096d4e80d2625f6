using RaftLedger.Common;

namespace RaftLedger.Node.Host;

internal sealed partial class ShardReplica
{
    /// <summary>
    /// The host replaced this replica's ledger state by a leader's snapshot at <paramref name="snapshotIndex"/>:
    /// continue applying after it. Only followers install snapshots; proposals left from an earlier term as leader
    /// may or may not be inside the snapshot, so their callers learn that the outcome is unknown.
    /// </summary>
    public void OnSnapshotInstalled(ulong snapshotIndex)
    {
        Invariant.Check(snapshotIndex > applied, "a snapshot is installed only when it is ahead of the applied state");
        Invariant.Check(leaderTerm == 0, "a leader never installs a snapshot");
        foreach (var entry in proposed.Values)
        {
            foreach (var part in entry.Parts)
            {
                part.Request.Complete(ShardCallResult.Fail(ShardCallStatus.OutcomeUnknown, $"shard {Shard} caught up from a snapshot before the outcome was known; retry with the same ids"));
            }
        }

        proposed.Clear();
        applied = snapshotIndex;
        CompleteReadsUpTo(applied);
    }
}
