using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Raft;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>When a crash trap fires: right after a leader proposed an entry of the operation, or right after it applied one.</summary>
public enum TrapMoment : byte
{
    Proposed = 1,
    Applied = 2,
}

/// <summary>
/// Crash the node of the leader that proposes (or applies) the next entry of <paramref name="Operation"/>. A
/// proposed trap crashes at the end of the tick (the entry persisted and maybe sent, not yet committed); an
/// applied trap crashes after the Ready that applied it, before the host acts on the outcome.
/// </summary>
public sealed record CrashTrap(LedgerOperation Operation, TrapMoment Moment);

// Clients, the set-up of the bank, and crash traps.
public sealed partial class MultiShardCluster
{
    private readonly List<BankClient> _setupClients = [];
    private readonly List<int> _trappedNodes = [];
    private readonly List<int> _crashAfterReady = [];
    private readonly Dictionary<(LedgerOperation, TrapMoment), int> _trapsFired = [];
    private readonly Dictionary<LedgerOperation, long> _proposedByOperation = [];

    /// <summary>The armed crash trap (one-shot: cleared when it fires), or null.</summary>
    public CrashTrap? Trap { get; set; }

    /// <summary>How many times each kind of trap fired.</summary>
    public IReadOnlyDictionary<(LedgerOperation Operation, TrapMoment Moment), int> TrapsFired => _trapsFired;

    /// <summary>Entries proposed by leaders, by ledger operation.</summary>
    public IReadOnlyDictionary<LedgerOperation, long> ProposedByOperation => _proposedByOperation;

    /// <summary>
    /// Creates the bank's accounts on every shard and funds every customer from its shard's bank, on a reliable
    /// network, before any fault, with the workload's clients held back. Throws when the cluster cannot do it within <paramref name="ticksMax"/>.
    /// </summary>
    public void SetUp(int ticksMax)
    {
        var deadline = NowTicks + ticksMax;
        var clientsEnabled = ClientsEnabled;
        ClientsEnabled = false;
        for (var shard = 0; shard < Options.ShardCount; shard++)
        {
            var events = Workload.AccountEvents(shard);
            while (!AccountsExist(shard, events))
            {
                Require(RunUntil(() => Leader(shard) is not null, (int)(deadline - NowTicks)), $"set-up: no leader of shard {shard}");
                ProposeStamped(Leader(shard)!, LedgerCommand.EncodeCreateAccounts(0, events), new PendingProposal(0, null, 0, null, LedgerOperation.CreateAccounts));
                RunUntil(() => AccountsExist(shard, events), Options.RequestTimeoutTicks);
                Require(NowTicks < deadline, $"set-up: accounts of shard {shard} not created");
            }
        }

        for (var shard = 0; shard < Options.ShardCount; shard++)
        {
            var client = new BankClient(-(shard + 1)) { Outstanding = Workload.FundingRequest(shard, Options.InitialBalance) };
            _setupClients.Add(client);
        }

        Require(RunUntil(() => _setupClients.TrueForAll(c => c.IsIdle), (int)(deadline - NowTicks)), "set-up: funding transfers not answered");
        _setupClients.Clear();
        ClientsEnabled = clientsEnabled;
    }

    private bool AccountsExist(int shard, Account[] events)
    {
        var leader = Leader(shard);
        if (leader is null)
        {
            return false;
        }

        foreach (var account in events)
        {
            if (!leader.Ledger!.TryLookupAccount(account.Id, out _))
            {
                return false;
            }
        }

        return true;
    }

    private static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new SimulationFailureException(what);
        }
    }

    private void ClientsAct()
    {
        foreach (var client in _setupClients)
        {
            ClientAct(client);
        }

        foreach (var client in _clients)
        {
            ClientAct(client);
        }
    }

    private void ClientAct(BankClient client)
    {
        if (NowTicks < client.NextAttemptTick)
        {
            return;
        }

        if (client.IsIdle)
        {
            if (!ClientsEnabled || client.Id < 0)
            {
                return;
            }

            var crossShard = Options.ShardCount > 1 && _clientRandom.Chance(Options.CrossShardFraction);
            var twoPhase = crossShard && Options.TwoPhaseFraction > 0 && _clientRandom.Chance(Options.TwoPhaseFraction);
            client.Outstanding = twoPhase ? Workload.TwoPhaseRequest(client.Id)
                : crossShard ? Workload.CrossShardRequest(client.Id) : Workload.SingleShardRequest(client.Id);
        }
        else if (client.Outstanding!.Attempt > 0 && _clientRandom.Chance(0.5))
        {
            // A timeout or a refusal: the leader it knew may be gone; half the time start from a random replica.
            client.TargetNode = 0;
        }

        Submit(client, client.Outstanding!);
    }

    private void Submit(BankClient client, ClientRequest request)
    {
        request.Attempt++;
        request.PartsOutstanding = 0;
        var replicas = _shardReplicas[request.Home];
        var target = client.TargetNode != 0 ? client.TargetNode : _clientRandom.Pick(replicas).NodeId;
        var replica = _replicas[request.Home, target];
        if (replica?.Core is not { } core)
        {
            // Connection refused: try another replica soon.
            client.TargetNode = 0;
            client.NextAttemptTick = NowTicks + 2;
            return;
        }

        if (!replica.IsReadyLeader)
        {
            var hint = (int)core.Leader;
            client.TargetNode = hint != 0 && hint != target && _replicas[request.Home, hint] is not null ? hint : 0;
            client.NextAttemptTick = NowTicks + (client.TargetNode != 0 ? 1 : _clientRandom.Between(2, 10));
            return;
        }

        client.TargetNode = target;
        if (replica.Driver?.MustWait(request.Transfers) == true && Options.HostBug != MultiShardHostBug.IgnoreFences)
        {
            // The leader holds the request while an inherited leg fences one of its accounts (the node keeps it queued).
            client.NextAttemptTick = NowTicks + 1;
            return;
        }

        client.NextAttemptTick = NowTicks + Options.RequestTimeoutTicks;
        Workload.MarkSubmitted(request);
        if (!SubmitParts(replica, request))
        {
            client.NextAttemptTick = NowTicks + _clientRandom.Between(2, 10);
        }
    }

    /// <summary>
    /// Proposes the request's fast-path events as one create_transfers command and hands the rest to the
    /// shard's cross-shard driver. False when the leader refused the proposal (nothing was submitted).
    /// </summary>
    private bool SubmitParts(ShardReplica leader, ClientRequest request)
    {
        var (fast, cross) = Split(leader, request);
        request.FastIndices = fast;
        if (fast.Length > 0)
        {
            var events = new Transfer[fast.Length];
            for (var i = 0; i < fast.Length; i++)
            {
                events[i] = request.Transfers[fast[i]];
            }

            var result = ProposeStamped(leader, LedgerCommand.EncodeCreateTransfers(0, events),
                new PendingProposal(0, request, request.Attempt, null, LedgerOperation.CreateTransfers));
            if (result.Status != ProposalStatus.Accepted)
            {
                return false;
            }

            request.PartsOutstanding++;
            if (Options.HostBug == MultiShardHostBug.AcknowledgeOnPropose)
            {
                foreach (var index in fast)
                {
                    request.Results[index] = CreateTransferResult.Created;
                }

                PartDone(request);
            }
        }

        if (cross.Length > 0)
        {
            request.PartsOutstanding++;
            SubmitCrossShard(leader, request, cross);
        }

        return true;
    }

    private void ProposalApplied(ShardReplica replica, PendingProposal proposal, Entry entry, ReadOnlySpan<byte> results)
    {
        if (proposal.DriverToken is { } token)
        {
            DriverProposalApplied(replica, token, results);
        }
        else if (proposal.Request is { } request && request.Attempt == proposal.Attempt && request.PartsOutstanding > 0)
        {
            var fast = request.FastIndices;
            Invariant.Check(results.Length == fast.Length, "one result per proposed event");
            for (var i = 0; i < fast.Length; i++)
            {
                request.Results[fast[i]] = (CreateTransferResult)results[i];
            }

            if (RerouteRefusedChains(replica, request))
            {
                PartDone(request);
            }
        }

        if (Trap is { Moment: TrapMoment.Applied } trap && trap.Operation == proposal.Operation)
        {
            FireTrap(replica, trap);
        }
    }

    /// <summary>
    /// The host's answer to a fast-path chain the ledger refused with the internal needs_cross_shard_path (a post/void
    /// classified local before its cross-shard pending transfer was stored here; see
    /// <see cref="CrossShardDriver.MarkChainsRefusedOnFastPath"/>): the leader's driver runs it now, as the node does.
    /// </summary>
    /// False when the attempt failed instead (this replica no longer leads).
    private bool RerouteRefusedChains(ShardReplica replica, ClientRequest request)
    {
        var fast = request.FastIndices;
        var events = new Transfer[fast.Length];
        var statuses = new CreateTransferResult[fast.Length];
        for (var i = 0; i < fast.Length; i++)
        {
            events[i] = request.Transfers[fast[i]];
            statuses[i] = request.Results[fast[i]];
        }

        var reroute = new bool[fast.Length];
        if (!CrossShardDriver.MarkChainsRefusedOnFastPath(events, statuses, reroute))
        {
            return true;
        }

        if (!replica.IsReadyLeader)
        {
            // Only a leader's driver can run them: the client's attempt fails, and it retries the same ids.
            FailAttempt(request);
            return false;
        }

        ReroutedChains++;
        request.PartsOutstanding++;
        SubmitCrossShard(replica, request, [.. fast.Where((_, i) => reroute[i])]);
        return true;
    }

    private void ProposalFailed(ShardReplica replica, PendingProposal proposal)
    {
        // A client's part whose entry was replaced: the client times out and retries the same ids.
        if (proposal.DriverToken is { } token)
        {
            DriverProposalFailed(replica, token);
        }
    }

    /// <summary>One part of the request's current attempt is answered; when all are, the client has its results.</summary>
    private void PartDone(ClientRequest request)
    {
        Invariant.Check(request.PartsOutstanding > 0);
        if (--request.PartsOutstanding > 0)
        {
            return;
        }

        var client = _setupClients.Find(c => c.Outstanding == request) ?? _clients.Find(c => c.Id == request.Client);
        Invariant.Check(client is not null && client.Outstanding == request, "an answered request belongs to a waiting client");
        // A retried chain that an earlier attempt committed answers exists for its first event and linked_event_failed
        // for the rest (TigerBeetle's chain semantics): those say nothing about whether the rest exist.
        var chainExists = Array.IndexOf(request.Results, CreateTransferResult.Exists) >= 0;
        for (var i = 0; i < request.Transfers.Length; i++)
        {
            Invariant.Check(request.Results[i] != CreateTransferResult.NeedsCrossShardPath,
                "a client never gets needs_cross_shard_path: the host hands a chain the fast path refused to the driver");
            if (chainExists && request.Results[i] == CreateTransferResult.LinkedEventFailed)
            {
                continue;
            }

            Workload.Record(request.Transfers[i], request.Results[i]);
            AfterAnswer(request.Transfers[i], request.Results[i]);
        }

        RequestsAnswered++;
        Trace?.Invoke($"{NowTicks} client {request.Client} answered on shard {request.Home} after {request.Attempt} attempts");
        client!.Outstanding = null;
        client.NextAttemptTick = NowTicks + _clientRandom.Next(Options.ClientThinkTicksMax + 1);
    }

    private void OnProposed(ShardReplica replica, LedgerOperation operation)
    {
        _proposedByOperation[operation] = _proposedByOperation.GetValueOrDefault(operation) + 1;
        if (Trap is { Moment: TrapMoment.Proposed } trap && trap.Operation == operation)
        {
            FireTrap(replica, trap);
        }
    }

    private void FireTrap(ShardReplica replica, CrashTrap trap)
    {
        Trap = null;
        _trapsFired[(trap.Operation, trap.Moment)] = _trapsFired.GetValueOrDefault((trap.Operation, trap.Moment)) + 1;
        Trace?.Invoke($"{NowTicks} trap {trap.Operation}/{trap.Moment} fires on shard {replica.Shard} node {replica.NodeId}");
        (trap.Moment == TrapMoment.Applied ? _crashAfterReady : _trappedNodes).Add(replica.NodeId);
    }

    private void CrashTrappedNodes()
    {
        foreach (var node in _trappedNodes)
        {
            Crash(node);
        }

        _trappedNodes.Clear();
    }
}
