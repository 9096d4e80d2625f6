using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// Hosting the shard's <see cref="CrossShardDriver"/>: create_transfers requests are classified when the leader
/// takes them; events the driver marks cross-shard are submitted to it (whole chains, at most
/// <see cref="CrossShardLimits.TransactionEventsMax"/> events per submission), the rest take the coalesced
/// fast path; the two halves' results are put back together in input order (<see cref="SplitRequest"/>).
/// The driver's actions are queued as they come out and executed in order at the start of each round.
/// </summary>
internal sealed partial class ShardReplica
{
    private readonly Queue<ShardRequest> unclassified = new();
    private readonly Queue<CrossShardAction> driverActions = new();

    // Open submissions by token, and the driver's proposals by log index (term, token) until applied or replaced.
    private readonly Dictionary<long, (SplitRequest Split, int[] Positions)> submissions = [];
    private readonly Dictionary<ulong, (ulong Term, long Token)> driverProposals = [];
    private CrossShardDriver? driver;
    private long nextToken;

    // The term the driver was told it leads in (0 = it was told it is not leader).
    // Invariant: driverTerm is 0 or == leaderTerm, and then timestampsReady (every earlier entry is applied).
    private ulong driverTerm;

    /// <summary>Sends a driver's message: (from shard, to shard, bytes). Set by the host.</summary>
    public Action<int, int, byte[]>? ShardMessageOut { get; set; }

    /// <summary>True while driver actions wait to be executed: the scheduler must run another round.</summary>
    public bool HasCrossShardWork => driverActions.Count > 0 || (unclassified.Count > 0 && driverTerm != 0);

    /// <summary>Creates this replica's driver (once, before the scheduler starts).</summary>
    public void EnableCrossShard(int shardCount, CrossShardOptions options)
    {
        Invariant.Check(driver is null);
        driver = new CrossShardDriver(Shard, shardCount, Ledger, options);
    }

    private ulong ClusterTimeNs() => (ulong)(time.GetUtcNow().ToUnixTimeMilliseconds() * 1_000_000);

    /// <summary>Host tick: the driver's retries and abandonment timeouts run on cluster time.</summary>
    public void TickCrossShard()
    {
        if (driver is not null)
        {
            driver.Tick(ClusterTimeNs());
            TakeDriverActions();
        }
    }

    /// <summary>A message from another shard's leader; false (dropped) when this replica does not lead its shard.</summary>
    public bool OnShardMessage(int fromShard, ReadOnlySpan<byte> message)
    {
        if (driver is null || driverTerm == 0)
        {
            return false;
        }

        driver.OnMessage(fromShard, message);
        TakeDriverActions();
        return true;
    }

    private void TakeDriverActions()
    {
        while (driver!.TryTakeAction(out var action))
        {
            driverActions.Enqueue(action);
        }
    }

    /// <summary>Tells the driver about leadership once the replica can propose (every earlier entry applied).</summary>
    private void ObserveDriverRole()
    {
        if (driver is null)
        {
            return;
        }

        if (driverTerm != 0 && driverTerm != leaderTerm)
        {
            driverTerm = 0;
            driver.OnRoleChanged(false, Raft.Term);
            TakeDriverActions();
            // The driver's proposals may still commit under the next leader, which resumes from the ledger.
            driverProposals.Clear();
            FailUnclassified(ShardCallResult.Fail(ShardCallStatus.NotLeader, $"node {Raft.Id} lost the leadership of shard {Shard}", Raft.Leader));
        }

        if (driverTerm == 0 && leaderTerm != 0 && timestampsReady)
        {
            driverTerm = leaderTerm;
            driver.OnRoleChanged(true, leaderTerm);
            TakeDriverActions();
        }
    }

    /// <summary>Runs at the start of each round: role changes, queued driver actions, then new requests.</summary>
    private void RunCrossShard()
    {
        ObserveDriverRole();
        ExecuteDriverActions();
        if (driverTerm != 0)
        {
            ClassifyQueued();
            ExecuteDriverActions();
        }

        if (driverTerm == 0 && submissions.Count > 0 && driverActions.Count == 0)
        {
            // The driver stopped leading without answering some requests: their outcome is decided without us.
            FailSubmissions(true, $"node {Raft.Id} lost the leadership of shard {Shard} while a cross-shard transfer was in flight; retry with the same ids");
        }
    }

    private void ExecuteDriverActions()
    {
        while (driverActions.TryPeek(out var action))
        {
            if (action is ProposeAction && driverTerm != 0 && !timestampsReady)
            {
                return; // Proposals wait until timestamps can continue from the ledger's.
            }

            driverActions.Dequeue();
            switch (action)
            {
                case ProposeAction propose:
                    ProposeForDriver(propose);
                    break;
                case SendAction send:
                    ShardMessageOut?.Invoke(Shard, send.ToShard, send.Message);
                    break;
                case CompleteAction complete:
                    if (submissions.Remove(complete.RequestToken, out var done))
                    {
                        done.Split.CrossDone(done.Positions, complete.Results, complete.Timestamps);
                    }

                    break;
                case FailAction fail:
                    if (submissions.Remove(fail.RequestToken, out var failed))
                    {
                        failed.Split.CrossFailed(fail.OutcomeUnknown, fail.Detail, Raft.Leader);
                    }

                    break;
            }
        }
    }

    private void ProposeForDriver(ProposeAction propose)
    {
        if (driverTerm == 0)
        {
            driver!.OnProposalFailed(propose.Token);
            TakeDriverActions();
            return;
        }

        var command = propose.Command;
        var count = LedgerCommand.TimestampCount(command);
        var timestamp = Math.Max(ClusterTimeNs(), lastProposedTimestamp + (ulong)count);
        LedgerCommand.SetBatchTimestamp(command, timestamp);
        var result = Raft.Propose(command);
        if (!result.IsAccepted)
        {
            driver!.OnProposalFailed(propose.Token);
            TakeDriverActions();
            return;
        }

        Invariant.Check(result.FirstIndex == result.LastIndex);
        lastProposedTimestamp = timestamp;
        driverProposals.Add(result.FirstIndex, (result.Term, propose.Token));
    }

    /// <summary>Called for every applied entry: tells the driver when it was one of its proposals.</summary>
    private void OnEntryApplied(in Entry entry, ReadOnlySpan<byte> results)
    {
        if (driver is null || !driverProposals.Remove(entry.Index, out var mine))
        {
            return;
        }

        if (mine.Term == entry.Term && entry.Type == EntryType.Normal && entry.Data.Length > 0)
        {
            driver.OnProposalApplied(mine.Token, results);
        }
        else
        {
            driver.OnProposalFailed(mine.Token);
        }

        TakeDriverActions();
    }

    /// <summary>Splits each waiting create_transfers request into its fast part (queued as today) and its cross-shard part.</summary>
    private void ClassifyQueued()
    {
        while (unclassified.TryDequeue(out var request))
        {
            var transfers = ShardPayload.DecodeTransfers(request.Payload.Span);
            var cross = new bool[transfers.Length];
            driver!.Classify(transfers, cross);
            if (Array.IndexOf(cross, true) < 0)
            {
                writes.Enqueue(request);
                continue;
            }

            if (!request.TryMarkProposed())
            {
                continue; // The caller gave up before anything was done: it was told nothing was applied.
            }

            Submit(request, transfers, cross);
        }
    }

    private void Submit(ShardRequest request, Transfer[] transfers, bool[] cross)
    {
        var split = new SplitRequest(request);
        var fast = new List<int>();
        for (var i = 0; i < cross.Length; i++)
        {
            if (!cross[i])
            {
                fast.Add(i);
            }
        }

        var chunks = CrossShardChunks(transfers, cross);
        split.Expect(fast.Count > 0 ? chunks.Count + 1 : chunks.Count);
        if (fast.Count > 0)
        {
            var part = new Transfer[fast.Count];
            for (var j = 0; j < part.Length; j++)
            {
                part[j] = transfers[fast[j]];
            }

            var child = new ShardRequest(Shard, ShardRequestKind.CreateTransfers, ShardPayload.EncodeTransfers(part));
            var positions = fast.ToArray();
            _ = child.Done.Task.ContinueWith(t => split.FastDone(positions, t.Result), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            writes.Enqueue(child);
        }

        foreach (var positions in chunks)
        {
            var part = new Transfer[positions.Length];
            for (var j = 0; j < part.Length; j++)
            {
                part[j] = transfers[positions[j]];
            }

            var token = ++nextToken;
            submissions.Add(token, (split, positions));
            driver!.Submit(token, part);
            TakeDriverActions();
        }
    }

    /// <summary>The cross-shard events grouped into submissions of whole chains, at most TransactionEventsMax events each (a longer chain alone).</summary>
    internal static List<int[]> CrossShardChunks(Transfer[] transfers, bool[] cross)
    {
        var chunks = new List<int[]>();
        var current = new List<int>();
        var chain = new List<int>();
        for (var i = 0; i < transfers.Length; i++)
        {
            if (!cross[i])
            {
                continue;
            }

            chain.Add(i);
            if ((transfers[i].Flags & TransferFlags.Linked) != 0 && i < transfers.Length - 1)
            {
                continue;
            }

            if (current.Count > 0 && current.Count + chain.Count > CrossShardLimits.TransactionEventsMax)
            {
                chunks.Add([.. current]);
                current.Clear();
            }

            current.AddRange(chain);
            chain.Clear();
        }

        if (current.Count > 0)
        {
            chunks.Add([.. current]);
        }

        return chunks;
    }

    private void FailUnclassified(ShardCallResult result)
    {
        while (unclassified.TryDequeue(out var request))
        {
            request.Complete(result);
        }
    }

    private void FailSubmissions(bool outcomeUnknown, string detail)
    {
        foreach (var (split, _) in submissions.Values)
        {
            split.CrossFailed(outcomeUnknown, detail, Raft.Leader);
        }

        submissions.Clear();
    }
}
