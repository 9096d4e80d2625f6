using RaftLedger.Ledger;

namespace RaftLedger.Simulation.MultiShard;

// Hosting of the cross-shard protocol driver (filled in once the driver exists; until then every event
// takes the fast path and nothing here acts).
public sealed partial class MultiShardCluster
{
    /// <summary>True when no shard's driver has unfinished work (records, prepared legs, pending proposals or sends).</summary>
    public bool CrossShardQuiet() => true;

    private static string DescribeDriver(ShardReplica replica) => "";

    private static void CreateDriver(ShardReplica replica)
    {
    }

    private static void DropDriver(ShardReplica replica)
    {
    }

    private void TickDrivers()
    {
    }

    private static void DrainDriver(ShardReplica replica)
    {
    }

    private static void DeliverCrossShard(ShardReplica replica, int fromShard, byte[] message)
    {
    }

    private static void OnLeadershipChanged(ShardReplica replica, bool isLeader, ulong term)
    {
    }

    private static void OnLedgerReplaced(ShardReplica replica)
    {
    }

    private static (int[] Fast, int[] Cross) Split(ShardReplica leader, ClientRequest request)
    {
        var fast = new int[request.Transfers.Length];
        for (var i = 0; i < fast.Length; i++)
        {
            fast[i] = i;
        }

        return (fast, []);
    }

    private static void SubmitCrossShard(ShardReplica leader, ClientRequest request, int[] cross) =>
        throw new NotSupportedException("cross-shard events need the cross-shard driver");

    private static void DriverProposalApplied(ShardReplica replica, long token, ReadOnlySpan<byte> results)
    {
    }

    private static void DriverProposalFailed(ShardReplica replica, long token)
    {
    }
}
