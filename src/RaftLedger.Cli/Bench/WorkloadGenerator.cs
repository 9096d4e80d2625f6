using RaftLedger.Common;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Raft;

namespace RaftLedger.Cli.Bench;

/// <summary>The shape of the payments: fractions of cross-shard and two-phase payments.</summary>
public readonly record struct WorkloadMix(double CrossShardFraction, double TwoPhaseFraction)
{
    public void Validate()
    {
        Invariant.Check(CrossShardFraction >= 0 && CrossShardFraction <= 1);
        Invariant.Check(TwoPhaseFraction >= 0 && TwoPhaseFraction <= 1);
    }
}

/// <summary>What one <see cref="WorkloadGenerator.Fill"/> produced.</summary>
public readonly record struct FillResult(int Events, int Payments);

/// <summary>
/// One caller's stream of transfers, pure and seeded: the same seed, run id and sequence of calls
/// (including acknowledgements) give the same transfers (ids aside when callers share a sequence). Each batch is homed on one shard: every
/// event's debit account, and its id (so the cross-shard protocol's coordinator is the debit
/// account's shard, as the SDK's id generator does), live on it. A payment is cross-shard with
/// probability <see cref="WorkloadMix.CrossShardFraction"/> (its credit account is then on
/// another shard, decided with <see cref="ShardRouter"/>), and two-phase with probability
/// <see cref="WorkloadMix.TwoPhaseFraction"/>: a pending transfer, posted or voided (even odds) in
/// a later batch of the same shard once the caller acknowledged it created. Not thread-safe: one
/// generator per caller.
/// </summary>
public sealed class WorkloadGenerator
{
    /// <summary>Draws before falling back to a uniform pick when rejection sampling keeps missing.</summary>
    private const int DrawsMax = 64;

    private readonly AccountChooser chooser;
    private readonly WorkloadMix mix;
    private readonly DeterministicRandom random;
    private readonly BenchIdSequence ids;

    // Acknowledged pending transfers waiting for their post/void, per home shard; each at most PendingQueueLengthMax long.
    private readonly Queue<Transfer>[] resolvable;

    /// <param name="ids">The run's id sequence, shared by all its callers (see <see cref="BenchIdSequence"/>).</param>
    /// <param name="stream">This caller's index: gives it its own random stream.</param>
    public WorkloadGenerator(AccountChooser chooser, WorkloadMix mix, ulong seed, BenchIdSequence ids, int stream)
    {
        ArgumentNullException.ThrowIfNull(chooser);
        ArgumentNullException.ThrowIfNull(ids);
        mix.Validate();
        Invariant.Check(stream >= 0);
        this.chooser = chooser;
        this.mix = mix;
        random = new DeterministicRandom(seed ^ ((ulong)stream * 0x9E37_79B9_7F4A_7C15UL) ^ 0x5EED);
        this.ids = ids;
        resolvable = new Queue<Transfer>[chooser.ShardCount];
        for (var shard = 0; shard < resolvable.Length; shard++)
        {
            resolvable[shard] = new Queue<Transfer>();
        }
    }

    public long Payments { get; private set; }

    public long CrossShardPayments { get; private set; }

    public long PendingPayments { get; private set; }

    public long Posts { get; private set; }

    public long Voids { get; private set; }

    /// <summary>Acknowledged pendings never resolved because their queue was full.</summary>
    public long PendingsLeftOpen { get; private set; }

    /// <summary>The home shard of the next batch, with probability equal to the shard's share of account weight.</summary>
    public int NextShard() => chooser.NextShard(random);

    /// <summary>
    /// Fills <paramref name="batch"/> with events homed on <paramref name="shard"/>: first post/voids of
    /// acknowledged pendings of that shard, then at most <paramref name="paymentsMax"/> new payments.
    /// </summary>
    public FillResult Fill(int shard, Span<Transfer> batch, int paymentsMax)
    {
        Invariant.Check(shard >= 0 && shard < chooser.ShardCount);
        Invariant.Check(paymentsMax >= 0);
        var events = 0;
        var queue = resolvable[shard];
        while (events < batch.Length && queue.Count > 0)
        {
            batch[events++] = Resolve(queue.Dequeue(), shard);
        }

        var payments = 0;
        while (events < batch.Length && payments < paymentsMax)
        {
            batch[events++] = Payment(shard);
            payments++;
        }

        return new FillResult(events, payments);
    }

    /// <summary>Tells the generator how a transfer it made ended; created pendings become resolvable.</summary>
    public void Acknowledge(in Transfer transfer, bool created)
    {
        if (!created || (transfer.Flags & TransferFlags.Pending) == 0)
        {
            return;
        }

        var queue = resolvable[ShardRouter.ShardOf(transfer.DebitAccountId, chooser.ShardCount)];
        if (queue.Count >= BenchLimits.PendingQueueLengthMax)
        {
            PendingsLeftOpen++;
            return;
        }

        queue.Enqueue(transfer);
    }

    private Transfer Payment(int shard)
    {
        var debitRank = chooser.NextRankOnShard(random, shard);
        var cross = chooser.ShardCount > 1 && mix.CrossShardFraction > 0 && random.NextBool(mix.CrossShardFraction);
        var creditRank = cross ? OtherShardRank(shard) : SameShardRank(shard, debitRank);
        var pending = mix.TwoPhaseFraction > 0 && random.NextBool(mix.TwoPhaseFraction);
        Payments++;
        CrossShardPayments += cross ? 1 : 0;
        PendingPayments += pending ? 1 : 0;
        return new Transfer
        {
            Id = NewId(shard),
            DebitAccountId = chooser.Accounts.ByRank[debitRank],
            CreditAccountId = chooser.Accounts.ByRank[creditRank],
            Amount = (UInt128)(1 + random.NextInt(1000)),
            Ledger = BenchAccounts.Ledger,
            Code = BenchAccounts.Code,
            Flags = pending ? TransferFlags.Pending : TransferFlags.None,
        };
    }

    private Transfer Resolve(in Transfer pending, int shard)
    {
        var post = random.NextBool(0.5);
        Posts += post ? 1 : 0;
        Voids += post ? 0 : 1;
        return new Transfer
        {
            Id = NewId(shard),
            DebitAccountId = pending.DebitAccountId,
            CreditAccountId = pending.CreditAccountId,
            Amount = post ? pending.Amount : 0,
            PendingId = pending.Id,
            Ledger = pending.Ledger,
            Code = pending.Code,
            Flags = post ? TransferFlags.PostPendingTransfer : TransferFlags.VoidPendingTransfer,
        };
    }

    private int SameShardRank(int shard, int debitRank)
    {
        for (var draw = 0; draw < DrawsMax; draw++)
        {
            var rank = chooser.NextRankOnShard(random, shard);
            if (rank != debitRank)
            {
                return rank;
            }
        }

        // A very hot debit account: take the next account of the shard in rank order instead.
        return NextOnShardAfter(shard, debitRank);
    }

    private int OtherShardRank(int shard)
    {
        for (var draw = 0; draw < DrawsMax; draw++)
        {
            var rank = chooser.NextRank(random);
            if (chooser.Accounts.ShardByRank[rank] != shard)
            {
                return rank;
            }
        }

        var other = (shard + 1 + random.NextInt(chooser.ShardCount - 1)) % chooser.ShardCount;
        return chooser.NextRankOnShard(random, other);
    }

    private int NextOnShardAfter(int shard, int rank)
    {
        var shards = chooser.Accounts.ShardByRank;
        for (var step = 1; step < shards.Length; step++)
        {
            var candidate = (rank + step) % shards.Length;
            if (shards[candidate] == shard)
            {
                return candidate;
            }
        }

        throw new InvariantViolationException($"shard {shard} has only one account; the chooser requires {BenchLimits.AccountsPerShardMin}.");
    }

    /// <summary>A new id whose home shard is <paramref name="shard"/>: about ShardCount hashes per id.</summary>
    private UInt128 NewId(int shard)
    {
        while (true)
        {
            var id = ids.Next();
            if (ShardRouter.ShardOf(id, chooser.ShardCount) == shard)
            {
                return id;
            }
        }
    }
}
