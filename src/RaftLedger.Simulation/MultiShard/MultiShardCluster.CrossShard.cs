using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Raft;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>A client request's cross-shard part handed to a driver: which attempt, and which of its events.</summary>
internal sealed record DriverRequest(ClientRequest Request, int Attempt, int[] Indices);

// Hosting of the cross-shard protocol driver (docs/ARCHITECTURE.md, Simulator, multi-shard): one driver per
// replica over its ledger; events Classify marks go to the home leader's driver; its proposals are stamped and
// proposed like any other command; its messages travel the simulated network to the other shard's leader.
public sealed partial class MultiShardCluster
{
    private readonly Dictionary<long, DriverRequest> _driverRequests = [];
    private long _nextRequestToken;

    /// <summary>Fast-path chains a leader handed to its driver after the ledger refused them (see <see cref="CrossShardDriver.MarkChainsRefusedOnFastPath"/>).</summary>
    public long ReroutedChains { get; private set; }

    /// <summary>Cross-shard messages the drivers sent (all shards).</summary>
    public long CrossShardMessagesSent { get; private set; }

    /// <summary>Tick of the last action any driver took (proposal or message): quiet drivers take none.</summary>
    public long LastDriverActionTick { get; private set; }

    /// <summary>
    /// True when no cross-shard work is left: every shard has a ready leader whose driver coordinates and watches
    /// nothing, and no replica's ledger holds a coordinator record or a prepared leg.
    /// </summary>
    public bool CrossShardQuiet()
    {
        for (var shard = 0; shard < Options.ShardCount; shard++)
        {
            if (Leader(shard) is not { Driver: { } driver } || driver.CoordinatorTransactionCount != 0 || driver.PreparedTransactionCount != 0)
            {
                return false;
            }

            foreach (var replica in _shardReplicas[shard])
            {
                if (replica.Ledger is { } ledger && (UnfinishedSideRecord(ledger) is not null || DueExpiry(ledger, ClusterTimeNs) is not null))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>The first coordinator record or prepared leg in the ledger's side table, or null.</summary>
    internal static SideRecord? UnfinishedSideRecord(LedgerStateMachine ledger)
    {
        foreach (var table in (ReadOnlySpan<byte>)[CrossShardTables.Coordinator, CrossShardTables.Prepared])
        {
            foreach (var record in ledger.Store.EnumerateSideRecords(table))
            {
                return record;
            }
        }

        return null;
    }

    /// <summary>
    /// A cross-shard pending transfer whose expiry time has passed but that is still to expire (its id), or null. Reads
    /// the Expiry table by id, not the expiry order the leader reads, so an entry missing from the order shows here.
    /// </summary>
    internal static UInt128? DueExpiry(LedgerStateMachine ledger, ulong nowNs)
    {
        foreach (var record in ledger.Store.EnumerateSideRecords(CrossShardTables.Expiry))
        {
            if (ledger.TryGetCrossShardExpiry(record.Key, out var expiresAtNs) && expiresAtNs <= nowNs)
            {
                return record.Key;
            }
        }

        return null;
    }

    private static string DescribeDriver(ShardReplica replica) => replica.Driver is null ? "" : " driver";

    private void CreateDriver(ShardReplica replica) =>
        replica.Driver = new CrossShardDriver(replica.Shard, Options.ShardCount, replica.Ledger!, Options.CrossShard);

    private static void DropDriver(ShardReplica replica) => replica.Driver = null;

    private void TickDrivers()
    {
        foreach (var node in _nodes)
        {
            foreach (var replica in node.Replicas)
            {
                ReportFailedProposals(replica);
                replica.Driver?.Tick(ClusterTimeNs);
            }
        }
    }

    /// <summary>Executes the driver's actions in order: propose, send, answer or fail a client request.</summary>
    private void DrainDriver(ShardReplica replica)
    {
        if (replica.Driver is not { } driver)
        {
            return;
        }

        for (var taken = 0; driver.TryTakeAction(out var action); taken++)
        {
            Invariant.Check(taken < CrossShardLimits.ActionsQueuedMax, "a driver queued more actions than its limit");
            TakeAction(replica, action);
        }
    }

    /// <summary>
    /// Tells each driver about its proposals that will never apply. Done once per tick, before the drivers tick,
    /// so a driver that re-proposes at once and is refused again does not spin within one tick.
    /// </summary>
    private void ReportFailedProposals(ShardReplica replica)
    {
        if (replica.Driver is not { } driver || replica.FailedTokens.Count == 0)
        {
            return;
        }

        var failed = replica.FailedTokens.ToArray();
        replica.FailedTokens.Clear();
        foreach (var token in failed)
        {
            driver.OnProposalFailed(token);
        }
    }

    private void TakeAction(ShardReplica replica, CrossShardAction action)
    {
        switch (action)
        {
            case ProposeAction propose:
                LastDriverActionTick = NowTicks;
                Trace?.Invoke($"{NowTicks} shard {replica.Shard} node {replica.NodeId} proposes {(LedgerOperation)propose.Command[OperationOffset]} token {propose.Token}");
                ProposeForDriver(replica, propose);
                break;
            case SendAction send:
                LastDriverActionTick = NowTicks;
                Trace?.Invoke($"{NowTicks} shard {replica.Shard} node {replica.NodeId} sends {send.Message.Length} bytes to shard {send.ToShard}");
                SendCrossShard(replica, send);
                break;
            case CompleteAction complete:
                CompleteDriverRequest(complete);
                break;
            case FailAction fail:
                FailDriverRequest(fail);
                break;
            default:
                throw new InvalidOperationException($"unknown cross-shard action {action}");
        }
    }

    private void ProposeForDriver(ShardReplica replica, ProposeAction propose)
    {
        var operation = (LedgerOperation)propose.Command[OperationOffset];
        if (!replica.IsReadyLeader ||
            ProposeStamped(replica, propose.Command, new PendingProposal(0, null, 0, propose.Token, operation)).Status != ProposalStatus.Accepted)
        {
            replica.FailedTokens.Add(propose.Token);
            return;
        }

        replica.Driver!.OnProposalAccepted(propose.Token);
    }

    /// <summary>
    /// Sends to the node hosting the destination shard's current leader (the simulator knows it; leader discovery
    /// is not what this tests), or to a random replica while there is none: a non-leader drops it.
    /// </summary>
    private void SendCrossShard(ShardReplica replica, SendAction send)
    {
        Invariant.Check(send.ToShard >= 0 && send.ToShard < Options.ShardCount, "messages go to existing shards");
        Invariant.Check(send.Message.Length <= CrossShardLimits.MessageBytesMax, "cross-shard messages are bounded");
        var to = Leader(send.ToShard)?.NodeId ?? _clientRandom.Pick(_shardReplicas[send.ToShard]).NodeId;
        CrossShardMessagesSent++;
        Network.Send(replica.NodeId, to, new ShardEnvelope(send.ToShard, null, null, replica.Shard, send.Message), NowTicks);
    }

    private void DeliverCrossShard(ShardReplica replica, int fromShard, byte[] message)
    {
        if (replica.IsReadyLeader)
        {
            replica.Driver!.OnMessage(fromShard, message);
        }
    }

    private void CompleteDriverRequest(CompleteAction complete)
    {
        if (!_driverRequests.Remove(complete.RequestToken, out var part) || part.Request.Attempt != part.Attempt || part.Request.PartsOutstanding == 0)
        {
            return;
        }

        Invariant.Check(complete.Results.Length == part.Indices.Length, "one result per submitted cross-shard event");
        for (var i = 0; i < part.Indices.Length; i++)
        {
            part.Request.Results[part.Indices[i]] = complete.Results[i];
        }

        PartDone(part.Request);
    }

    /// <summary>503/504: the client's attempt is over; it retries the same transfers after a short back-off.</summary>
    private void FailDriverRequest(FailAction fail)
    {
        if (!_driverRequests.Remove(fail.RequestToken, out var part) || part.Request.Attempt != part.Attempt || part.Request.PartsOutstanding == 0)
        {
            return;
        }

        Trace?.Invoke($"{NowTicks} client {part.Request.Client} attempt {part.Attempt} failed (outcome unknown: {fail.OutcomeUnknown}): {fail.Detail}");
        FailAttempt(part.Request);
    }

    /// <summary>The client's current attempt is over without an answer; it retries the same transfers after a short back-off.</summary>
    private void FailAttempt(ClientRequest request)
    {
        request.PartsOutstanding = 0;
        var client = _setupClients.Find(c => c.Outstanding == request) ?? _clients.Find(c => c.Id == request.Client);
        if (client is not null && client.Outstanding == request)
        {
            client.NextAttemptTick = NowTicks + _clientRandom.Between(2, 10);
        }
    }

    private void OnLeadershipChanged(ShardReplica replica, bool isLeader, ulong term)
    {
        Trace?.Invoke($"{NowTicks} shard {replica.Shard} node {replica.NodeId} {(isLeader ? "leads" : "stops leading")} in term {term}");
        replica.Driver?.OnRoleChanged(isLeader, term);
    }

    /// <summary>A follower installed a snapshot: its driver starts over on the restored ledger.</summary>
    private void OnLedgerReplaced(ShardReplica replica)
    {
        Invariant.Check(!replica.IsReadyLeader, "a leader never installs a snapshot");
        CreateDriver(replica);
    }

    private static (int[] Fast, int[] Cross) Split(ShardReplica leader, ClientRequest request)
    {
        var crossShard = new bool[request.Transfers.Length];
        leader.Driver!.Classify(request.Transfers, crossShard);
        var fast = new List<int>(crossShard.Length);
        var cross = new List<int>(crossShard.Length);
        for (var i = 0; i < crossShard.Length; i++)
        {
            (crossShard[i] ? cross : fast).Add(i);
        }

        return ([.. fast], [.. cross]);
    }

    private void SubmitCrossShard(ShardReplica leader, ClientRequest request, int[] cross)
    {
        var token = ++_nextRequestToken;
        var events = new Transfer[cross.Length];
        for (var i = 0; i < cross.Length; i++)
        {
            events[i] = request.Transfers[cross[i]];
        }

        _driverRequests[token] = new DriverRequest(request, request.Attempt, cross);
        leader.Driver!.Submit(token, events);
    }

    private void DriverProposalApplied(ShardReplica replica, long token, ReadOnlySpan<byte> results) =>
        replica.Driver?.OnProposalApplied(token, results);

    private void DriverProposalFailed(ShardReplica replica, long token)
    {
        if (replica.Driver is not null)
        {
            replica.FailedTokens.Add(token);
        }
    }
}
