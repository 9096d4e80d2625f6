using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>
/// Two-phase events across shards get exactly the statuses, and leave exactly the balances, that the same
/// events get on one ledger holding every account: pending transfers (single and chained, some with a timeout),
/// then posts and voids of them (full, partial, too much, mismatched fields, twice, of unknown transfers, of
/// expired ones), sent to the pending transfer's home or delegated there by another shard, each repeated once
/// with the same ids. Cluster time moves on between rounds, so some pending transfers expire (released on both
/// legs by their home's expiry transaction, as the single ledger releases them at its next batch).
/// </summary>
/// <remarks>
/// Rounds start half a second after an even second, and timeouts are odd seconds: a pending transfer expires
/// between rounds, never while one runs (a round lasts milliseconds), so that both ledgers order every event
/// before or after each expiry alike.
/// </remarks>
public sealed class CrossShardTwoPhaseEquivalenceTests
{
    private const int Cases = 200;

    [Fact]
    public void Two_phase_results_and_balances_across_shards_equal_a_single_ledgers()
    {
        var replay = Environment.GetEnvironmentVariable(CrossShardWorkload.SeedVariable);
        var first = replay is null ? 0 : int.Parse(replay, System.Globalization.CultureInfo.InvariantCulture);
        var count = replay is null ? Cases : 1;
        var seen = new HashSet<CreateTransferResult>();
        var elsewhere = new int[4]; // chain posts/voids of a pending transfer homed off the coordinator, then of one the chain creates: created, failed
        for (var seed = first; seed < first + count; seed++)
        {
            try
            {
                RunCase(seed, seen, elsewhere);
            }
            catch (Exception exception)
            {
                throw new Xunit.Sdk.XunitException(
                    $"two-phase equivalence case {seed} failed: {exception.Message}\nReplay: {CrossShardWorkload.SeedVariable}={seed} dotnet test tests/RaftLedger.Ledger.Tests -c Release --filter \"FullyQualifiedName~CrossShardTwoPhaseEquivalenceTests\"");
            }
        }

        if (replay is null)
        {
            CreateTransferResult[] wanted = [CreateTransferResult.Created, CreateTransferResult.Exists, CreateTransferResult.IdAlreadyFailed,
                CreateTransferResult.ExceedsCredits, CreateTransferResult.OverflowsDebitsPending, CreateTransferResult.DebitAccountAlreadyClosed,
                CreateTransferResult.PendingTransferNotFound, CreateTransferResult.PendingTransferNotPending,
                CreateTransferResult.PendingTransferAlreadyPosted, CreateTransferResult.PendingTransferAlreadyVoided,
                CreateTransferResult.PendingTransferHasDifferentDebitAccountId, CreateTransferResult.PendingTransferHasDifferentLedger,
                CreateTransferResult.PendingTransferHasDifferentCode, CreateTransferResult.ExceedsPendingTransferAmount,
                CreateTransferResult.PendingTransferHasDifferentAmount, CreateTransferResult.LinkedEventFailed,
                CreateTransferResult.PendingTransferExpired];
            Assert.True(elsewhere[0] > 10 && elsewhere[1] > 20, $"chains post or void other shards' pending transfers (created {elsewhere[0]}, failed {elsewhere[1]})");
            Assert.True(elsewhere[2] > 20 && elsewhere[3] > 20, $"chains post or void their own pending transfers (created {elsewhere[2]}, failed {elsewhere[3]})");
            Assert.All(wanted, status => Assert.Contains(status, seen));
        }
    }

    private static void RunCase(int seed, HashSet<CreateTransferResult> seen, int[] elsewhere)
    {
        var cluster = new CrossShardCluster(2, seed, CrossShardWorkload.Options);
        var random = new Random(seed);
        var local = new LedgerFixture();
        var accounts = CrossShardEquivalenceTests.RandomAccounts(cluster, random);
        for (var i = 0; i < accounts.Count; i++)
        {
            // Some accounts start with pending amounts near the maximum (pending overflows).
            var account = accounts[i];
            account.DebitsPending = random.Next(12) == 0 ? UInt128.MaxValue - (UInt128)random.Next(0, 300) : UInt128.Zero;
            account.CreditsPending = random.Next(12) == 0 ? UInt128.MaxValue - (UInt128)random.Next(0, 300) : UInt128.Zero;
            accounts[i] = account;
        }

        for (var shard = 0; shard < 2; shard++)
        {
            // One plain account on each shard, so that pending transfers between them usually pass (PlainPending).
            var i = accounts.FindIndex(a => cluster.ShardOf(a.Id) == shard);
            accounts[i] = accounts[i] with { Flags = AccountFlags.None, Ledger = 1, DebitsPending = UInt128.Zero, CreditsPending = UInt128.Zero };
        }

        CrossShardEquivalenceTests.Install(cluster, local, accounts);
        var pendings = new List<Transfer>();
        var created = new List<Transfer>();
        var all = new List<Transfer>();
        var resolved = new List<UInt128>(); // posted or voided: sometimes resolved again (already_posted / voided)
        var evenSecond = ((cluster.NowNs / (2 * SecondNs)) + 1) * 2 * SecondNs;
        for (var round = 0; round < 14; round++)
        {
            evenSecond += (random.Next(4) == 0 ? 4UL : 2UL) * SecondNs;
            StartRoundAt(cluster, evenSecond + (SecondNs / 2));
            var events = round < 4 && random.Next(2) == 0 ? PlainPending(cluster, random, accounts, pendings)
                : round < 2 || random.Next(4) == 0 ? PendingEvents(cluster, random, accounts, pendings)
                : random.Next(3) == 0 ? ChainWithPostOrVoid(cluster, random, accounts, pendings, created)
                : [PostOrVoid(cluster, random, accounts, created.Count > 0 && random.Next(5) != 0 ? created : pendings, resolved)];
            if (events.Length > 1 && NearOverflow(local, events))
            {
                events = PendingEvents(cluster, random, accounts, pendings);
            }

            var results = Compare(cluster, local, events, seen);
            all.AddRange(events);
            for (var i = 0; i < events.Length; i++)
            {
                if (results[i] == CreateTransferResult.Created && (events[i].Flags & TransferFlags.Pending) != 0)
                {
                    created.Add(events[i]);
                }

                if (results[i] == CreateTransferResult.Created && (events[i].Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0)
                {
                    created.RemoveAll(p => p.Id == events[i].PendingId); // resolved: later ones pick open pending transfers
                    resolved.Add(events[i].PendingId);
                }

                if (events.Length > 1 && (events[i].Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0 &&
                    CrossShardSameChain.PendingIndexOf(events, i) >= 0)
                {
                    elsewhere[results[i] == CreateTransferResult.Created ? 2 : 3]++;
                }
                else if (events.Length > 1 && (events[i].Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) != 0 &&
                    cluster.ShardOf(events[i].PendingId) != cluster.ShardOf(events[0].Id))
                {
                    elsewhere[results[i] == CreateTransferResult.Created ? 0 : 1]++;
                }
            }
        }

        // Whatever is still pending with a timeout expires: the single ledger releases it at its next batch.
        StartRoundAt(cluster, evenSecond + (4 * SecondNs) + (SecondNs / 2));
        local.ClockNanoseconds = Math.Max(local.ClockNanoseconds, cluster.NowNs);
        local.CreateTransfers();
        foreach (var node in cluster.Shards)
        {
            // A local pending transfer (its accounts on its home) expires at its shard's next batch, as on the one ledger.
            node.Ledger.CreateTransfers([], node.NextTimestamp(1), []);
        }

        CrossShardEquivalenceTests.AssertSameState(cluster, local, accounts, all);
        foreach (var t in all)
        {
            // Every pending transfer's status, at its id's home (also those a chain created and resolved itself).
            Assert.Equal(local.Store.GetPendingStatus(t.Id), cluster.Shards[cluster.ShardOf(t.Id)].Store.GetPendingStatus(t.Id));
        }

        CrossShardChecks.AssertNothingUnfinished(cluster); // (accounts start with balances: no sums to check)
    }

    private const ulong SecondNs = LedgerLimits.NanosecondsPerSecond;

    // Cluster time jumps to just before the round (expiries due meanwhile run to the end), then to its start.
    private static void StartRoundAt(CrossShardCluster cluster, ulong startNs)
    {
        Assert.True(cluster.NowNs + (SecondNs / 5) < startNs, "rounds are short");
        cluster.AdvanceNs(startNs - (SecondNs / 10) - cluster.NowNs);
        Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());
        cluster.AdvanceNs(startNs - CrossShardCluster.StepNs - cluster.NowNs);
        cluster.Step();
    }

    // The events, then the same ids again (exists, id_already_failed, already_posted must match too).
    private static CreateTransferResult[] Compare(CrossShardCluster cluster, LedgerFixture local, Transfer[] events, HashSet<CreateTransferResult> seen)
    {
        CreateTransferResult[] first = [];
        for (var repeat = 0; repeat < 2; repeat++)
        {
            local.ClockNanoseconds = Math.Max(local.ClockNanoseconds, cluster.NowNs);
            var expected = local.CreateTransfers(events);
            var request = cluster.Submit(events);
            Assert.True(cluster.RunUntilQuiet(2000), cluster.Describe());

            Assert.Empty(request.Failures);
            Assert.Equal(expected, request.Results);
            seen.UnionWith(expected);
            first = repeat == 0 ? expected : first;
        }

        return first;
    }

    // One to three pending (sometimes plain) transfers with one home, as one request or one linked chain.
    private static Transfer[] PendingEvents(CrossShardCluster cluster, Random random, List<Account> accounts, List<Transfer> pendings)
    {
        var home = random.Next(2);
        var count = random.Next(1, 4);
        // Several events are one linked chain: independent events of one request are separate transactions, which
        // do not see each other in request order (a documented difference; see docs/design/cross-shard.md).
        var linked = true;
        var events = new Transfer[count];
        for (var i = 0; i < count; i++)
        {
            // Mostly the existing accounts (the last one exists nowhere).
            var debit = accounts[random.Next(random.Next(6) == 0 ? accounts.Count : accounts.Count - 1)].Id;
            var credit = accounts[random.Next(random.Next(6) == 0 ? accounts.Count : accounts.Count - 1)].Id;
            var amount = random.Next(8) == 0 ? UInt128.MaxValue - (UInt128)random.Next(0, 200) : (UInt128)random.Next(0, 200);
            events[i] = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, home), debit, credit, amount,
                random.Next(5) == 0 ? TransferFlags.None : TransferFlags.Pending, ledger: random.Next(10) == 0 ? 2u : 1u);
            events[i].Flags |= CrossShardEquivalenceTests.BalancingOrClosing(random); // closing ones are voided or expire later (reopened)
            if ((events[i].Flags & TransferFlags.Pending) != 0 && random.Next(3) == 0)
            {
                events[i].TimeoutSeconds = random.Next(3) == 0 ? 1u : 3u; // odd: see the class remarks
            }
            events[i].Flags |= linked && i < count - 1 ? TransferFlags.Linked : TransferFlags.None;
            pendings.Add(events[i]);
        }

        return events;
    }

    // A known difference (docs/design/cross-shard.md, "Not done"): after a post/void in a cross-shard chain, a later leg on
    // one of its accounts is reserved on the account as stored, which still holds the pending amount the post/void
    // releases; with balances near 2^128 that overflows where one ledger would not. Such chains are not generated then.
    private static bool NearOverflow(LedgerFixture local, Transfer[] events)
    {
        var resolves = false;
        var touched = new List<UInt128>();
        foreach (var t in events)
        {
            touched.Add(t.DebitAccountId);
            touched.Add(t.CreditAccountId);
            if ((t.Flags & (TransferFlags.PostPendingTransfer | TransferFlags.VoidPendingTransfer)) == 0)
            {
                touched.Add(t.Amount > UInt128.MaxValue / 4 ? UInt128.MaxValue : UInt128.Zero);
            }
            else
            {
                resolves = true;
                if (local.Ledger.TryLookupTransfer(t.PendingId, out var p))
                {
                    touched.Add(p.DebitAccountId);
                    touched.Add(p.CreditAccountId);
                    touched.Add(p.Amount > UInt128.MaxValue / 4 ? UInt128.MaxValue : UInt128.Zero);
                }
            }
        }

        foreach (var id in touched)
        {
            if (id == UInt128.MaxValue)
            {
                return resolves; // an amount near 2^128
            }

            if (id == UInt128.Zero || !local.Ledger.TryLookupAccount(id, out var a))
            {
                continue;
            }

            if (a.DebitsPending > UInt128.MaxValue / 4 || a.DebitsPosted > UInt128.MaxValue / 4 ||
                a.CreditsPending > UInt128.MaxValue / 4 || a.CreditsPosted > UInt128.MaxValue / 4)
            {
                return resolves;
            }
        }

        return false;
    }

    // A linked chain of pending (or plain) transfers with one or two posts or voids at random places, of pending
    // transfers homed on the chain's coordinator or on the other shard (checked and held there by a status leg), of
    // pending transfers created earlier in the same chain (resolved by the chain's own Decide), or unknown ones.
    private static Transfer[] ChainWithPostOrVoid(CrossShardCluster cluster, Random random, List<Account> accounts, List<Transfer> pendings, List<Transfer> created)
    {
        if (created.Count > 0 && random.Next(2) == 0)
        {
            return random.Next(3) == 0 ? SameChainPostOrVoid(cluster, random, accounts, pendings) : CleanChainWithPostOrVoid(cluster, random, created);
        }

        var earlier = pendings.ToList();
        var events = PendingEvents(cluster, random, accounts, pendings).ToList();
        var home = cluster.ShardOf(events[0].Id);
        var own = events.FindAll(t => (t.Flags & TransferFlags.Pending) != 0);
        var sameChain = own.Count > 0 && random.Next(3) == 0;
        var candidates = sameChain ? own : random.Next(3) == 0 ? created.FindAll(t => cluster.ShardOf(t.Id) == home) : created.ToList();
        candidates = candidates.Count > 0 ? candidates : earlier;
        if (candidates.Count == 0)
        {
            return [.. events];
        }

        var resolutions = random.Next(4) == 0 ? 2 : 1;
        for (var r = 0; r < resolutions; r++)
        {
            var t = PostOrVoid(cluster, random, accounts, candidates, []);
            var after = events.FindIndex(e => e.Id == t.PendingId); // a pending transfer of this chain is resolved after it
            var at = after < 0 ? random.Next(events.Count + 1) : random.Next(after + 1, events.Count + 1);
            if (at == 0)
            {
                t.Id = CrossShardWorkload.IdWithHome(cluster, home); // the chain's first event's id names its coordinator
            }

            events.Insert(at, t);
        }

        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            e.Flags = i < events.Count - 1 ? e.Flags | TransferFlags.Linked : e.Flags & ~TransferFlags.Linked;
            events[i] = e;
        }

        return [.. events];
    }

    // A chain that mostly passes and creates a pending transfer between two plain accounts on different shards, then posts
    // (full or partial) or voids it, sometimes with plain transfers before, between or after, ids homed on either shard.
    private static Transfer[] SameChainPostOrVoid(CrossShardCluster cluster, Random random, List<Account> accounts, List<Transfer> pendings)
    {
        var p = PlainPending(cluster, random, accounts, pendings)[0];
        var resolve = random.Next(3) == 0
            ? LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, random.Next(2)), p.Id)
            : LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, random.Next(2)), p.Id, random.Next(2) == 0 ? UInt128.Zero : (UInt128)random.Next(0, 60));
        var events = new List<Transfer> { p, resolve };
        for (var i = random.Next(0, 3); i > 0; i--)
        {
            var forward = random.Next(2) == 0;
            // Sometimes before the pending transfer: the chain's coordinator is then often not its id's home.
            events.Insert(random.Next(events.Count + 1), LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, random.Next(2)),
                forward ? p.DebitAccountId : p.CreditAccountId, forward ? p.CreditAccountId : p.DebitAccountId, (UInt128)random.Next(1, 4), ledger: p.Ledger));
        }

        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            e.Flags = i < events.Count - 1 ? e.Flags | TransferFlags.Linked : e.Flags & ~TransferFlags.Linked;
            events[i] = e;
        }

        return [.. events];
    }

    // A pending transfer that usually passes: between two open accounts of one ledger without limits (when there are).
    private static Transfer[] PlainPending(CrossShardCluster cluster, Random random, List<Account> accounts, List<Transfer> pendings)
    {
        var open = accounts[..^1].FindAll(a => a.Flags == AccountFlags.None && a.DebitsPending < UInt128.MaxValue / 2 && a.CreditsPending < UInt128.MaxValue / 2);
        var debit = open.Count > 0 ? open[random.Next(open.Count)] : accounts[0];
        var credits = open.FindAll(a => a.Id != debit.Id && a.Ledger == debit.Ledger);
        var credit = credits.Count > 0 ? credits[random.Next(credits.Count)] : accounts[1];
        var t = LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, random.Next(2)), debit.Id, credit.Id, (UInt128)random.Next(1, 50),
            TransferFlags.Pending, ledger: debit.Ledger);
        t.TimeoutSeconds = random.Next(4) == 0 ? 3u : 0u; // odd: see the class remarks
        pendings.Add(t);
        return [t];
    }

    // A chain that mostly passes: a post or void with the pending transfer's own fields, between small plain transfers on
    // its accounts, coordinated by either shard (so often not the pending transfer's home).
    private static Transfer[] CleanChainWithPostOrVoid(CrossShardCluster cluster, Random random, List<Transfer> created)
    {
        var p = created[random.Next(created.Count)];
        var home = random.Next(2);
        var resolve = random.Next(3) == 0
            ? LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, random.Next(2)), p.Id)
            : LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, random.Next(2)), p.Id, random.Next(2) == 0 ? UInt128.Zero : (UInt128)random.Next(0, 60));
        var events = new List<Transfer> { resolve };
        for (var i = random.Next(1, 3); i > 0; i--)
        {
            var forward = random.Next(2) == 0;
            events.Insert(random.Next(events.Count + 1), LedgerFixture.NewTransfer(CrossShardWorkload.IdWithHome(cluster, random.Next(2)),
                forward ? p.DebitAccountId : p.CreditAccountId, forward ? p.CreditAccountId : p.DebitAccountId, (UInt128)random.Next(1, 4), ledger: p.Ledger));
        }

        var first = events[0];
        first.Id = CrossShardWorkload.IdWithHome(cluster, home); // the chain's first event's id names its coordinator
        events[0] = first;
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            e.Flags = i < events.Count - 1 ? e.Flags | TransferFlags.Linked : e.Flags & ~TransferFlags.Linked;
            events[i] = e;
        }

        return [.. events];
    }

    // A post or void of an earlier event (or of an unknown id), homed with it, with some fields changed.
    private static Transfer PostOrVoid(CrossShardCluster cluster, Random random, List<Account> accounts, List<Transfer> pendings, List<UInt128> resolved)
    {
        var target = random.Next(8) == 0 ? CrossShardWorkload.IdWithHome(cluster, random.Next(2))
            : resolved.Count > 0 && random.Next(6) == 0 ? resolved[random.Next(resolved.Count)]
            : pendings[random.Next(pendings.Count)].Id;
        var p = pendings.Find(t => t.Id == target);
        var amount = random.Next(4) switch
        {
            0 => UInt128.Zero,
            1 => UInt128.MaxValue,
            _ => (UInt128)random.Next(0, 420),
        };
        // Homed with the pending transfer (coordinated there) or on the other shard (delegated there).
        var home = random.Next(2) == 0 ? cluster.ShardOf(target) : random.Next(2);
        var t = random.Next(3) == 0 ? LedgerFixture.Void(CrossShardWorkload.IdWithHome(cluster, home), target)
            : LedgerFixture.Post(CrossShardWorkload.IdWithHome(cluster, home), target, amount);
        if ((t.Flags & TransferFlags.VoidPendingTransfer) != 0 && random.Next(2) == 0)
        {
            // A void names the full amount or none; a smaller one is pending_transfer_has_different_amount.
            t.Amount = p.Amount > 1 && p.Amount < 1000 && random.Next(2) == 0 ? (UInt128)random.Next(1, (int)p.Amount) : amount;
        }

        switch (random.Next(12))
        {
            case 0:
                t.DebitAccountId = accounts[random.Next(accounts.Count)].Id;
                break;
            case 1:
                t.CreditAccountId = accounts[random.Next(accounts.Count)].Id;
                break;
            case 2:
                t.Ledger = p.Ledger == 1 ? 2u : 1u;
                break;
            case 3:
                t.Code = p.Code == 1 ? (ushort)2 : (ushort)1;
                break;
            case 4:
                t.DebitAccountId = p.DebitAccountId;
                t.CreditAccountId = p.CreditAccountId;
                break;
            default:
                break;
        }

        return t;
    }
}
