using BenchmarkDotNet.Attributes;
using RaftLedger.Benchmarks.Ledger;
using RaftLedger.Common.Placement;
using RaftLedger.Ledger;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Benchmarks.CrossShard;

/// <summary>
/// The protocol's CPU cost for one linked chain across shards, all shards in this thread on in-memory stores: Submit
/// at the coordinator, then every Prepare, Decide and Finish command applied (and every message delivered at once)
/// until the client is answered and every participant finished. No Raft, no network, no disk: what one chain costs the
/// ledgers and drivers of all its shards together. Time is per chain.
/// </summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
public class CrossShardChainBenchmarks
{
    private Shard[] shards = [];
    private UInt128[] accounts = [];
    private ulong nextId = 1_000_000;
    private ulong nowNs = 1_000_000_000_000;

    /// <summary>Events in the chain: the old bound, and a full request.</summary>
    [Params(64, 8189)]
    public int ChainEvents { get; set; }

    /// <summary>Shards the chain's accounts and ids are spread over.</summary>
    [Params(2, 8)]
    public int ShardCount { get; set; }

    [GlobalSetup]
    public void SetUp()
    {
        shards = new Shard[ShardCount];
        for (var s = 0; s < ShardCount; s++)
        {
            var ledger = new LedgerStateMachine(new InMemoryLedgerStore(accountCapacity: 64, transferCapacity: 1 << 20));
            shards[s] = new Shard(ledger, new CrossShardDriver(s, ShardCount, ledger, CrossShardOptions.Default));
            shards[s].Driver.OnRoleChanged(true, 1);
        }

        // Two accounts per shard.
        accounts = new UInt128[2 * ShardCount];
        var found = 0;
        for (UInt128 id = 1; found < accounts.Length; id++)
        {
            var shard = ShardRouter.ShardOf(id, ShardCount);
            if (accounts.Count(a => a != 0 && ShardRouter.ShardOf(a, ShardCount) == shard) < 2)
            {
                accounts[found++] = id;
                var results = new CreateAccountResult[1];
                shards[shard].Ledger.CreateAccounts([new Account { Id = id, Ledger = 1, Code = 1 }], NextTimestamp(shards[shard], 1), results);
            }
        }
    }

    [Benchmark]
    public int OneChainAcrossShards()
    {
        var chain = new Transfer[ChainEvents];
        for (var i = 0; i < chain.Length; i++)
        {
            chain[i] = new Transfer
            {
                Id = IdOn(i % ShardCount),
                DebitAccountId = accounts[i % accounts.Length],
                CreditAccountId = accounts[(i + 3) % accounts.Length],
                Amount = 1,
                Ledger = 1,
                Code = 1,
                Flags = i < chain.Length - 1 ? TransferFlags.Linked : TransferFlags.None,
            };
        }

        // Route to the coordinator: the home of the first event (shard 0).
        shards[0].Driver.Submit(1, chain);
        var answered = 0;
        for (var round = 0; round < 10_000 && (answered == 0 || Busy()); round++)
        {
            nowNs += 1_000_000;
            for (var s = 0; s < shards.Length; s++)
            {
                shards[s].Driver.Tick(nowNs);
                answered += Drain(s);
            }
        }

        if (answered == 0 || Busy())
        {
            throw new InvalidOperationException("the chain was not answered and finished");
        }

        return answered;
    }

    private bool Busy()
    {
        foreach (var shard in shards)
        {
            if (shard.Driver.CoordinatorTransactionCount != 0 || shard.Driver.PreparedTransactionCount != 0 || shard.Inbox.Count != 0)
            {
                return true;
            }
        }

        return false;
    }

    private int Drain(int s)
    {
        var shard = shards[s];
        var answered = 0;
        while (shard.Inbox.TryDequeue(out var message))
        {
            shard.Driver.OnMessage(message.From, message.Bytes);
        }

        while (shard.Driver.TryTakeAction(out var action))
        {
            switch (action)
            {
                case ProposeAction propose:
                    LedgerCommand.SetBatchTimestamp(propose.Command, NextTimestamp(shard, LedgerCommand.TimestampCount(propose.Command)));
                    var applied = shard.Ledger.Apply(propose.Command, shard.Results);
                    shard.Driver.OnProposalApplied(propose.Token, shard.Results.AsSpan(0, applied.EventCount));
                    break;
                case SendAction send:
                    shards[send.ToShard].Inbox.Enqueue((s, send.Message));
                    break;
                case CompleteAction complete:
                    answered += complete.Results.All(r => r == CreateTransferResult.Created) ? 1
                        : throw new InvalidOperationException($"the chain was refused: {complete.Results.First(r => r != CreateTransferResult.Created)}");
                    break;
                case FailAction fail:
                    throw new InvalidOperationException(fail.Detail);
            }
        }

        return answered;
    }

    private UInt128 IdOn(int shard)
    {
        while (ShardRouter.ShardOf(++nextId, ShardCount) != shard)
        {
        }

        return nextId;
    }

    private ulong NextTimestamp(Shard shard, int count) => Math.Max(nowNs, shard.Ledger.LastTimestamp + (ulong)Math.Max(count, 1));

    private sealed class Shard(LedgerStateMachine ledger, CrossShardDriver driver)
    {
        public LedgerStateMachine Ledger { get; } = ledger;

        public CrossShardDriver Driver { get; } = driver;

        public Queue<(int From, byte[] Bytes)> Inbox { get; } = new();

        public byte[] Results { get; } = new byte[LedgerLimits.ResultBytesMax];
    }
}
