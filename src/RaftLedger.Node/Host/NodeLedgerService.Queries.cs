using RaftLedger.Ledger;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Host;

internal sealed partial class NodeLedgerService
{
    public async ValueTask<ServiceResult<Account[]>> LookupAccountsAsync(ReadOnlyMemory<UInt128> ids, CancellationToken cancellationToken)
    {
        var shards = new int[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            shards[i] = map.ShardOf(ids.Span[i]);
        }

        var parts = Split(shards, new bool[ids.Length]);
        var calls = new Task<ShardCallResult>[parts.Count];
        for (var p = 0; p < parts.Count; p++)
        {
            var partIds = new UInt128[parts[p].Events.Count];
            for (var j = 0; j < partIds.Length; j++)
            {
                partIds[j] = ids.Span[parts[p].Events[j]];
            }

            calls[p] = router.CallAsync(parts[p].Shard, ShardRequestKind.LookupAccounts, ShardPayload.EncodeIds(partIds), cancellationToken);
        }

        if (await Gather(calls).ConfigureAwait(false) is { } failure)
        {
            return ServiceResult<Account[]>.Failed(ReadStatus(failure), failure.Detail, failure.RetryAfter);
        }

        var found = new Dictionary<UInt128, Account>();
        foreach (var call in calls)
        {
            foreach (var account in ShardPayload.DecodeAccounts(call.Result.Payload.Span))
            {
                found[account.Id] = account;
            }
        }

        var ordered = new List<Account>(found.Count);
        foreach (var id in ids.Span)
        {
            if (found.TryGetValue(id, out var account))
            {
                ordered.Add(account);
            }
        }

        return ServiceResult<Account[]>.Ok([.. ordered]);
    }

    /// <summary>
    /// A transfer's record lives on its home shard, <c>shard(transfer id)</c>, so each id is asked there first. An
    /// event of a linked chain lives on the home of the chain's first event, which its id does not tell: ids not
    /// found at their home are then asked of every shard.
    /// </summary>
    public async ValueTask<ServiceResult<Transfer[]>> LookupTransfersAsync(ReadOnlyMemory<UInt128> ids, CancellationToken cancellationToken)
    {
        var shards = new int[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            shards[i] = map.ShardOf(ids.Span[i]);
        }

        var parts = Split(shards, new bool[ids.Length]);
        var calls = new Task<ShardCallResult>[parts.Count];
        for (var p = 0; p < parts.Count; p++)
        {
            var partIds = new UInt128[parts[p].Events.Count];
            for (var j = 0; j < partIds.Length; j++)
            {
                partIds[j] = ids.Span[parts[p].Events[j]];
            }

            calls[p] = router.CallAsync(parts[p].Shard, ShardRequestKind.LookupTransfers, ShardPayload.EncodeIds(partIds), cancellationToken);
        }

        var found = new Dictionary<UInt128, Transfer>();
        if (await CollectTransfersAsync(calls, found).ConfigureAwait(false) is { } failure)
        {
            return ServiceResult<Transfer[]>.Failed(ReadStatus(failure), failure.Detail, failure.RetryAfter);
        }

        var missing = new List<UInt128>();
        foreach (var id in ids.Span)
        {
            if (!found.ContainsKey(id))
            {
                missing.Add(id);
            }
        }

        if (missing.Count > 0 && map.ShardCount > 1)
        {
            var payload = ShardPayload.EncodeIds([.. missing]);
            var everywhere = new Task<ShardCallResult>[map.ShardCount];
            for (var shard = 0; shard < everywhere.Length; shard++)
            {
                everywhere[shard] = router.CallAsync(shard, ShardRequestKind.LookupTransfers, payload, cancellationToken);
            }

            if (await CollectTransfersAsync(everywhere, found).ConfigureAwait(false) is { } again)
            {
                return ServiceResult<Transfer[]>.Failed(ReadStatus(again), again.Detail, again.RetryAfter);
            }
        }

        var ordered = new List<Transfer>(found.Count);
        foreach (var id in ids.Span)
        {
            if (found.TryGetValue(id, out var transfer))
            {
                ordered.Add(transfer);
            }
        }

        return ServiceResult<Transfer[]>.Ok([.. ordered]);
    }

    private async Task<Failure?> CollectTransfersAsync(Task<ShardCallResult>[] calls, Dictionary<UInt128, Transfer> found)
    {
        if (await Gather(calls).ConfigureAwait(false) is { } failure)
        {
            return failure;
        }

        foreach (var call in calls)
        {
            foreach (var transfer in ShardPayload.DecodeTransfers(call.Result.Payload.Span))
            {
                found[transfer.Id] = transfer;
            }
        }

        return null;
    }

    public async ValueTask<ServiceResult<Transfer[]>> GetAccountTransfersAsync(AccountFilter filter, CancellationToken cancellationToken)
    {
        var result = await router.CallAsync(map.ShardOf(filter.AccountId), ShardRequestKind.AccountTransfers, ShardPayload.EncodeFilter(filter), cancellationToken).ConfigureAwait(false);
        return result.IsOk
            ? ServiceResult<Transfer[]>.Ok(ShardPayload.DecodeTransfers(result.Payload.Span))
            : ServiceResult<Transfer[]>.Failed(ReadStatus(result.Status), result.Detail);
    }

    public async ValueTask<ServiceResult<AccountBalance[]>> GetAccountBalancesAsync(AccountFilter filter, CancellationToken cancellationToken)
    {
        var result = await router.CallAsync(map.ShardOf(filter.AccountId), ShardRequestKind.AccountBalances, ShardPayload.EncodeFilter(filter), cancellationToken).ConfigureAwait(false);
        return result.IsOk
            ? ServiceResult<AccountBalance[]>.Ok(ShardPayload.DecodeBalances(result.Payload.Span))
            : ServiceResult<AccountBalance[]>.Failed(ReadStatus(result.Status), result.Detail);
    }

    /// <summary>Reads change nothing, so an unknown outcome is simply "no answer": 503, retry.</summary>
    private static ServiceStatus ReadStatus(Failure failure) =>
        failure.Status == ServiceStatus.OutcomeUnknown ? ServiceStatus.Unavailable : failure.Status;

    private static ServiceStatus ReadStatus(ShardCallStatus status) => status switch
    {
        ShardCallStatus.NotLeader or ShardCallStatus.NoLeader => ServiceStatus.NoLeader,
        _ => ServiceStatus.Unavailable,
    };

    public async ValueTask<ClusterStatus> GetClusterStatusAsync(CancellationToken cancellationToken)
    {
        var local = await host.QueryAsync(states => states).WaitAsync(cancellationToken).ConfigureAwait(false);
        var latest = host.LatestMeta.Map ?? map; // Addresses change through the meta group; placement does not.
        var nodes = new List<NodeInfo>(latest.Nodes.Count);
        foreach (var node in latest.Nodes)
        {
            var up = node.Id == options.NodeId || transport.IsConnected(node.Id);
            nodes.Add(new NodeInfo(node.Id, node.ApiAddress, node.PeerAddress, up) { GrpcAddress = node.GrpcAddress is { Length: > 0 } grpc ? grpc : null });
        }

        var shards = new List<ShardInfo>(map.ShardCount);
        foreach (var placement in map.Shards)
        {
            var state = local.FirstOrDefault(s => s.Shard == placement.Shard);
            if (state is null)
            {
                shards.Add(new ShardInfo((uint)placement.Shard, placement.Replicas, 0, 0, 0, 0));
                continue;
            }

            var raft = state.Raft;
            shards.Add(new ShardInfo((uint)placement.Shard, placement.Replicas, raft.Leader, raft.Term, raft.Commit, raft.Applied)
            {
                Progress = [.. raft.Progress.Select(p => new ReplicaProgress(p.Id, p.Match))],
            });
        }

        var meta = host.Meta;
        return new ClusterStatus(nodes, shards)
        {
            Meta = meta is null ? null : new MetaGroupInfo(meta.Voters, meta.Leader, meta.Term, meta.Commit, meta.Applied),
        };
    }

    public async ValueTask<NodeStatus> GetNodeStatusAsync(bool withFingerprints, CancellationToken cancellationToken)
    {
        var local = await host.QueryAsync(states => states).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (withFingerprints)
        {
            // One shard per scheduler pass, each with the applied index it was computed at: computing all of them in
            // one pass held the loop (and every group's heartbeats) for seconds on a large ledger.
            var states = new List<ShardReplicaState>(local.Count);
            foreach (var state in local)
            {
                var shard = state.Shard;
                states.Add(await host.QueryAsync(all => all.First(s => s.Shard == shard), shard).WaitAsync(cancellationToken).ConfigureAwait(false));
            }

            local = states;
        }

        var replicas = local.Select(s => new LocalReplicaStatus(
            (uint)s.Shard, s.Raft.Role == Raft.RaftRole.Leader, s.Raft.Term, s.Raft.Commit, s.Raft.Applied, s.Fingerprint, s.CrossShardUnfinished)).ToList();
        return new NodeStatus(options.NodeId, replicas);
    }
}
