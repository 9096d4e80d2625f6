using Microsoft.Extensions.Logging;
using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// Hosting the shard's <see cref="CrossShardDriver"/>: create_transfers requests are classified when the leader
/// takes them; events the driver marks cross-shard are submitted to it in one submission per request, the rest
/// take the coalesced fast path; the two halves' results are put back together in input order
/// (<see cref="SplitRequest"/>). The driver's actions are taken once per round, after every input of the round
/// reached it (so the items of many messages share one proposal), and executed in order.
/// </summary>
internal sealed partial class ShardReplica
{
    private readonly Queue<ShardRequest> unclassified = new();

    // Requests that touch an account an inherited leg fences, and the driver's count of fencing transactions when they were
    // put here: they are classified again once that count changed.
    private readonly List<ShardRequest> fencedWrites = [];
    private long fenceReleasesWhenHeld;
    private readonly Queue<CrossShardAction> driverActions = new();

    // Open submissions by token, and the driver's proposals by log index (term, token) until applied or replaced.
    private readonly Dictionary<long, (SplitRequest Split, int[] Positions)> submissions = [];
    private readonly Dictionary<ulong, (ulong Term, long Token)> driverProposals = [];
    private CrossShardDriver? driver;

    // CrossShardUnfinished's ledger part as counted at applied index unfinishedCountedAt and time unfinishedCountedMs
    // (-1: not counted yet).
    private int unfinishedCounted = -1;
    private ulong unfinishedCountedAt;
    private long unfinishedCountedMs;
    private long nextToken;

    // Set when the driver was called outside the round start: its actions must be taken in another round.
    private bool driverTouched;

    // The last cross-shard Finish this replica proposed as leader and its term: a read that starts later waits until
    // that index is applied (the driver may have told a coordinator it took that Finish, which lets it answer its client).
    private ulong lastFinishIndex;
    private ulong lastFinishTerm;

    // The term the driver was told it leads in (0 = it was told it is not leader).
    // Invariant: driverTerm is 0 or == leaderTerm, and then timestampsReady (every earlier entry is applied).
    private ulong driverTerm;

    /// <summary>How long a nonzero <see cref="CrossShardUnfinished"/> count is served before the side table is scanned again.</summary>
    public const long UnfinishedRecountMs = 5000;

    /// <summary>Where the driver's actions are traced (debug level). Set by the host.</summary>
    public ILogger? CrossShardLog { get; set; }

    /// <summary>Sends a driver's message: (from shard, to shard, bytes). Set by the host.</summary>
    public Action<int, int, byte[]>? ShardMessageOut { get; set; }

    /// <summary>True while driver actions wait to be executed: the scheduler must run another round.</summary>
    public bool HasCrossShardWork => driverTouched || driverActions.Count > 0 || (unclassified.Count > 0 && driverTerm != 0) || driver?.HasDueProposals == true;

    /// <summary>
    /// Cross-shard transactions this replica still holds unfinished: coordinator records and prepared legs in its
    /// committed ledger (any replica), plus, on the leader, the transactions its driver coordinates. Reads the side
    /// table (one pass); scheduler thread.
    /// </summary>
    public int CrossShardUnfinished
    {
        get
        {
            if (driver is null)
            {
                return 0;
            }

            // Every status query asks for it (each client's cluster-map refresh, about once a second per node), and a
            // count scans the side table, whose deleted records RocksDB iterators walk over: 8-11 % of the nodes' CPU
            // at 100 % cross-shard. So it is counted again only once something new was applied, and while it is not
            // zero at most every UnfinishedRecountMs: a stale nonzero count only makes a waiter (verify, after its
            // clients stopped) look again a little later; a zero is never served stale.
            var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
            if (unfinishedCounted < 0 || (unfinishedCountedAt != applied && (unfinishedCounted == 0 || nowMs - unfinishedCountedMs >= UnfinishedRecountMs)))
            {
                unfinishedCounted = Ledger.CrossShardUnfinishedCount();
                unfinishedCountedAt = applied;
                unfinishedCountedMs = nowMs;
            }

            return unfinishedCounted + (driverTerm != 0 ? driver.CoordinatorTransactionCount : 0);
        }
    }

    /// <summary>The driver's figures for the published view (scheduler thread only; zero without a driver).</summary>
    public CrossShardView CrossShardFigures => driver is null
        ? default
        : new CrossShardView(driver.CoordinatorTransactionCount, driver.PreparedTransactionCount, driver.ExpiriesTracked, driver.ExpiriesStarted);

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
            driverTouched = true;
        }
    }

    /// <summary>A message from another shard's leader; false (dropped) when this replica does not lead its shard.</summary>
    public bool OnShardMessage(int fromShard, ReadOnlySpan<byte> message)
    {
        if (driver is null || driverTerm == 0)
        {
            return false;
        }

        CrossShardLog?.LogDebug("shard {Shard}: message from shard {From} kind {Kind} ({Bytes} bytes)", Shard, fromShard, message.Length > 1 ? message[1] : 0, message.Length);
        driver.OnMessage(fromShard, message);
        driverTouched = true;
        return true;
    }

    private void TakeDriverActions()
    {
        driverTouched = false;
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
            DropStaleActions();
            driverTouched = true;
            // The driver's proposals may still commit under the next leader, which resumes from the ledger.
            driverProposals.Clear();
            FailUnclassified(ShardCallResult.Fail(ShardCallStatus.NotLeader, $"node {Raft.Id} lost the leadership of shard {Shard}", Raft.Leader));
        }

        if (driverTerm == 0 && leaderTerm != 0 && timestampsReady)
        {
            driverTerm = leaderTerm;
            driver.OnRoleChanged(true, leaderTerm);
            DropStaleActions();
            driverTouched = true;
        }
    }

    /// <summary>The driver voided its proposals and messages when its role changed: so are the ones not executed yet.</summary>
    private void DropStaleActions()
    {
        var count = driverActions.Count;
        for (var i = 0; i < count; i++)
        {
            var action = driverActions.Dequeue();
            if (action is CompleteAction or FailAction)
            {
                driverActions.Enqueue(action);
            }
        }
    }

    /// <summary>Runs at the start of each round: role changes, new requests, then the driver's actions in order.</summary>
    private void RunCrossShard()
    {
        if (driver is null)
        {
            return;
        }

        ObserveDriverRole();
        if (driverTerm != 0)
        {
            ClassifyQueued();
        }

        if (writes.Count > 0 && driverTerm != 0)
        {
            driver.OnHostProposing(); // Lingering Finish and Retire proposals share this round's fsync with the writes.
        }

        TakeDriverActions();
        ExecuteDriverActions();
        if (driverTouched)
        {
            // Accepted Finish proposals produced FinishTaken messages: send them in this round, not after its fsync, since
            // the coordinator answers its client on them (a second pass only; more work waits for the next round).
            TakeDriverActions();
            ExecuteDriverActions();
        }

        RequeueUnfencedReads();
        CompleteReadsUpTo(applied); // Reads held for the driver's office or a fence.

        if (driverTerm == 0 && submissions.Count > 0 && driverActions.Count == 0)
        {
            // The driver stopped leading without answering some requests: their outcome is decided without us.
            FailSubmissions(true, $"node {Raft.Id} lost the leadership of shard {Shard} while a cross-shard transfer was in flight; retry with the same ids");
        }
    }

    private void ExecuteDriverActions()
    {
        while (driverActions.TryDequeue(out var action))
        {
            if (CrossShardLog?.IsEnabled(LogLevel.Debug) == true)
            {
                CrossShardLog.LogDebug("shard {Shard} term {Term}: driver action {Action}", Shard, driverTerm, Describe(action));
            }

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

    private static string Describe(CrossShardAction action) => action switch
    {
        ProposeAction p => $"propose token {p.Token} op {p.Command[1]} ({p.Command.Length} bytes)",
        SendAction s => $"send to shard {s.ToShard} kind {(s.Message.Length > 1 ? s.Message[1] : 0)} ({s.Message.Length} bytes)",
        CompleteAction c => $"complete request {c.RequestToken}: {string.Join(",", c.Results)}",
        FailAction f => $"fail request {f.RequestToken} (unknown {f.OutcomeUnknown}): {f.Detail}",
        _ => action.ToString(),
    };

    private void ProposeForDriver(ProposeAction propose)
    {
        if (driverTerm == 0 || !timestampsReady)
        {
            driver!.OnProposalFailed(propose.Token);
            driverTouched = true;
            return;
        }

        var command = propose.Command;
        if ((LedgerOperation)command[1] == LedgerOperation.CrossShardPrepare && !ProposeClassifiedWritesFirst())
        {
            driver!.OnProposalFailed(propose.Token);
            driverTouched = true;
            return;
        }

        var count = LedgerCommand.TimestampCount(command);
        var timestamp = Math.Max(ClusterTimeNs(), lastProposedTimestamp + (ulong)count);
        LedgerCommand.SetBatchTimestamp(command, timestamp);
        var result = Raft.Propose(command);
        if (!result.IsAccepted)
        {
            driver!.OnProposalFailed(propose.Token);
            driverTouched = true;
            return;
        }

        Invariant.Check(result.FirstIndex == result.LastIndex);
        lastProposedTimestamp = timestamp;
        driverProposals.Add(result.FirstIndex, (result.Term, propose.Token));
        if ((LedgerOperation)command[1] == LedgerOperation.CrossShardFinish)
        {
            // Only a Finish has something to say once accepted (FinishTaken), so only it asks for a second pass.
            lastFinishIndex = result.FirstIndex;
            lastFinishTerm = result.Term;
            driver!.OnProposalAccepted(propose.Token);
            driverTouched = true;
        }
    }

    /// <summary>
    /// Proposes the fast-path writes already classified before a Prepare: a Prepare may claim an event id
    /// homed here, and a fast-path event with that id classified before the claim must come first in the
    /// log (the Prepare then finds it and refuses), never after (it would be created while claimed).
    /// False when they could not all be proposed (the Prepare waits for the coordinator's resend).
    /// </summary>
    private bool ProposeClassifiedWritesFirst()
    {
        while (writes.Count > 0)
        {
            var before = writes.Count;
            ProposeQueuedWrites();
            if (writes.Count == before)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Called for every applied entry: tells the driver when it was one of its proposals.</summary>
    private void OnEntryApplied(in Entry entry, ReadOnlySpan<byte> results)
    {
        if (driver is null || !driverProposals.Remove(entry.Index, out var mine))
        {
            return;
        }

        CrossShardLog?.LogDebug("shard {Shard}: driver proposal token {Token} at index {Index} (term {Term}, entry term {EntryTerm}) applied with {Bytes} result bytes",
            Shard, mine.Token, entry.Index, mine.Term, entry.Term, results.Length);
        if (mine.Term == entry.Term && entry.Type == EntryType.Normal && entry.Data.Length > 0)
        {
            driver.OnProposalApplied(mine.Token, results);
        }
        else
        {
            driver.OnProposalFailed(mine.Token);
        }

        driverTouched = true;
    }

    /// <summary>Splits each waiting create_transfers request into its fast part (queued as today) and its cross-shard part.</summary>
    private void ClassifyQueued()
    {
        if (fencedWrites.Count > 0 && driver!.FenceReleases != fenceReleasesWhenHeld)
        {
            fencedWrites.ForEach(unclassified.Enqueue);
            fencedWrites.Clear();
        }

        while (unclassified.TryDequeue(out var request))
        {
            var transfers = ShardPayload.DecodeTransfers(request.Payload.Span);
            if (driver!.MustWait(transfers))
            {
                // A fenced leg touches one of its accounts: its transfer may have been answered, so this request must
                // be ordered after the leg's Finish.
                fenceReleasesWhenHeld = driver.FenceReleases;
                fencedWrites.Add(request);
                continue;
            }

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
        var (fast, crossing) = Partition(cross);
        split.Expect(fast.Count > 0 ? 2 : 1);
        if (fast.Count > 0)
        {
            var child = new ShardRequest(Shard, ShardRequestKind.CreateTransfers, ShardPayload.EncodeTransfers(Pick(transfers, fast)));
            var positions = fast.ToArray();
            _ = child.Done.Task.ContinueWith(t => split.FastDone(positions, t.Result), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            writes.Enqueue(child);
        }

        SubmitToDriver(split, transfers, crossing);
    }

    private void SubmitToDriver(SplitRequest split, Transfer[] transfers, List<int> crossing)
    {
        var token = ++nextToken;
        submissions.Add(token, (split, crossing.ToArray()));
        driver!.Submit(token, Pick(transfers, crossing));
    }

    /// <summary>
    /// Answers a fast-path write, unless the ledger refused one of its chains with the internal status
    /// needs_cross_shard_path (<see cref="CrossShardDriver.MarkChainsRefusedOnFastPath"/>): those chains go to the
    /// driver now, and the caller gets their results from it and the rest from this write. Apply loop.
    /// </summary>
    private void CompleteWrite(ShardRequest request, byte[] results)
    {
        if (driver is null || request.Kind != ShardRequestKind.CreateTransfers || !AnyRefusedOnFastPath(results))
        {
            request.Complete(ShardCallResult.Ok(results));
            return;
        }

        var transfers = ShardPayload.DecodeTransfers(request.Payload.Span);
        var statuses = new CreateTransferResult[transfers.Length];
        for (var i = 0; i < statuses.Length; i++)
        {
            statuses[i] = (CreateTransferResult)results[i * ShardPayload.WriteResultBytes];
        }

        var reroute = new bool[transfers.Length];
        CrossShardDriver.MarkChainsRefusedOnFastPath(transfers, statuses, reroute);
        if (driverTerm == 0)
        {
            // Only a leader's driver can run them; the retry with the same ids does (the rest answer exists).
            request.Complete(ShardCallResult.Fail(ShardCallStatus.OutcomeUnknown,
                $"shard {Shard} lost its leader while rerouting a post or void of a cross-shard pending transfer; retry with the same ids", Raft.Leader));
            return;
        }

        var split = new SplitRequest(request);
        var (fast, crossing) = Partition(reroute);
        split.Expect(fast.Count > 0 ? 2 : 1);
        if (fast.Count > 0)
        {
            var kept = new byte[fast.Count * ShardPayload.WriteResultBytes];
            for (var j = 0; j < fast.Count; j++)
            {
                results.AsSpan(fast[j] * ShardPayload.WriteResultBytes, ShardPayload.WriteResultBytes).CopyTo(kept.AsSpan(j * ShardPayload.WriteResultBytes));
            }

            split.FastDone([.. fast], ShardCallResult.Ok(kept));
        }

        SubmitToDriver(split, transfers, crossing);
        driverTouched = true;
    }

    private static bool AnyRefusedOnFastPath(byte[] results)
    {
        for (var at = 0; at < results.Length; at += ShardPayload.WriteResultBytes)
        {
            if (results[at] == (byte)CreateTransferResult.NeedsCrossShardPath)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The positions of a request that stay on the fast path and those the driver takes, each in input order.</summary>
    private static (List<int> Fast, List<int> Crossing) Partition(bool[] toDriver)
    {
        var fast = new List<int>();
        var crossing = new List<int>();
        for (var i = 0; i < toDriver.Length; i++)
        {
            (toDriver[i] ? crossing : fast).Add(i);
        }

        return (fast, crossing);
    }

    private static Transfer[] Pick(Transfer[] transfers, List<int> positions)
    {
        var picked = new Transfer[positions.Count];
        for (var j = 0; j < picked.Length; j++)
        {
            picked[j] = transfers[positions[j]];
        }

        return picked;
    }

    private void FailUnclassified(ShardCallResult result)
    {
        fencedWrites.ForEach(r => r.Complete(result));
        fencedWrites.Clear();
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
