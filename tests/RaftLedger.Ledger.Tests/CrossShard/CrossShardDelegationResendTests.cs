using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// A post/void delegated by its id's home h to its pending transfer's home p, and sent there more than once: p remembers
/// answers per leader, so a later send may be answered by a run that saw an earlier send's effects. Unless the
/// answering leader received every send, the client then gets outcome unknown (504) for anything but created, and its
/// retry (a first send again) gets the definite answer.
/// Three shards: the accounts on 0 and 1, the pending transfer on 2, the post/void ids on 0 (h = 0, p = 2).
/// </summary>
public sealed class CrossShardDelegationResendTests
{
    private const int Home = 0;
    private const int PendingHome = 2;

    private static (CrossShardCluster Cluster, Transfer Pending) PendingOnThirdShard(int seed)
    {
        var cluster = new CrossShardCluster(3, seed, CrossShardWorkload.Options);
        var a = CrossShardWorkload.IdWithHome(cluster, 0);
        var b = CrossShardWorkload.IdWithHome(cluster, 1);
        cluster.CreateAccounts(LedgerFixture.NewAccount(a), LedgerFixture.NewAccount(b));
        cluster.Step(); // Hosts tick the drivers (cluster time) before submitting.
        var pending = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, PendingHome), a, b, 70, TransferFlags.Pending);
        Assert.Equal([CreateTransferResult.Created], cluster.RunRequest([pending]));
        return (cluster, pending);
    }

    private static Transfer PostOrVoid(CrossShardCluster cluster, Transfer pending, bool post)
    {
        var id = CrossShardWorkload.IdWithHome(cluster, Home);
        return post ? LedgerFixture.Post(id, pending.Id, 25) : LedgerFixture.Void(id, pending.Id);
    }

    private static void StepUntil(CrossShardCluster cluster, Func<bool> condition, string what)
    {
        for (var steps = 0; !condition(); steps++)
        {
            Assert.True(steps < 2000, $"{what}: {cluster.Describe()}");
            cluster.Step();
        }
    }

    private static void AssertOutcomeUnknown(ClientRequest request)
    {
        Assert.True(request.Done);
        Assert.True(request.OutcomeUnknown, $"answered [{string.Join(", ", request.Results)}], failures [{string.Join("; ", request.Failures)}]");
        Assert.Contains("may have been applied", Assert.Single(request.Failures));
        Assert.False(request.Known[0]);
    }

    private static void AssertDefinite(ClientRequest request, CreateTransferResult expected)
    {
        Assert.True(request.Done);
        Assert.Empty(request.Failures);
        Assert.True(request.Known[0]);
        Assert.Equal(expected, request.Results[0]);
    }

    private static ClientRequest SubmitAndRun(CrossShardCluster cluster, Transfer t)
    {
        var request = cluster.Submit([t]);
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        return request;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_resend_answered_after_the_first_attempt_committed_and_the_pending_transfers_home_changed_leader_is_outcome_unknown(bool post)
    {
        var (cluster, pending) = PendingOnThirdShard(seed: 7);
        var t = PostOrVoid(cluster, pending, post);
        var request = cluster.Submit([t]);

        // The first attempt's Decide applies at p (the pending transfer is resolved); p's leader changes before the
        // transaction finished everywhere, so before it answered h. h resends, and p's new leader answers from state.
        StepUntil(cluster, () => cluster.Shards[PendingHome].Store.GetPendingStatus(pending.Id) != PendingStatus.Pending, "the first attempt commits");
        Assert.False(request.Done);
        cluster.Shards[PendingHome].Crash();
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        AssertOutcomeUnknown(request);

        // Applied once; the client's retry is a first send and learns the outcome.
        Assert.Equal(post ? PendingStatus.Posted : PendingStatus.Voided, cluster.Shards[PendingHome].Store.GetPendingStatus(pending.Id));
        AssertDefinite(SubmitAndRun(cluster, t), CreateTransferResult.Exists);
        var posted = post ? (UInt128)25 : UInt128.Zero;
        Assert.Equal((UInt128.Zero, posted), (cluster.LookupAccount(pending.DebitAccountId).DebitsPending, cluster.LookupAccount(pending.DebitAccountId).DebitsPosted));
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void A_resend_answered_retry_while_the_first_attempt_still_holds_the_id_is_outcome_unknown_not_a_503()
    {
        var (cluster, pending) = PendingOnThirdShard(seed: 11);
        var t = PostOrVoid(cluster, pending, post: true);
        var request = cluster.Submit([t]);

        // The first attempt's Id leg is prepared on h (the id is claimed there); p's leader dies and its proposals with
        // it. The resend runs afresh at p's new leader, finds the id held (IdBusy) and aborts: p answers Retry, which
        // after a resend cannot promise "not applied".
        StepUntil(cluster, () => cluster.Shards[Home].Store.EnumerateSideRecords().Any(r => r.Table == CrossShardTables.Prepared), "the id leg is prepared");
        cluster.Shards[PendingHome].CrashLosingLog();
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        AssertOutcomeUnknown(request);

        // The first attempt was aborted by the participants' query: the retry creates it, once.
        AssertDefinite(SubmitAndRun(cluster, t), CreateTransferResult.Created);
        Assert.Equal(PendingStatus.Posted, cluster.Shards[PendingHome].Store.GetPendingStatus(pending.Id));
        Assert.Equal((UInt128)25, cluster.LookupAccount(pending.DebitAccountId).DebitsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Fact]
    public void After_a_resend_an_answer_stands_when_created_or_when_the_answering_leader_received_every_send()
    {
        var (cluster, pending) = PendingOnThirdShard(seed: 13);

        // The first Delegate is lost and the resend creates the post: created stays definite although p's leader got
        // only one of two sends (a run that commits holds the id's claim on h and re-checks the pending transfer's
        // status in p's log, so no earlier run can have committed too).
        var post = PostOrVoid(cluster, pending, post: true);
        cluster.LoseNext(CrossShardMessageKind.Delegate);
        AssertDefinite(SubmitAndRun(cluster, post), CreateTransferResult.Created);

        // A void answered on its first send keeps TigerBeetle's status; so does one whose answer was lost, answered
        // again from memory by the leader that received both sends (no other leader ran it).
        AssertDefinite(SubmitAndRun(cluster, PostOrVoid(cluster, pending, post: false)), CreateTransferResult.PendingTransferAlreadyPosted);
        cluster.LoseNext(CrossShardMessageKind.Delegated);
        AssertDefinite(SubmitAndRun(cluster, PostOrVoid(cluster, pending, post: false)), CreateTransferResult.PendingTransferAlreadyPosted);

        // A void whose first Delegate was lost: h cannot tell a lost send from one that ran at another leader of p, so
        // the same status is outcome unknown; the retry, a first send again, gets it definite.
        var @void = PostOrVoid(cluster, pending, post: false);
        cluster.LoseNext(CrossShardMessageKind.Delegate);
        AssertOutcomeUnknown(SubmitAndRun(cluster, @void));
        AssertDefinite(SubmitAndRun(cluster, @void), CreateTransferResult.PendingTransferAlreadyPosted);
        Assert.Equal((UInt128)25, cluster.LookupAccount(pending.DebitAccountId).DebitsPosted);
        CrossShardChecks.AssertConsistent(cluster);
    }

    [Theory]
    [InlineData(1, 1, false)] // p's leader received sends 1..1 of 2: the second is on its way, h waits for its answer.
    [InlineData(1, 2, true)] // it received only the second: the first may have run at another leader.
    [InlineData(2, 2, false)] // it received both: the answer stands.
    public void The_ids_home_waits_for_the_answer_to_its_newest_send_when_the_answering_leader_got_every_older_one(int sendsReceived, int latestSend, bool unknown)
    {
        // The id's home h = shard 0 alone, driven by hand: a void of a pending transfer homed on shard 2, sent twice.
        var options = CrossShardWorkload.Options;
        var h = new CrossShardDriver(Home, 3, new LedgerStateMachine(new InMemoryLedgerStore()), options);
        h.OnRoleChanged(true, 1);
        var nowNs = 1_000_000_000_000UL;
        h.Tick(nowNs);
        var pendingId = IdWithHome(3, PendingHome);
        var @void = LedgerFixture.Void(IdWithHome(3, Home), pendingId);
        h.Submit(1, [@void]);
        var sent = Delegates(h);
        h.Tick(nowNs + options.RetryIntervalNs);
        sent.AddRange(Delegates(h));
        Assert.Equal([1, 2], sent.Select(m => m.Sends));

        var answer = new CrossShardMessage(CrossShardMessageKind.Delegated, Home, PendingHome, sent[0].TransactionId)
        {
            Outcome = DelegatedOutcome.Answered,
            Status = CreateTransferResult.PendingTransferAlreadyPosted,
            Sends = sendsReceived,
            LatestSend = latestSend,
        };
        h.OnMessage(PendingHome, answer.Encode());
        var actions = Drain(h);
        if (sendsReceived == latestSend && latestSend < 2)
        {
            Assert.Empty(actions.OfType<CompleteAction>().Concat<CrossShardAction>(actions.OfType<FailAction>()));
            h.OnMessage(PendingHome, (answer with { Sends = 2, LatestSend = 2 }).Encode()); // The newest send's answer, from memory.
            actions = Drain(h);
        }

        if (unknown)
        {
            var fail = Assert.IsType<FailAction>(Assert.Single(actions, a => a is FailAction or CompleteAction));
            Assert.True(fail.OutcomeUnknown, fail.Detail);
        }
        else
        {
            var complete = Assert.IsType<CompleteAction>(Assert.Single(actions, a => a is FailAction or CompleteAction));
            Assert.Equal([CreateTransferResult.PendingTransferAlreadyPosted], complete.Results);
        }
    }

    private static UInt128 IdWithHome(int shardCount, int shard)
    {
        for (UInt128 id = 1_000; ; id++)
        {
            if (RaftLedger.Common.Placement.ShardRouter.ShardOf(id, shardCount) == shard)
            {
                return id;
            }
        }
    }

    private static List<CrossShardAction> Drain(CrossShardDriver driver)
    {
        var actions = new List<CrossShardAction>();
        while (driver.TryTakeAction(out var action))
        {
            actions.Add(action);
        }

        return actions;
    }

    private static List<CrossShardMessage> Delegates(CrossShardDriver driver)
    {
        var delegates = new List<CrossShardMessage>();
        foreach (var send in Drain(driver).OfType<SendAction>())
        {
            Assert.True(CrossShardMessage.TryDecode(send.Message, out var decoded));
            delegates.Add(decoded);
        }

        return delegates.FindAll(m => m.Kind == CrossShardMessageKind.Delegate);
    }
}
