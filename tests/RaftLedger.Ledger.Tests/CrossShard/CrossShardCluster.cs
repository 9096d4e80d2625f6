using RaftLedger.Common.Placement;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>What the test cluster does to messages and leaders (all decisions from the seeded PRNG).</summary>
internal sealed record Chaos(int LossPercent, int DuplicatePercent, int DelayStepsMax, int CrashPerMille)
{
    public static Chaos None { get; } = new(0, 0, 1, 0);

    public static Chaos Heavy { get; } = new(15, 10, 12, 4);
}

/// <summary>
/// A deterministic in-test host for the cross-shard protocol: S shards, each ONE ledger (no Raft)
/// with its driver, a seeded network that loses, duplicates and reorders messages, proposals that
/// apply a few steps after they are made, and leader "crashes" (a new driver instance, state from
/// the ledger; proposals in flight at the crash apply or vanish at random, as in Raft).
/// One step is one millisecond of cluster time.
/// </summary>
internal sealed class CrossShardCluster
{
    public const ulong StepNs = 1_000_000;

    private readonly Random random;
    private readonly List<Envelope> network = [];
    private readonly Dictionary<long, ClientRequest> requestsByToken = [];
    private readonly List<CrossShardMessageKind> loseOnce = [];
    private long nextRequestToken;

    public CrossShardCluster(int shardCount, int seed, CrossShardOptions options)
    {
        ShardCount = shardCount;
        random = new Random(seed);
        Options = options;
        Shards = new ShardNode[shardCount];
        for (var s = 0; s < shardCount; s++)
        {
            Shards[s] = new ShardNode(s, this);
        }
    }

    public int ShardCount { get; }

    public CrossShardOptions Options { get; }

    public ShardNode[] Shards { get; }

    public Chaos Chaos { get; set; } = Chaos.None;

    /// <summary>Cluster time between the drivers' ticks: every step unless a test shows what waits for a tick.</summary>
    public ulong TickIntervalNs { get; set; } = StepNs;

    private ulong lastTickNs;

    /// <summary>Cluster time in ns.</summary>
    public ulong NowNs { get; private set; } = 1_000_000_000_000;

    public List<ClientRequest> Requests { get; } = [];

    public int Crashes { get; private set; }

    public Random Random => random;

    public int ShardOf(UInt128 id) => ShardRouter.ShardOf(id, ShardCount);

    /// <summary>Creates accounts directly on their shards (setup, outside the protocol).</summary>
    public void CreateAccounts(params Account[] accounts)
    {
        foreach (var account in accounts)
        {
            var node = Shards[ShardOf(account.Id)];
            var results = new CreateAccountResult[1];
            node.Ledger.CreateAccounts([account], node.NextTimestamp(1), results);
            Assert.Equal(CreateAccountResult.Created, results[0]);
        }
    }

    /// <summary>Sends a request to the home shard of its first event (all its events must share it, except within a linked chain, homed by its first event).</summary>
    public ClientRequest Submit(Transfer[] events)
    {
        var home = ShardOf(events[0].Id);
        for (var i = 0; i < events.Length; i++)
        {
            var inChain = i > 0 && (events[i - 1].Flags & TransferFlags.Linked) != 0;
            Assert.True(inChain || ShardOf(events[i].Id) == home, "a request's events share the home of its first event");
        }

        var request = new ClientRequest(events, home);
        Requests.Add(request);
        Shards[home].Accept(request);
        return request;
    }

    /// <summary>The next message of <paramref name="kind"/> sent is lost (a test's own loss, on top of <see cref="Chaos"/>).</summary>
    public void LoseNext(CrossShardMessageKind kind) => loseOnce.Add(kind);

    /// <summary>Cluster time jumps ahead (a pause: timers and pending transfers' expiry times pass at once); the next <see cref="Step"/> ticks at the new time.</summary>
    public void AdvanceNs(ulong ns) => NowNs += ns;

    public void Step()
    {
        NowNs += StepNs;
        foreach (var node in Shards)
        {
            node.ApplyDue();
        }

        DeliverDue();
        var tick = NowNs - lastTickNs >= TickIntervalNs;
        lastTickNs = tick ? NowNs : lastTickNs;
        foreach (var node in Shards)
        {
            if (tick)
            {
                node.Driver.Tick(NowNs);
            }

            node.DrainActions();
        }

        if (Chaos.CrashPerMille > 0 && random.Next(1000) < Chaos.CrashPerMille)
        {
            Shards[random.Next(ShardCount)].Crash();
            Crashes++;
        }
    }

    /// <summary>Runs until nothing is in flight anywhere and the drivers hold no transactions, or the step budget runs out.</summary>
    public bool RunUntilQuiet(int stepsMax)
    {
        for (var i = 0; i < stepsMax; i++)
        {
            Step();
            if (IsQuiet())
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Submits <paramref name="events"/>, runs until quiet and returns their results; the request must not fail.</summary>
    public CreateTransferResult[] RunRequest(Transfer[] events, int stepsMax = 2000)
    {
        var request = Submit(events);
        Assert.True(RunUntilQuiet(stepsMax), Describe());
        Assert.Empty(request.Failures);
        return request.Results;
    }

    /// <summary>The account as its own shard's committed ledger holds it (it must exist).</summary>
    public Account LookupAccount(UInt128 id)
    {
        Assert.True(Shards[ShardOf(id)].Ledger.TryLookupAccount(id, out var account));
        return account;
    }

    /// <summary>What is still in flight, for failure messages.</summary>
    public string Describe()
    {
        var parts = new List<string> { $"t={NowNs} network={network.Count}" };
        foreach (var node in Shards)
        {
            parts.Add($"shard {node.Shard}: log={node.Log.Count} coordinating={node.Driver.CoordinatorTransactionCount} prepared={node.Driver.PreparedTransactionCount} openRequests={node.OpenRequests} side={node.Store.SideRecordCount}");
        }

        return string.Join("; ", parts);
    }

    public bool IsQuiet()
    {
        if (network.Count != 0)
        {
            return false;
        }

        foreach (var node in Shards)
        {
            if (node.Log.Count != 0 || node.Driver.CoordinatorTransactionCount != 0 || node.Driver.PreparedTransactionCount != 0 || node.OpenRequests != 0)
            {
                return false;
            }

            foreach (var record in node.Store.EnumerateSideRecords())
            {
                if (record.Table is CrossShardTables.Coordinator or CrossShardTables.Prepared)
                {
                    // Durable work no driver holds yet: a proposal of a crashed leader applied after its successor's
                    // driver scanned the ledger (this host does not wait for that); the periodic scan resumes it.
                    return false;
                }

                if (record.Table == CrossShardTables.Expiry && node.Ledger.TryGetCrossShardExpiry(record.Key, out var expiresAtNs) && expiresAtNs <= NowNs)
                {
                    return false; // A pending transfer due to expire (perhaps between two attempts).
                }
            }
        }

        return true;
    }

    private void Send(int from, int to, byte[] message)
    {
        if (random.Next(100) < Chaos.LossPercent)
        {
            return;
        }

        if (loseOnce.Count > 0 && LosesOnce(message))
        {
            return;
        }

        var copies = random.Next(100) < Chaos.DuplicatePercent ? 2 : 1;
        for (var c = 0; c < copies; c++)
        {
            network.Add(new Envelope(from, to, message, NowNs + ((ulong)random.Next(1, Chaos.DelayStepsMax + 1) * StepNs)));
        }
    }

    /// <summary>Whether <paramref name="message"/> (or a message in it, when it is a bundle: then it is lost whole) is of a kind to lose once.</summary>
    private bool LosesOnce(byte[] message)
    {
        var ranges = new List<Range>();
        if (!CrossShardBundle.TrySplit(message, ranges))
        {
            ranges = [new Range(0, message.Length)];
        }

        foreach (var range in ranges)
        {
            if (CrossShardMessage.TryDecode(message.AsSpan(range), out var decoded) && loseOnce.Remove(decoded.Kind))
            {
                return true;
            }
        }

        return false;
    }

    private void DeliverDue()
    {
        var due = network.FindAll(e => e.DeliverAtNs <= NowNs);
        network.RemoveAll(e => e.DeliverAtNs <= NowNs);
        foreach (var envelope in due)
        {
            Shards[envelope.To].Driver.OnMessage(envelope.From, envelope.Message);
        }
    }

    private sealed record Envelope(int From, int To, byte[] Message, ulong DeliverAtNs);

    /// <summary>One shard: its ledger, its current leader's driver, and its log of proposals not yet applied.</summary>
    internal sealed class ShardNode
    {
        private readonly CrossShardCluster cluster;
        private readonly byte[] results = new byte[LedgerLimits.ResultBytesMax];
        private ulong term = 1;
        private int generation;

        public ShardNode(int shard, CrossShardCluster cluster)
        {
            Shard = shard;
            this.cluster = cluster;
            Store = new InMemoryLedgerStore();
            Ledger = new LedgerStateMachine(Store);
            Driver = NewDriver();
        }

        public int Shard { get; }

        public InMemoryLedgerStore Store { get; }

        public LedgerStateMachine Ledger { get; }

        public CrossShardDriver Driver { get; private set; }

        public List<LogEntry> Log { get; } = [];

        public int OpenRequests { get; private set; }

        public ulong NextTimestamp(int count) => Math.Max(cluster.NowNs, Ledger.LastTimestamp + (ulong)Math.Max(count, 1));

        private CrossShardDriver NewDriver()
        {
            var driver = new CrossShardDriver(Shard, cluster.ShardCount, Ledger, cluster.Options);
            driver.OnRoleChanged(true, term);
            return driver;
        }

        /// <summary>The host's routing: local events go in one create_transfers proposal, cross-shard ones to the driver.</summary>
        public void Accept(ClientRequest request)
        {
            var cross = new bool[request.Events.Length];
            Driver.Classify(request.Events, cross);
            var local = new List<int>();
            var remote = new List<int>();
            for (var i = 0; i < cross.Length; i++)
            {
                (cross[i] ? remote : local).Add(i);
            }

            OpenRequests++;
            request.OpenParts = (local.Count > 0 ? 1 : 0) + (remote.Count > 0 ? 1 : 0);
            if (local.Count > 0)
            {
                var events = local.ConvertAll(i => request.Events[i]).ToArray();
                AddToLog(new LogEntry(LedgerCommand.EncodeCreateTransfers(0, events), generation, Token: 0, request, [.. local]));
            }

            if (remote.Count > 0)
            {
                var token = ++cluster.nextRequestToken;
                cluster.requestsByToken.Add(token, request);
                request.RemoteIndexes = [.. remote];
                Driver.Submit(token, remote.ConvertAll(i => request.Events[i]).ToArray());
                DrainActions();
            }
        }

        private void AddToLog(LogEntry entry)
        {
            var due = cluster.NowNs + ((ulong)cluster.random.Next(0, 3) * StepNs);
            entry.DueNs = Log.Count > 0 ? Math.Max(due, Log[^1].DueNs) : due;
            Log.Add(entry);
        }

        public void ApplyDue()
        {
            while (Log.Count > 0 && Log[0].DueNs <= cluster.NowNs)
            {
                var entry = Log[0];
                Log.RemoveAt(0);
                var command = entry.Command;
                LedgerCommand.SetBatchTimestamp(command, NextTimestamp(LedgerCommand.TimestampCount(command)));
                LedgerApplyResult applied;
                try
                {
                    applied = Ledger.Apply(command, results);
                }
                catch (Exception exception) when (exception is not Xunit.Sdk.XunitException)
                {
                    LedgerCommand.TryReadHeader(command, out var operation, out _, out _);
                    throw new InvalidOperationException($"shard {Shard} failed to apply {operation} at {cluster.NowNs}: {exception.Message}", exception);
                }

                if (entry.Request is { } request)
                {
                    for (var i = 0; i < entry.RequestIndexes!.Length; i++)
                    {
                        var index = entry.RequestIndexes[i];
                        request.Results[index] = (CreateTransferResult)results[i];
                        request.Known[index] = entry.Generation == generation;
                    }

                    request.PartDone(this);
                }
                else if (entry.Generation == generation)
                {
                    Driver.OnProposalApplied(entry.Token, results.AsSpan(0, applied.EventCount));
                }
            }
        }

        public void DrainActions()
        {
            while (Driver.TryTakeAction(out var action))
            {
                Execute(action);
            }
        }

        private void Execute(CrossShardAction action)
        {
            switch (action)
            {
                case ProposeAction propose:
                    AddToLog(new LogEntry(propose.Command, generation, propose.Token, null, null));
                    break;
                case SendAction send:
                    cluster.Send(Shard, send.ToShard, send.Message);
                    break;
                case CompleteAction complete:
                    var request = Take(complete.RequestToken);
                    for (var i = 0; i < request.RemoteIndexes!.Length; i++)
                    {
                        request.Results[request.RemoteIndexes[i]] = complete.Results[i];
                        request.Known[request.RemoteIndexes[i]] = true;
                    }

                    request.PartDone(this);
                    break;
                case FailAction fail:
                    var failed = Take(fail.RequestToken);
                    failed.Failures.Add(fail.Detail);
                    failed.OutcomeUnknown |= fail.OutcomeUnknown;
                    failed.PartDone(this);
                    break;
            }
        }

        private ClientRequest Take(long token)
        {
            Assert.True(cluster.requestsByToken.Remove(token, out var request), $"request token {token} is answered once");
            return request!;
        }

        public void RequestDone() => OpenRequests--;

        /// <summary>The leader crashes and none of its proposals in flight ever applies.</summary>
        public void CrashLosingLog()
        {
            foreach (var entry in Log)
            {
                entry.Request?.PartDone(this);
            }

            Log.Clear();
            Crash();
        }

        /// <summary>The leader crashes: a new driver takes over (next term); each proposal in flight applies later or vanishes.</summary>
        public void Crash()
        {
            Driver.OnRoleChanged(false, term);
            DrainActions();
            term++;
            generation++;
            var kept = new List<LogEntry>();
            foreach (var entry in Log)
            {
                if (cluster.random.Next(2) == 0)
                {
                    kept.Add(entry);
                }
                else
                {
                    entry.Request?.PartDone(this); // Never applies: the client's answer is unknown.
                }
            }

            Log.Clear();
            Log.AddRange(kept);
            Driver = NewDriver();
            DrainActions();
        }
    }

    internal sealed class LogEntry(byte[] command, int generation, long Token, ClientRequest? request, int[]? requestIndexes)
    {
        public byte[] Command { get; } = command;

        public int Generation { get; } = generation;

        public long Token { get; } = Token;

        public ClientRequest? Request { get; } = request;

        public int[]? RequestIndexes { get; } = requestIndexes;

        public ulong DueNs { get; set; }
    }
}

/// <summary>A client's request and what it was told.</summary>
internal sealed class ClientRequest(Transfer[] events, int home)
{
    public Transfer[] Events { get; } = events;

    public int Home { get; } = home;

    public CreateTransferResult[] Results { get; } = new CreateTransferResult[events.Length];

    /// <summary>Per event: an answer arrived (false when the outcome is unknown).</summary>
    public bool[] Known { get; } = new bool[events.Length];

    public List<string> Failures { get; } = [];

    /// <summary>A failure said the outcome is unknown (504: it may have been applied), not only "retry" (503).</summary>
    public bool OutcomeUnknown { get; set; }

    public int[]? RemoteIndexes { get; set; }

    public int OpenParts { get; set; }

    public bool Done { get; private set; }

    public void PartDone(CrossShardCluster.ShardNode node)
    {
        if (--OpenParts == 0)
        {
            Done = true;
            node.RequestDone();
        }
    }
}
