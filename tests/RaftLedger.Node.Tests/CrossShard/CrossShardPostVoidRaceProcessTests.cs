using System.Net;
using RaftLedger.Cli.Demo;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Node.Tests.Cluster;

namespace RaftLedger.Node.Tests.CrossShard;

/// <summary>
/// A post and a void of the same cross-shard pending transfer, sent at the same moment through two different nodes'
/// REST API of real node processes (3 nodes, 8 shards), for 20 pending transfers at once: the pending transfer's home
/// decides in log order, so exactly one of each pair is created and the other gets TigerBeetle's status for the loser;
/// both legs' shards end with the winner's balances and nothing pending; every answer is idempotent on retry. Some
/// racers are the first event of a linked chain (coordinated away from the pending transfer's home: status legs).
/// The race starts once leaders are settled; a winner answers exists only on a retry after a 503/504 (nodes do not retry
/// an outcome-unknown write themselves, and a delegated racer sent again to its pending transfer's home answers 504
/// unless it is created or one leader there received every send), so a first answer of exists is never the racer's own
/// attempt.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CrossShardPostVoidRaceProcessTests
{
    private const int TestTimeoutMilliseconds = 240_000;
    private const int Shards = 8;
    private const int Pairs = 20;
    private const int Seed = 61;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>
    /// One race: <see cref="Pending"/>, and a post and a void of it (each a single event, or the first event of a linked
    /// chain with a payment after it), sent through two different nodes; <see cref="Posted"/> is what the post moves.
    /// </summary>
    private sealed record Race(Transfer Pending, Transfer[] Post, Transfer[] Void, ulong PostNode, ulong VoidNode, ulong Posted);

    /// <summary>A create answer, and whether it came from a retry after a 503/504 (then a winner may answer exists).</summary>
    private readonly record struct Answer(string[] Statuses, bool Retried);

    private static UInt128 IdOn(int shard, ulong start) => CrossShardProcessTests.IdOnShard(shard, start, Shards);

    /// <summary>
    /// Seeded races: debit and credit accounts on two shards; the pending transfer homed on a third shard, the debit's or
    /// the credit's; the post and void ids homed anywhere (delegated when not the pending transfer's home); the post full
    /// (amount 0 or the pending amount) or partial; every fifth race has one racer lead a linked chain.
    /// </summary>
    private static Race[] Plan(DemoAccounts accounts, Random random)
    {
        var races = new Race[Pairs];
        for (var i = 0; i < Pairs; i++)
        {
            var debitShard = random.Next(Shards);
            var creditShard = (debitShard + 1 + random.Next(Shards - 1)) % Shards;
            var thirdShard = Enumerable.Range(0, Shards).Where(s => s != debitShard && s != creditShard).ElementAt(random.Next(Shards - 2));
            var home = (i % 3) switch { 0 => thirdShard, 1 => debitShard, _ => creditShard };
            var debit = accounts.Customers[debitShard][random.Next(3)];
            var credit = accounts.Customers[creditShard][random.Next(3)];
            var amount = (ulong)random.Next(10, 100);
            var start = 100_000 + ((ulong)i * 1_000);
            var pending = CrossShardProcessTests.Pay(IdOn(home, start), debit, credit, amount, TransferFlags.Pending);

            var (postAmount, posted) = (i / 3 % 3) switch { 0 => (0UL, amount), 1 => (amount, amount), _ => (amount / 2, amount / 2) };
            Transfer[] post = [new() { Id = IdOn(random.Next(Shards), start + 300), PendingId = pending.Id, Amount = postAmount, Flags = TransferFlags.PostPendingTransfer }];
            Transfer[] @void = [new() { Id = IdOn(random.Next(Shards), start + 600), PendingId = pending.Id, Flags = TransferFlags.VoidPendingTransfer }];
            if (i % 5 == 4)
            {
                // A chain led by the racer, its id homed off the pending transfer's home, with a payment across shards.
                var chained = i % 10 == 4 ? post : @void;
                var coordinator = (home + 1 + random.Next(Shards - 1)) % Shards;
                var leader = chained[0] with { Id = IdOn(coordinator, start + 900), Flags = chained[0].Flags | TransferFlags.Linked };
                var (from, to) = (accounts.Customers[creditShard][random.Next(3)], accounts.Customers[debitShard][random.Next(3)]);
                var payment = CrossShardProcessTests.Pay(IdOn(random.Next(Shards), start + 950), from, to, (ulong)random.Next(1, 10));
                Transfer[] chain = [leader, payment];
                (post, @void) = i % 10 == 4 ? (chain, @void) : (post, chain);
            }

            races[i] = new Race(pending, post, @void, PostNode: 1 + ((ulong)i % 3), VoidNode: 1 + (((ulong)i + 1) % 3), posted);
        }

        return races;
    }

    /// <summary>
    /// Sends <paramref name="request"/> to <paramref name="node"/> once the gate opens. A 503/504 (an id busy, a leader
    /// moved: this machine is shared) is retried by the harness with the same ids; any other refusal fails the test.
    /// </summary>
    private static async Task<Answer> SendAsync(ClusterHarness harness, Transfer[] request, ulong node, Task gate)
    {
        await gate;
        try
        {
            var answer = await harness.Client.CreateTransfersAsync(harness.Api(node), request, Cancel);
            if (answer.IsOk)
            {
                return new Answer([.. answer.Value!.Select(r => r.Status)], Retried: false);
            }

            Assert.True(answer.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout,
                $"answered {(int)answer.StatusCode}: {answer.Problem}. {harness.LogHint}");
        }
        catch (HttpRequestException)
        {
        }
        catch (TaskCanceledException) when (!Cancel.IsCancellationRequested)
        {
        }

        return new Answer([.. (await harness.CreateTransfersAsync(request, [node])).Select(r => r.Status)], Retried: true);
    }

    /// <summary>Where a race's transfers live and which nodes got them, for failure messages.</summary>
    private static string Describe(Race race)
    {
        static string On(Transfer[] request) => string.Join(" + ", request.Select(t => $"{t.Id} (shard {ShardRouter.ShardOf(t.Id, Shards)})"));
        var pending = race.Pending;
        return $"pending {pending.Id} (shard {ShardRouter.ShardOf(pending.Id, Shards)}; debit shard {ShardRouter.ShardOf(pending.DebitAccountId, Shards)}, " +
            $"credit shard {ShardRouter.ShardOf(pending.CreditAccountId, Shards)}), post {On(race.Post)} via node {race.PostNode}, void {On(race.Void)} via node {race.VoidNode}";
    }

    private static string[] Created(Transfer[] request) => [.. request.Select(_ => "created")];

    private static string[] Failed(Transfer[] request, string status) => [status, .. request.Skip(1).Select(_ => "linked_event_failed")];

    [Fact(Timeout = TestTimeoutMilliseconds)]
    public async Task A_post_and_a_void_racing_for_one_pending_transfer_across_shards_resolve_it_exactly_once()
    {
        await using var harness = await ClusterHarness.StartAsync(Shards);
        var accounts = ClusterHarness.Accounts(Seed, Shards);
        await CrossShardProcessTests.FundAsync(harness, accounts);
        var races = Plan(accounts, new Random(Seed));
        UInt128[] all = [.. accounts.All];
        var before = await CrossShardProcessTests.QuietAccountsAsync(harness, all);

        // Split by home; a part that failed is retried whole, and what the first attempt created answers exists (accepted
        // only after an attempt that may have applied).
        await harness.AssertAllCreatedAsync([.. races.Select(r => r.Pending)], [1, 2, 3]);
        var reserved = await CrossShardTwoPhaseProcessTests.LookupAsync(harness, all);
        foreach (var id in all)
        {
            Assert.Equal(Sum(races, r => r.Pending.DebitAccountId == id, r => r.Pending.Amount), reserved[id].DebitsPending);
            Assert.Equal(Sum(races, r => r.Pending.CreditAccountId == id, r => r.Pending.Amount), reserved[id].CreditsPending);
        }

        // Every post and void is sent at once, each pair through two different nodes, once no leadership move is due.
        await harness.LeadersSettledAsync();
        var termsBefore = await TermsAsync(harness);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var posts = races.Select(r => Task.Run(() => SendAsync(harness, r.Post, r.PostNode, gate.Task))).ToArray();
        var voids = races.Select(r => Task.Run(() => SendAsync(harness, r.Void, r.VoidNode, gate.Task))).ToArray();
        gate.SetResult();
        var postAnswers = await Task.WhenAll(posts);
        var voidAnswers = await Task.WhenAll(voids);
        var termsAfter = await TermsAsync(harness);
        var movedShards = termsAfter.Where(t => t.Value != termsBefore.GetValueOrDefault(t.Key)).Select(t => (int)t.Key).ToHashSet();

        var postWon = await CheckAnswersAsync(harness, races, postAnswers, voidAnswers, movedShards);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"seed {Seed}: the post won {postWon.Count(w => w)} of {Pairs} races; {postAnswers.Concat(voidAnswers).Count(a => a.Retried)} answers came after a 503/504 retry; " +
            $"shards with a new leader during the race: [{string.Join(", ", movedShards.Order())}]");
        await CheckBalancesAsync(harness, races, postWon, all, before);
        await CheckRetriesAsync(harness, races, postWon);
    }

    /// <summary>
    /// Exactly one racer of each pair is stored, its answer is created (exists only after a retry of an answer lost to a
    /// 503/504), and the other racer's answer is TigerBeetle's status for a pending transfer the winner resolved.
    /// </summary>
    private static async Task<bool[]> CheckAnswersAsync(ClusterHarness harness, Race[] races, Answer[] postAnswers, Answer[] voidAnswers, HashSet<int> movedShards)
    {
        UInt128[] ids = [.. races.SelectMany(r => r.Post.Concat(r.Void)).Select(t => t.Id)];
        var stored = (await harness.AnsweredAsync(() => harness.Client.LookupTransfersAsync(harness.Api(3), ids, Cancel))).ToDictionary(t => t.Id);
        var postWon = new bool[races.Length];
        for (var i = 0; i < races.Length; i++)
        {
            var (race, post, @void) = (races[i], postAnswers[i], voidAnswers[i]);
            var context = $"seed {Seed}, race {i} ({Describe(race)}): post [{string.Join(", ", post.Statuses)}], void [{string.Join(", ", @void.Statuses)}]. {harness.LogHint}";
            var (postStored, voidStored) = (race.Post.All(t => stored.ContainsKey(t.Id)), race.Void.All(t => stored.ContainsKey(t.Id)));
            Assert.True(postStored != voidStored, $"exactly one racer stored (post {postStored}, void {voidStored}); {context}");
            Assert.True(race.Post.Concat(race.Void).Count(t => stored.ContainsKey(t.Id)) == (postStored ? race.Post : race.Void).Length, $"the loser stored nothing; {context}");
            postWon[i] = postStored;

            var (winner, winnerRequest, loser, loserRequest) = postStored ? (post, race.Post, @void, race.Void) : (@void, race.Void, post, race.Post);
            var winnerExpected = winner.Statuses[0] == "exists" && winner.Retried ? Failed(winnerRequest, "exists") : Created(winnerRequest);
            Assert.True(winnerExpected.SequenceEqual(winner.Statuses), $"winner (shards with a new leader meanwhile: [{string.Join(", ", movedShards.Order())}]); {context}");
            var loserStatus = postStored ? "pending_transfer_already_posted" : "pending_transfer_already_voided";
            Assert.True(Failed(loserRequest, loserStatus).SequenceEqual(loser.Statuses), $"loser; {context}");

            // The winner is stored resolved: the pending transfer's accounts, and for a post the amount posted.
            var record = stored[winnerRequest[0].Id];
            Assert.Equal((race.Pending.DebitAccountId, race.Pending.CreditAccountId), (record.DebitAccountId, record.CreditAccountId));
            Assert.True(!postStored || record.Amount == race.Posted, $"posted {record.Amount}, expected {race.Posted}; {context}");
        }

        return postWon;
    }

    /// <summary>Each shard's highest term any replica reports: a shard whose term grew had a new leader meanwhile.</summary>
    private static async Task<Dictionary<uint, ulong>> TermsAsync(ClusterHarness harness) =>
        (await harness.Probe.ReplicasAsync(harness.Nodes, Cancel)).GroupBy(v => v.Replica.ShardId).ToDictionary(g => g.Key, g => g.Max(v => v.Replica.Term));

    /// <summary>
    /// Once every leg is finished (nothing pending anywhere), each account moved exactly its winners' amounts, on its own
    /// shard; each leg's account lists the winner and not the loser.
    /// </summary>
    private static async Task CheckBalancesAsync(ClusterHarness harness, Race[] races, bool[] postWon, UInt128[] all, Dictionary<UInt128, Account> before)
    {
        var moved = new List<Transfer>();
        for (var i = 0; i < races.Length; i++)
        {
            var winner = postWon[i] ? races[i].Post : races[i].Void;
            if (postWon[i])
            {
                moved.Add(races[i].Pending with { Amount = races[i].Posted });
            }

            moved.AddRange(winner.Skip(1));
        }

        var after = await CrossShardProcessTests.QuietAccountsAsync(harness, all);
        foreach (var id in all)
        {
            var expected = (before[id].DebitsPosted + Sum(moved, t => t.DebitAccountId == id, t => t.Amount), before[id].CreditsPosted + Sum(moved, t => t.CreditAccountId == id, t => t.Amount));
            Assert.True(expected == (after[id].DebitsPosted, after[id].CreditsPosted), $"seed {Seed}, account {id}: posted {(after[id].DebitsPosted, after[id].CreditsPosted)}, expected {expected}. {harness.LogHint}");
            Assert.Equal((UInt128.Zero, UInt128.Zero), (after[id].DebitsPending, after[id].CreditsPending));
        }

        var listed = new Dictionary<UInt128, HashSet<UInt128>>();
        foreach (var id in races.SelectMany(r => new[] { r.Pending.DebitAccountId, r.Pending.CreditAccountId }).Distinct())
        {
            listed[id] = [.. (await CrossShardProcessTests.AccountTransfersAsync(harness, id)).Select(t => t.Id)];
        }

        for (var i = 0; i < races.Length; i++)
        {
            var (winner, loser) = postWon[i] ? (races[i].Post[0], races[i].Void[0]) : (races[i].Void[0], races[i].Post[0]);
            foreach (var leg in new[] { races[i].Pending.DebitAccountId, races[i].Pending.CreditAccountId })
            {
                Assert.True(listed[leg].Contains(winner.Id) && !listed[leg].Contains(loser.Id), $"seed {Seed}, race {i}: account {leg} lists the winner only. {harness.LogHint}");
            }
        }
    }

    /// <summary>A retry of each racer with the same ids, through the third node, gets the idempotent answer.</summary>
    private static async Task CheckRetriesAsync(ClusterHarness harness, Race[] races, bool[] postWon)
    {
        for (var i = 0; i < races.Length; i++)
        {
            var (winner, loser) = postWon[i] ? (races[i].Post, races[i].Void) : (races[i].Void, races[i].Post);
            var third = 6 - races[i].PostNode - races[i].VoidNode;
            var loserStatus = postWon[i] ? "pending_transfer_already_posted" : "pending_transfer_already_voided";
            await harness.AssertCreatesAsync(winner, [third], Failed(winner, "exists"));
            await harness.AssertCreatesAsync(loser, [third], Failed(loser, loserStatus));
        }
    }

    private static UInt128 Sum<T>(IEnumerable<T> items, Func<T, bool> where, Func<T, UInt128> amount) =>
        items.Where(where).Aggregate(UInt128.Zero, (total, item) => total + amount(item));
}
