using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>The coordinator's clamp on a snapshot, and the byte forms that carry it.</summary>
public sealed class CrossShardBalancingClampTests
{
    private static Dictionary<UInt128, AccountSnapshot> Snapshot(params (UInt128 Id, UInt128 DebitsPosted, UInt128 CreditsPosted)[] accounts)
    {
        var snapshot = new Dictionary<UInt128, AccountSnapshot>();
        foreach (var (id, debits, credits) in accounts)
        {
            var account = LedgerFixture.NewAccount(id);
            account.DebitsPosted = debits;
            account.CreditsPosted = credits;
            snapshot.Add(id, new AccountSnapshot(id, true, account));
        }

        return snapshot;
    }

    [Theory]
    [InlineData(TransferFlags.BalancingDebit, 1000, 70, BalancingGuard.Clamped | BalancingGuard.DebitBinds)] // a: 100 - 30
    [InlineData(TransferFlags.BalancingCredit, 1000, 40, BalancingGuard.Clamped | BalancingGuard.CreditBinds)] // b: 50 - 10
    [InlineData(TransferFlags.BalancingDebit | TransferFlags.BalancingCredit, 1000, 40, BalancingGuard.Clamped | BalancingGuard.CreditBinds)]
    [InlineData(TransferFlags.BalancingDebit | TransferFlags.BalancingCredit, 25, 25, BalancingGuard.Clamped)] // the request binds
    public void Clamp_takes_the_smallest_headroom_and_marks_the_side_that_bound_it(TransferFlags flags, int requested, int expected, BalancingGuard guard)
    {
        var snapshot = Snapshot((1, 30, 100), (2, 50, 10));
        Transfer[] events = [LedgerFixture.NewTransfer(9, 1, 2, (UInt128)requested, flags)];
        var (guards, asked) = CrossShardBalancing.Clamp(events, 1, snapshot, _ => null);
        Assert.Equal((UInt128)expected, events[0].Amount);
        Assert.Equal(guard, guards[0]);
        Assert.Equal((UInt128)requested, asked[0]);
    }

    [Fact]
    public void Clamp_applies_earlier_events_of_the_chain_and_a_missing_account_has_no_headroom()
    {
        var snapshot = Snapshot((1, 0, 100));
        Transfer[] events =
        [
            LedgerFixture.NewTransfer(9, 1, 2, 60, TransferFlags.Linked | TransferFlags.Pending), // reserves 60 on a
            LedgerFixture.NewTransfer(10, 1, 2, 1000, TransferFlags.Linked | TransferFlags.BalancingDebit), // 100 - 60
            LedgerFixture.NewTransfer(11, 3, 1, 1000, TransferFlags.BalancingDebit), // account 3 is missing
        ];
        var (guards, _) = CrossShardBalancing.Clamp(events, 3, snapshot, _ => null);
        Assert.Equal(((UInt128)60, (UInt128)40, UInt128.Zero), (events[0].Amount, events[1].Amount, events[2].Amount));
        Assert.Equal(BalancingGuard.None, guards[0]);
        Assert.Equal(BalancingGuard.Clamped | BalancingGuard.DebitBinds, guards[2]);
        Assert.Equal((UInt128)100, snapshot[1].Account.DebitsPosted + snapshot[1].Account.DebitsPending);
    }

    [Fact]
    public void Snapshot_messages_and_guarded_legs_round_trip_and_fit_the_message_bound()
    {
        var ids = Enumerable.Range(1, CrossShardMessage.SnapshotAccountsMax).Select(i => (UInt128)i).ToArray();
        var ask = new CrossShardMessage(CrossShardMessageKind.Snapshot, 1, 1, 7) { AccountIds = ids };
        Assert.True(CrossShardMessage.TryDecode(ask.Encode(), out var askDecoded));
        Assert.Equal(ids, askDecoded.AccountIds);

        var accounts = ids.Select(id => new AccountSnapshot(id, id % 2 == 0, id % 2 == 0 ? LedgerFixture.NewAccount(id) : default)).ToArray();
        var answer = new CrossShardMessage(CrossShardMessageKind.Snapshotted, 1, 2, 7) { Accounts = accounts }.Encode();
        Assert.True(answer.Length <= CrossShardLimits.MessageBytesMax);
        Assert.True(CrossShardMessage.TryDecode(answer, out var answerDecoded));
        Assert.Equal(accounts, answerDecoded.Accounts);

        var leg = new Leg(3, LegSides.Debit | LegSides.Id, LedgerFixture.NewTransfer(9, 1, 2, 40, TransferFlags.BalancingDebit))
        {
            Guard = BalancingGuard.Clamped | BalancingGuard.DebitBinds,
            Requested = 1000,
        };
        var prepare = new CrossShardMessage(CrossShardMessageKind.Prepare, 0, 0, 7) { Legs = [leg] };
        Assert.True(CrossShardMessage.TryDecode(prepare.Encode(), out var prepareDecoded));
        Assert.Equal(leg, prepareDecoded.Legs[0]);
        Assert.Equal((UInt128)1000, prepareDecoded.Legs[0].AsRequested.Amount);
    }
}
