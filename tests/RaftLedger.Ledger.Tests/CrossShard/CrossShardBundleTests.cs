using RaftLedger.Common.Placement;
using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>Messages for one shard go out together, one bundle per destination per round, and arrive as if sent one by one.</summary>
public sealed class CrossShardBundleTests
{
    private static CrossShardMessage Finish(UInt128 transactionId) =>
        new(CrossShardMessageKind.Finish, 0, 0, transactionId) { Decision = CrossShardDecision.Committed };

    [Fact]
    public void A_bundle_splits_into_the_messages_it_was_made_of()
    {
        var messages = new List<byte[]> { Finish(1).Encode(), Finish(2).Encode(), Finish(3).Encode() };
        var bundle = CrossShardBundle.Encode(messages, 0, 3);
        Assert.True(CrossShardBundle.IsBundle(bundle));
        Assert.False(CrossShardBundle.IsBundle(messages[0]));
        var ranges = new List<Range>();
        Assert.True(CrossShardBundle.TrySplit(bundle, ranges));
        Assert.Equal(3, ranges.Count);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(messages[i], bundle[ranges[i]]);
            Assert.True(CrossShardMessage.TryDecode(bundle[ranges[i]], out var decoded));
            Assert.Equal((UInt128)(i + 1), decoded.TransactionId);
        }

        // A bundle is not a message of its own, so an old reader drops it rather than misreading it.
        Assert.False(CrossShardMessage.TryDecode(bundle, out _));
    }

    [Fact]
    public void Malformed_bundles_are_refused()
    {
        var messages = new List<byte[]> { Finish(1).Encode(), Finish(2).Encode() };
        var bundle = CrossShardBundle.Encode(messages, 0, 2);
        var ranges = new List<Range>();
        Assert.False(CrossShardBundle.TrySplit(bundle.AsSpan(0, bundle.Length - 1), ranges), "truncated");
        Assert.False(CrossShardBundle.TrySplit([.. bundle, 0], ranges), "trailing byte");
        var oneMessage = (byte[])bundle.Clone();
        oneMessage[2] = 1;
        Assert.False(CrossShardBundle.TrySplit(oneMessage, ranges), "count says 1 but two messages follow");
        var tooLong = (byte[])bundle.Clone();
        tooLong[CrossShardBundle.HeaderBytes] = 0xFF;
        Assert.False(CrossShardBundle.TrySplit(tooLong, ranges), "a length past the end");
        Assert.True(CrossShardBundle.TrySplit(bundle, ranges));
    }

    [Fact]
    public void Bundles_hold_as_many_messages_as_fit_the_message_bound()
    {
        var finish = Finish(1).Encode();
        var wanted = Math.Min((CrossShardLimits.MessageBytesMax - CrossShardBundle.HeaderBytes) / (CrossShardBundle.ItemHeaderBytes + finish.Length), ushort.MaxValue);
        var messages = Enumerable.Repeat(finish, wanted + 100).ToList();
        var fitting = CrossShardBundle.CountFitting(messages, 0);
        Assert.Equal(wanted, fitting);
        Assert.True(CrossShardBundle.Encode(messages, 0, fitting).Length <= CrossShardLimits.MessageBytesMax);

        // A message as large as the bound goes alone (unbundled).
        var full = new CrossShardMessage(CrossShardMessageKind.Prepare, 0, 0, 1)
        {
            Legs = Enumerable.Range(0, CrossShardLimits.TransactionEventsMax * 2).Select(_ => new Leg(0, LegSides.Debit, default) { Guard = BalancingGuard.Clamped }).ToArray(), // balancing legs: the largest
        }.Encode();
        Assert.Equal(1, CrossShardBundle.CountFitting([full, finish], 0));
        Assert.Equal(2, CrossShardBundle.CountFitting([finish, finish, full], 0));
    }

    [Fact]
    public void Prepares_of_one_round_to_one_shard_go_as_one_bundle_and_share_one_proposal_there()
    {
        const int shardCount = 2;
        var home = new CrossShardDriver(0, shardCount, new LedgerStateMachine(new InMemoryLedgerStore()), CrossShardOptions.Default);
        var participant = new CrossShardDriver(1, shardCount, new LedgerStateMachine(new InMemoryLedgerStore()), CrossShardOptions.Default);
        home.OnRoleChanged(true, 1);
        participant.OnRoleChanged(true, 1);
        var ids = IdsOn(0, shardCount, 3);
        var accounts = IdsOn(1, shardCount, 2);
        var transfers = ids.Select(id => LedgerFixture.NewTransfer(id, accounts[0], accounts[1], 5)).ToArray();
        home.Submit(1, transfers);

        var sends = TakeAll(home).OfType<SendAction>().ToList();
        var send = Assert.Single(sends);
        Assert.Equal(1, send.ToShard);
        Assert.True(CrossShardBundle.IsBundle(send.Message));
        var ranges = new List<Range>();
        Assert.True(CrossShardBundle.TrySplit(send.Message, ranges));
        Assert.Equal(3, ranges.Count);

        participant.OnMessage(0, send.Message);
        Assert.Equal(0, participant.MessagesDropped);
        var proposals = TakeAll(participant).OfType<ProposeAction>().ToList();
        var proposal = Assert.Single(proposals);
        Assert.Equal(LedgerOperation.CrossShardPrepare, (LedgerOperation)proposal.Command[1]);
        Assert.Equal(3, BitConverter.ToUInt16(proposal.Command, LedgerLimits.CommandHeaderBytes));

        // A corrupt bundle is dropped whole: nothing of it is taken.
        var other = new CrossShardDriver(1, shardCount, new LedgerStateMachine(new InMemoryLedgerStore()), CrossShardOptions.Default);
        other.OnRoleChanged(true, 1);
        other.OnMessage(0, send.Message.AsSpan(0, send.Message.Length - 1));
        Assert.Equal(1, other.MessagesDropped);
        Assert.Empty(TakeAll(other));
    }

    private static List<CrossShardAction> TakeAll(CrossShardDriver driver)
    {
        var actions = new List<CrossShardAction>();
        while (driver.TryTakeAction(out var action))
        {
            actions.Add(action);
        }

        return actions;
    }

    private static UInt128[] IdsOn(int shard, int shardCount, int count)
    {
        var ids = new List<UInt128>();
        for (UInt128 id = 1_000; ids.Count < count; id++)
        {
            if (ShardRouter.ShardOf(id, shardCount) == shard)
            {
                ids.Add(id);
            }
        }

        return [.. ids];
    }
}
