using RaftLedger.Common;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;

namespace RaftLedger.Simulation.MultiShard;

/// <summary>One account of the bank workload.</summary>
public readonly record struct BankAccount(UInt128 Id, int Shard, bool IsBank);

/// <summary>What is known about one transfer a client submitted.</summary>
public enum TransferOutcome : byte
{
    /// <summary>Never answered definitively (the client's attempts timed out or are still running).</summary>
    Unknown = 0,

    /// <summary>Acknowledged: answered <c>created</c>, or <c>exists</c> on a retry.</summary>
    Created = 1,

    /// <summary>Answered with a failure status: it must not exist.</summary>
    Failed = 2,
}

/// <summary>A transfer as the client submitted it, and what the cluster answered.</summary>
public sealed class TransferFate(Transfer submitted, int home, bool crossShard)
{
    public Transfer Submitted { get; } = submitted;

    /// <summary>The shard of the transfer id: where its record and id uniqueness live.</summary>
    public int Home { get; } = home;

    public bool CrossShard { get; } = crossShard;

    public TransferOutcome Outcome { get; internal set; }

    public CreateTransferResult Status { get; internal set; }

    /// <summary>Order (<see cref="BankWorkload.NextSequence"/>) at which a client first submitted it (long.MaxValue: never).</summary>
    public long SubmittedAt { get; internal set; } = long.MaxValue;

    /// <summary>Order at which a client was first told it is created (long.MaxValue: never).</summary>
    public long AcknowledgedAt { get; internal set; } = long.MaxValue;

    /// <summary>Order at which a client got its final answer (long.MaxValue: not yet).</summary>
    public long AnsweredAt { get; internal set; } = long.MaxValue;
}

/// <summary>One client request: transfers whose ids all belong to <see cref="Home"/>, retried unchanged until answered.</summary>
public sealed class ClientRequest(int client, int home, Transfer[] transfers)
{
    public int Client { get; } = client;

    public int Home { get; } = home;

    public Transfer[] Transfers { get; } = transfers;

    /// <summary>Attempts so far; answers to an earlier attempt are ignored (their information is not needed).</summary>
    public int Attempt { get; internal set; }

    // Per attempt: results collected so far and which parts are still outstanding.
    internal CreateTransferResult[] Results { get; } = new CreateTransferResult[transfers.Length];

    internal int PartsOutstanding { get; set; }

    // Positions (in Transfers) of the current attempt's fast-path events.
    internal int[] FastIndices { get; set; } = [];
}

/// <summary>A client of the bank: one request outstanding, sent to the home shard's leader, retried on timeout.</summary>
public sealed class BankClient(int id)
{
    public int Id { get; } = id;

    public ClientRequest? Outstanding { get; internal set; }

    /// <summary>The node the client believes leads its request's shard (0: pick one).</summary>
    internal int TargetNode { get; set; }

    internal long NextAttemptTick { get; set; }

    public bool IsIdle => Outstanding is null;
}

/// <summary>
/// The bank: per shard one unguarded bank account and guarded customers (<c>debits_must_not_exceed_credits</c>),
/// all on ledger 1, placed by <see cref="ShardRouter"/>. Generates transfers and records every transfer's fate.
/// </summary>
public sealed class BankWorkload
{
    public const uint LedgerId = 1;
    public const ushort Code = 1;

    /// <summary>Largest amount of one generated transfer (customers start with a few multiples of it).</summary>
    public const ulong AmountMax = 200;

    /// <summary>Longest timeout of a generated pending transfer (a few client request timeouts).</summary>
    public const int PendingTimeoutSecondsMax = 3;

    private readonly SimRandom _random;
    private readonly int _shardCount;
    private readonly List<BankAccount>[] _byShard;
    private readonly Dictionary<UInt128, TransferFate> _fates = [];
    private readonly List<TransferFate> _fateOrder = [];
    private readonly Dictionary<UInt128, List<TransferFate>> _byAccount = [];
    private long _sequence;

    // Two-phase: the pending transfers submitted, and those a post/void was generated for.
    private readonly List<TransferFate> _pendings = [];
    private readonly HashSet<UInt128> _resolving = [];

    public BankWorkload(SimRandom random, int shardCount, int customersPerShard)
    {
        Invariant.Check(shardCount >= 1 && customersPerShard >= 2);
        _random = random;
        _shardCount = shardCount;
        _byShard = new List<BankAccount>[shardCount];
        for (var shard = 0; shard < shardCount; shard++)
        {
            _byShard[shard] = [new BankAccount(NewId(shard), shard, IsBank: true)];
            for (var c = 0; c < customersPerShard; c++)
            {
                _byShard[shard].Add(new BankAccount(NewId(shard), shard, IsBank: false));
            }
        }
    }

    /// <summary>Share of the new transfers of two-phase requests that are balancing or closing (the rest: plain pending transfers).</summary>
    public double BalancingOrClosingShare { get; set; } = 0.25;

    /// <summary>
    /// Share of the posts/voids inside linked chains that are coordinated by another shard than their pending transfer's
    /// home (a status leg holds the pending transfer there; the rest are coordinated by that home).
    /// </summary>
    public double ChainPostElsewhereShare { get; set; } = 0.5;

    /// <summary>
    /// Share of two-phase requests that are one linked chain creating a pending transfer across shards and posting or
    /// voiding it (<see cref="SameChainRequest"/>). 0 by default, and then never drawn, so seeds replay as before.
    /// </summary>
    public double SameChainShare { get; set; }

    /// <summary>
    /// Share of plain cross-shard requests that are one long linked chain (<see cref="LongChainRequest"/>) of
    /// <see cref="LongChainEventsMin"/>..<see cref="LongChainEventsMax"/> transfers between accounts on every shard, ids
    /// homed on every shard: one atomic transaction far beyond the old 64-event bound. 0 by default, and then never
    /// drawn, so seeds replay as before.
    /// </summary>
    public double LongChainShare { get; set; }

    /// <summary>Fewest events of a long chain (65: one past the old bound).</summary>
    public int LongChainEventsMin { get; set; } = 65;

    /// <summary>Most events of a long chain (at most a full request, <see cref="LedgerLimits.BatchEventsMax"/>).</summary>
    public int LongChainEventsMax { get; set; } = 400;

    public IReadOnlyList<BankAccount> AccountsOf(int shard) => _byShard[shard];

    public IReadOnlyList<TransferFate> Fates => _fateOrder;

    public bool TryGetFate(UInt128 id, out TransferFate fate) => _fates.TryGetValue(id, out fate!);

    /// <summary>
    /// The next number of the run's real-time order: submissions, acknowledgements and the start of reads are
    /// numbered as they happen, so "started after that acknowledgement" is a comparison of two numbers.
    /// </summary>
    public long NextSequence() => ++_sequence;

    /// <summary>Every transfer that names <paramref name="accountId"/> as debit or credit account.</summary>
    public IReadOnlyList<TransferFate> FatesOf(UInt128 accountId) => _byAccount.TryGetValue(accountId, out var fates) ? fates : [];

    /// <summary>The create_accounts events of one shard.</summary>
    public Account[] AccountEvents(int shard)
    {
        var accounts = _byShard[shard];
        var events = new Account[accounts.Count];
        for (var i = 0; i < events.Length; i++)
        {
            events[i] = new Account
            {
                Id = accounts[i].Id,
                Ledger = LedgerId,
                Code = Code,
                Flags = accounts[i].IsBank ? AccountFlags.None : AccountFlags.DebitsMustNotExceedCredits,
            };
        }

        return events;
    }

    /// <summary>The set-up request of one shard: its bank funds each of its customers.</summary>
    public ClientRequest FundingRequest(int shard, ulong amount)
    {
        var accounts = _byShard[shard];
        var transfers = new Transfer[accounts.Count - 1];
        for (var i = 1; i < accounts.Count; i++)
        {
            transfers[i - 1] = NewTransfer(shard, accounts[0].Id, accounts[i].Id, amount);
        }

        return Register(0, shard, transfers, crossShard: false);
    }

    /// <summary>A new request of 1..<see cref="MultiShardLimits.RequestTransfersMax"/> transfers within one shard.</summary>
    public ClientRequest SingleShardRequest(int client)
    {
        var shard = _random.Next(_shardCount);
        var count = _random.Chance(0.6) ? 1 : _random.Between(2, MultiShardLimits.RequestTransfersMax + 1);
        var transfers = new Transfer[count];
        for (var i = 0; i < count; i++)
        {
            var (debit, credit) = TwoAccounts(_byShard[shard], _byShard[shard]);
            transfers[i] = NewTransfer(shard, debit, credit, RandomAmount());
        }

        return Register(client, shard, transfers, crossShard: false);
    }

    /// <summary>A new request of one transfer whose accounts are on two different shards; its id's home is one of them or a third.</summary>
    public ClientRequest CrossShardRequest(int client) =>
        LongChainShare > 0 && _random.Chance(LongChainShare) ? LongChainRequest(client) : CrossShardRequest(client, TransferFlags.None);

    /// <summary>
    /// One linked chain of <see cref="LongChainEventsMin"/>..<see cref="LongChainEventsMax"/> transfers of 1 between
    /// accounts on random shards, each event's id homed on a random shard (the chain is coordinated by its first event's
    /// home). Small amounts keep most chains within the customers' balances, so most are created; when one event would
    /// overdraw, the whole chain fails and nothing of it may be applied anywhere.
    /// </summary>
    public ClientRequest LongChainRequest(int client)
    {
        Invariant.Check(_shardCount >= 2);
        Invariant.Check(LongChainEventsMin is >= 2 and <= LedgerLimits.BatchEventsMax && LongChainEventsMax >= LongChainEventsMin &&
            LongChainEventsMax <= LedgerLimits.BatchEventsMax);
        var count = _random.Between(LongChainEventsMin, LongChainEventsMax + 1);
        var home = _random.Next(_shardCount);
        var transfers = new Transfer[count];
        for (var i = 0; i < count; i++)
        {
            var debitShard = _random.Next(_shardCount);
            var (debit, credit) = TwoAccounts(_byShard[debitShard], _byShard[_random.Next(_shardCount)]);
            transfers[i] = NewTransfer(i == 0 ? home : _random.Next(_shardCount), debit, credit, UInt128.One);
            transfers[i].Flags = i < count - 1 ? TransferFlags.Linked : TransferFlags.None;
        }

        return Register(client, home, transfers, crossShard: true);
    }

    private ClientRequest CrossShardRequest(int client, TransferFlags flags, uint timeoutSeconds = 0, ulong amount = 0)
    {
        Invariant.Check(_shardCount >= 2);
        var debitShard = _random.Next(_shardCount);
        var creditShard = (debitShard + _random.Between(1, _shardCount)) % _shardCount;
        var home = _random.Next(3) switch
        {
            0 => debitShard,
            1 => creditShard,
            _ => _random.Next(_shardCount),
        };
        var (debit, credit) = TwoAccounts(_byShard[debitShard], _byShard[creditShard]);
        var transfer = NewTransfer(home, debit, credit, amount != 0 ? amount : RandomAmount());
        transfer.Flags = flags;
        transfer.TimeoutSeconds = timeoutSeconds;
        return Register(client, home, [transfer], crossShard: true);
    }

    /// <summary>
    /// A two-phase request across shards: a new pending transfer between accounts on two shards (some with a timeout
    /// of up to <see cref="PendingTimeoutSecondsMax"/>: they expire at their home, and a post/void after that fails with
    /// pending_transfer_expired), or
    /// a post (full or partial) or void of a pending transfer acknowledged earlier, with an id homed on the pending
    /// transfer's home (where its post/void is coordinated) or elsewhere (delegated there); now and then a second post/void of an already
    /// resolved one, which must fail with pending_transfer_already_posted/voided.
    /// </summary>
    public ClientRequest TwoPhaseRequest(int client)
    {
        Invariant.Check(_shardCount >= 2);
        if (SameChainShare > 0 && _random.Chance(SameChainShare))
        {
            return SameChainRequest(client);
        }

        var open = _pendings.FindAll(p => p.Outcome == TransferOutcome.Created && !_resolving.Contains(p.Submitted.Id));
        var resolved = _pendings.FindAll(p => _resolving.Contains(p.Submitted.Id));
        if (open.Count > 0 && _random.Chance(0.6))
        {
            // Now and then inside a linked chain with a cross-shard transfer (all or nothing), coordinated by the
            // pending transfer's home.
            return PostOrVoid(client, open[_random.Next(open.Count)], inChain: _random.Chance(0.3));
        }

        if (resolved.Count > 0 && _random.Chance(0.1))
        {
            return PostOrVoid(client, resolved[_random.Next(resolved.Count)]);
        }

        if (_random.Chance(BalancingOrClosingShare))
        {
            return BalancingOrClosingRequest(client);
        }

        var timeoutSeconds = _random.Chance(0.4) ? (uint)_random.Between(1, PendingTimeoutSecondsMax + 1) : 0;
        var request = CrossShardRequest(client, TransferFlags.Pending, timeoutSeconds);
        _pendings.Add(_fates[request.Transfers[0].Id]);
        return request;
    }

    /// <summary>
    /// A balancing transfer across shards (debit, credit or both; the amount an upper bound, sometimes far above any
    /// balance; sometimes pending), or a closing one (pending, with a timeout: its account is closed until it expires
    /// or is voided, or for good once posted). Pending ones join the two-phase pool (posted, voided or expired later).
    /// </summary>
    private ClientRequest BalancingOrClosingRequest(int client)
    {
        TransferFlags flags;
        uint timeoutSeconds = 0;
        if (_random.Chance(0.8))
        {
            flags = _random.Next(3) switch
            {
                0 => TransferFlags.BalancingDebit,
                1 => TransferFlags.BalancingCredit,
                _ => TransferFlags.BalancingDebit | TransferFlags.BalancingCredit,
            };
            flags |= _random.Chance(0.3) ? TransferFlags.Pending : TransferFlags.None;
        }
        else
        {
            flags = TransferFlags.Pending | (_random.Chance(0.5) ? TransferFlags.ClosingDebit : TransferFlags.ClosingCredit);
        }

        if ((flags & TransferFlags.Pending) != 0)
        {
            timeoutSeconds = (flags & (TransferFlags.ClosingDebit | TransferFlags.ClosingCredit)) != 0 || _random.Chance(0.5)
                ? (uint)_random.Between(1, PendingTimeoutSecondsMax + 1)
                : 0;
        }

        var amount = _random.Chance(0.5) ? 0 : AmountMax * 50; // 0: a random amount up to AmountMax
        var request = CrossShardRequest(client, flags, timeoutSeconds, amount);
        if ((flags & TransferFlags.Pending) != 0)
        {
            _pendings.Add(_fates[request.Transfers[0].Id]);
        }

        return request;
    }

    /// <summary>
    /// One linked chain: a new pending transfer between accounts on two shards (sometimes with a timeout), then a post
    /// (full or partial) or void of it with an id homed anywhere. It is created or refused with the chain, and the
    /// pending transfer is stored posted or voided (docs/design/cross-shard.md, "A pending transfer posted or voided by
    /// its own chain"); it joins the pool of resolved ones (a later post/void of it must fail).
    /// </summary>
    private ClientRequest SameChainRequest(int client)
    {
        var timeoutSeconds = _random.Chance(0.4) ? (uint)_random.Between(1, PendingTimeoutSecondsMax + 1) : 0;
        var request = CrossShardRequest(client, TransferFlags.Pending | TransferFlags.Linked, timeoutSeconds);
        var pendingFate = _fates[request.Transfers[0].Id];
        _pendings.Add(pendingFate);
        var resolve = PostOrVoid(client, pendingFate).Transfers[0];
        return new ClientRequest(client, request.Home, [request.Transfers[0], resolve]);
    }

    private ClientRequest PostOrVoid(int client, TransferFate pendingFate, bool inChain = false)
    {
        var pending = pendingFate.Submitted;
        _resolving.Add(pending.Id);
        var post = _random.Chance(0.7);
        // Half the time the id lives on another shard, which delegates the post/void to the pending transfer's home;
        // a chain is coordinated by the home of its first event (this one): the pending transfer's home, or another
        // shard (ChainPostElsewhereShare), which then checks and holds the pending transfer there with a status leg.
        var home = inChain
            ? (_random.Chance(ChainPostElsewhereShare) ? (pendingFate.Home + _random.Between(1, _shardCount)) % _shardCount : pendingFate.Home)
            : _random.Chance(0.5) ? pendingFate.Home : _random.Next(_shardCount);
        var t = new Transfer
        {
            Id = NewId(home),
            PendingId = pending.Id,
            Amount = post && _random.Chance(0.5) ? (UInt128)(ulong)_random.Between(1, (int)(ulong)pending.Amount + 1) : UInt128.Zero,
            Flags = (post ? TransferFlags.PostPendingTransfer : TransferFlags.VoidPendingTransfer) | (inChain ? TransferFlags.Linked : TransferFlags.None),
        };

        // Listed under the pending transfer's accounts: a read of either must find it once acknowledged.
        var fate = new TransferFate(t, home, crossShard: true);
        _fates.Add(t.Id, fate);
        _fateOrder.Add(fate);
        ByAccount(pending.DebitAccountId).Add(fate);
        ByAccount(pending.CreditAccountId).Add(fate);
        if (!inChain)
        {
            return new ClientRequest(client, home, [t]);
        }

        // The chain's other event: a transfer between accounts on two shards, its id homed with the chain.
        var debitShard = _random.Next(_shardCount);
        var (debit, credit) = TwoAccounts(_byShard[debitShard], _byShard[(debitShard + _random.Between(1, _shardCount)) % _shardCount]);
        var next = NewTransfer(home, debit, credit, RandomAmount());
        var nextFate = new TransferFate(next, home, crossShard: true);
        _fates.Add(next.Id, nextFate);
        _fateOrder.Add(nextFate);
        ByAccount(debit).Add(nextFate);
        ByAccount(credit).Add(nextFate);
        return new ClientRequest(client, home, [t, next]);
    }

    internal void Record(Transfer transfer, CreateTransferResult result)
    {
        var fate = _fates[transfer.Id];
        fate.AnsweredAt = NextSequence();
        switch (result)
        {
            case CreateTransferResult.Created or CreateTransferResult.Exists:
                fate.Outcome = TransferOutcome.Created;
                fate.AcknowledgedAt = Math.Min(fate.AcknowledgedAt, fate.AnsweredAt);
                break;
            case >= CreateTransferResult.ExistsWithDifferentFlags and < CreateTransferResult.Exists:
                throw new SimulationFailureException($"transfer {transfer.Id} was retried unchanged but answered {result}");
            default:
                Invariant.Check(fate.Outcome != TransferOutcome.Created, "a transfer once acknowledged created is never answered with a failure");
                fate.Outcome = TransferOutcome.Failed;
                break;
        }

        fate.Status = result;
    }

    private ClientRequest Register(int client, int home, Transfer[] transfers, bool crossShard)
    {
        foreach (var transfer in transfers)
        {
            var fate = new TransferFate(transfer, home, crossShard);
            _fates.Add(transfer.Id, fate);
            _fateOrder.Add(fate);
            ByAccount(transfer.DebitAccountId).Add(fate);
            ByAccount(transfer.CreditAccountId).Add(fate);
        }

        return new ClientRequest(client, home, transfers);
    }

    private List<TransferFate> ByAccount(UInt128 accountId)
    {
        if (!_byAccount.TryGetValue(accountId, out var fates))
        {
            fates = [];
            _byAccount.Add(accountId, fates);
        }

        return fates;
    }

    /// <summary>Marks the request's transfers submitted (their first attempt reached a leader) now.</summary>
    internal void MarkSubmitted(ClientRequest request)
    {
        foreach (var transfer in request.Transfers)
        {
            var fate = _fates[transfer.Id];
            if (fate.SubmittedAt == long.MaxValue)
            {
                fate.SubmittedAt = NextSequence();
            }
        }
    }

    private (UInt128 Debit, UInt128 Credit) TwoAccounts(List<BankAccount> debitSide, List<BankAccount> creditSide)
    {
        while (true)
        {
            // Customers pay each other; now and then the bank pays a customer or a customer pays the bank.
            var debit = debitSide[_random.Chance(0.1) ? 0 : _random.Between(1, debitSide.Count)];
            var credit = creditSide[_random.Chance(0.1) ? 0 : _random.Between(1, creditSide.Count)];
            if (debit.Id != credit.Id)
            {
                return (debit.Id, credit.Id);
            }
        }
    }

    private UInt128 RandomAmount() => (UInt128)(ulong)_random.Between(1, (int)AmountMax + 1);

    private Transfer NewTransfer(int home, UInt128 debit, UInt128 credit, UInt128 amount) => new()
    {
        Id = NewId(home),
        DebitAccountId = debit,
        CreditAccountId = credit,
        Amount = amount,
        Ledger = LedgerId,
        Code = Code,
    };

    /// <summary>A random 128-bit id whose shard is <paramref name="shard"/> (expected S draws).</summary>
    private UInt128 NewId(int shard)
    {
        while (true)
        {
            var id = new UInt128(_random.NextUInt64(), _random.NextUInt64());
            if (id != UInt128.Zero && id != UInt128.MaxValue && ShardRouter.ShardOf(id, _shardCount) == shard && !_fates.ContainsKey(id))
            {
                return id;
            }
        }
    }
}
