using RaftLedger.Common;
using RaftLedger.Ledger;
using static RaftLedger.Ledger.Tests.LedgerFixture;

namespace RaftLedger.Ledger.Tests;

public sealed class CommandSnapshotQueryTests
{
    [Fact]
    public void Limits_relate_as_documented()
    {
        Assert.Equal(8189, LedgerLimits.BatchEventsMax);
        Assert.Equal(LedgerLimits.CommandHeaderBytes + (LedgerLimits.BatchEventsMax * LedgerLimits.RecordSizeBytes), LedgerLimits.CommandBytesMax);
        Assert.True(LedgerLimits.CommandBytesMax <= 1024 * 1024, "a full batch fits in a 1 MiB message");
        Assert.Equal(LedgerLimits.BatchEventsMax, LedgerLimits.QueryResultsMax);
        Assert.True((ulong)uint.MaxValue * LedgerLimits.NanosecondsPerSecond < LedgerLimits.TimestampMax, "the largest timeout fits below 2^63 ns");
    }

    [Fact]
    public void Codec_round_trips_every_field_in_128_bytes()
    {
        var account = new Account { Id = UInt128.MaxValue - 1, DebitsPending = 1, DebitsPosted = 2, CreditsPending = 3, CreditsPosted = UInt128.MaxValue, UserData128 = 5, UserData64 = 6, UserData32 = 7, Ledger = 8, Code = 9, Flags = AccountFlags.History | AccountFlags.Closed, Timestamp = 11 };
        var transfer = new Transfer { Id = 1, DebitAccountId = 2, CreditAccountId = 3, Amount = UInt128.MaxValue, PendingId = 5, UserData128 = 6, UserData64 = 7, UserData32 = 8, TimeoutSeconds = 9, Ledger = 10, Code = 11, Flags = TransferFlags.ClosingCredit, Timestamp = 13 };
        var bytes = new byte[LedgerLimits.RecordSizeBytes];
        LedgerCodec.WriteAccount(bytes, account);
        Assert.Equal(account, LedgerCodec.ReadAccount(bytes));
        Assert.Equal(8u, BitConverter.ToUInt32(bytes, 112));
        LedgerCodec.WriteTransfer(bytes, transfer);
        Assert.Equal(transfer, LedgerCodec.ReadTransfer(bytes));
        Assert.Equal(9u, BitConverter.ToUInt32(bytes, 108));
    }

    [Fact]
    public void Encoded_commands_apply_exactly_like_typed_calls()
    {
        var typed = new LedgerFixture();
        var encoded = new LedgerFixture();
        Account[] accounts = [NewAccount(1), NewAccount(2, flags: AccountFlags.Linked), NewAccount(3), NewAccount(0)];
        Transfer[] transfers = [NewTransfer(10, 1, 2, 5), NewTransfer(11, 1, 9, 5), NewTransfer(12, 2, 3, 5, TransferFlags.Pending | TransferFlags.Linked), Post(13, 12, 2)];

        var accountResults = new CreateAccountResult[accounts.Length];
        typed.Ledger.CreateAccounts(accounts, 1000, accountResults);
        var raw = new byte[LedgerLimits.BatchEventsMax];
        var applied = encoded.Ledger.Apply(LedgerCommand.EncodeCreateAccounts(1000, accounts), raw);
        Assert.Equal(new LedgerApplyResult(LedgerOperation.CreateAccounts, accounts.Length), applied);
        Assert.Equal(accountResults, raw[..accounts.Length].Select(b => (CreateAccountResult)b));

        var transferResults = new CreateTransferResult[transfers.Length];
        typed.Ledger.CreateTransfers(transfers, 2000, transferResults);
        applied = encoded.Ledger.Apply(LedgerCommand.EncodeCreateTransfers(2000, transfers), raw, appliedIndex: 7);
        Assert.Equal(new LedgerApplyResult(LedgerOperation.CreateTransfers, transfers.Length), applied);
        Assert.Equal(transferResults, raw[..transfers.Length].Select(b => (CreateTransferResult)b));
        Assert.Equal([CreateTransferResult.Created, CreateTransferResult.CreditAccountNotFound, CreateTransferResult.Created, CreateTransferResult.Created], transferResults);
        Assert.Equal(typed.Ledger.Fingerprint(), encoded.Ledger.Fingerprint());
    }

    [Fact]
    public void Malformed_command_is_rejected_as_corrupt_data()
    {
        var f = new LedgerFixture();
        var command = LedgerCommand.EncodeCreateTransfers(1000, [NewTransfer(10, 1, 2, 5)]);
        var results = new byte[1];
        Assert.Throws<InvalidDataException>(() => f.Ledger.Apply(command.AsSpan(0, command.Length - 1), results));
        command[0] = 99;
        Assert.Throws<InvalidDataException>(() => f.Ledger.Apply(command, results));
        Assert.Equal(0UL, f.Ledger.LastTimestamp);
    }

    [Fact]
    public void Oversized_batch_is_refused_with_a_clear_message()
    {
        var f = new LedgerFixture();
        var transfers = new Transfer[LedgerLimits.BatchEventsMax + 1];
        var error = Assert.Throws<ArgumentException>(() => LedgerCommand.EncodeCreateTransfers(1_000_000, transfers));
        Assert.Contains("at most 8189", error.Message);
        Assert.Throws<ArgumentException>(() => f.Ledger.CreateTransfers(transfers, 1_000_000, new CreateTransferResult[transfers.Length]));
    }

    [Fact]
    public void Events_get_strictly_increasing_timestamps_ending_at_the_batch_timestamp()
    {
        var f = new LedgerFixture();
        f.CreatePlainAccounts(2);
        var batchTimestamp = f.Ledger.LastTimestamp + 5_000_000;
        f.Ledger.CreateTransfers([NewTransfer(10, 1, 2, 1), NewTransfer(11, 1, 2, 1), NewTransfer(12, 1, 2, 1)], batchTimestamp, new CreateTransferResult[3]);
        Assert.Equal(batchTimestamp - 2, f.TransferOf(10).Timestamp);
        Assert.Equal(batchTimestamp - 1, f.TransferOf(11).Timestamp);
        Assert.Equal(batchTimestamp, f.TransferOf(12).Timestamp);
        Assert.Equal(batchTimestamp, f.Ledger.LastTimestamp);
    }

    [Fact]
    public void Batch_timestamp_that_does_not_advance_past_the_last_event_is_a_bug()
    {
        var f = new LedgerFixture();
        f.CreatePlainAccounts(2);
        var last = f.Ledger.LastTimestamp;
        var before = f.Ledger.Fingerprint();
        Assert.Throws<InvariantViolationException>(() => f.Ledger.CreateTransfers([NewTransfer(10, 1, 2, 1)], last, new CreateTransferResult[1]));
        Assert.Throws<InvariantViolationException>(() => f.Ledger.CreateTransfers([NewTransfer(10, 1, 2, 1), NewTransfer(11, 1, 2, 1)], last + 1, new CreateTransferResult[2]));
        Assert.Equal(before, f.Ledger.Fingerprint());
        f.Ledger.CreateTransfers([NewTransfer(10, 1, 2, 1), NewTransfer(11, 1, 2, 1)], last + 2, new CreateTransferResult[2]);
    }

    [Fact]
    public void Snapshot_restores_the_same_state_and_the_ledger_carries_on_identically()
    {
        var original = new LedgerFixture();
        Assert.All(original.CreateAccounts(NewAccount(1, flags: AccountFlags.History), NewAccount(2), NewAccount(3, flags: AccountFlags.DebitsMustNotExceedCredits)), r => Assert.Equal(CreateAccountResult.Created, r));
        var pending = NewTransfer(10, 1, 2, 7, TransferFlags.Pending);
        pending.TimeoutSeconds = 3;
        original.CreateTransfers(pending, NewTransfer(11, 3, 1, 1), NewTransfer(12, 2, 1, 4), NewTransfer(13, 1, 2, 9, TransferFlags.Pending));
        original.CreateTransfer(Void(14, 13));

        using var stream = new MemoryStream();
        original.Ledger.WriteSnapshot(stream);
        stream.Position = 0;
        var copy = new LedgerFixture();
        copy.CreatePlainAccounts(1);
        copy.Ledger.RestoreSnapshot(stream);
        Assert.Equal(original.Ledger.Fingerprint(), copy.Ledger.Fingerprint());
        Assert.Equal(original.Ledger.LastTimestamp, copy.Ledger.LastTimestamp);

        // After restore both expire the same reservation and accept the same batch.
        original.AdvanceSeconds(3);
        copy.ClockNanoseconds = original.ClockNanoseconds;
        var batch = new[] { NewTransfer(11, 3, 1, 1), NewTransfer(20, 1, 2, 1), Post(21, 10, 0) };
        Assert.Equal(original.CreateTransfers(batch), copy.CreateTransfers(batch));
        Assert.Equal(PendingStatus.Expired, copy.Ledger.GetPendingStatus(10));
        Assert.Equal(original.Ledger.Fingerprint(), copy.Ledger.Fingerprint());
    }

    [Fact]
    public void Corrupt_or_truncated_snapshot_is_refused()
    {
        var f = new LedgerFixture();
        f.CreatePlainAccounts(3);
        f.CreateTransfer(NewTransfer(10, 1, 2, 5));
        using var stream = new MemoryStream();
        f.Ledger.WriteSnapshot(stream);
        var bytes = stream.ToArray();

        var flipped = (byte[])bytes.Clone();
        flipped[40] ^= 1;
        Assert.Throws<InvalidDataException>(() => new LedgerFixture().Ledger.RestoreSnapshot(new MemoryStream(flipped)));
        Assert.Throws<InvalidDataException>(() => new LedgerFixture().Ledger.RestoreSnapshot(new MemoryStream(bytes[..^5])));
        Assert.Throws<InvalidDataException>(() => new LedgerFixture().Ledger.RestoreSnapshot(new MemoryStream(new byte[20])));
    }

    [Fact]
    public void Fingerprint_is_equal_for_equal_states_and_changes_with_any_change()
    {
        var a = new LedgerFixture();
        var b = new LedgerFixture();
        a.CreateAccounts(NewAccount(1), NewAccount(2));
        b.CreateAccounts(NewAccount(2), NewAccount(1));
        Assert.NotEqual(a.Ledger.Fingerprint(), b.Ledger.Fingerprint()); // timestamps differ per position

        var c = new LedgerFixture();
        var d = new LedgerFixture();
        c.CreateAccounts(NewAccount(1), NewAccount(2));
        d.CreateAccounts(NewAccount(1), NewAccount(2));
        Assert.Equal(c.Ledger.Fingerprint(), d.Ledger.Fingerprint());
        d.CreateTransfer(NewTransfer(5, 9, 1, 1)); // a transient failure changes state: the id is burnt
        Assert.NotEqual(c.Ledger.Fingerprint(), d.Ledger.Fingerprint());
    }

    [Fact]
    public void Account_transfers_are_filtered_by_side_time_and_limit()
    {
        var f = new LedgerFixture();
        f.CreatePlainAccounts(3);
        f.CreateTransfers(NewTransfer(10, 1, 2, 1), NewTransfer(11, 2, 1, 2), NewTransfer(12, 1, 3, 3), NewTransfer(13, 2, 3, 4), NewTransfer(14, 3, 1, 5));
        UInt128[] Ids(AccountFilter filter)
        {
            var into = new Transfer[10];
            var count = f.Ledger.GetAccountTransfers(filter, into);
            return into[..count].Select(t => t.Id).ToArray();
        }

        var all = new AccountFilter { AccountId = 1, Limit = 10, Flags = AccountFilterFlags.Debits | AccountFilterFlags.Credits };
        Assert.Equal([10, 11, 12, 14], Ids(all));
        Assert.Equal([10, 12], Ids(all with { Flags = AccountFilterFlags.Debits }));
        Assert.Equal([14, 11], Ids(all with { Flags = AccountFilterFlags.Credits | AccountFilterFlags.Reversed }));
        Assert.Equal([10, 11], Ids(all with { Limit = 2 }));
        Assert.Equal([14, 12], Ids(all with { Limit = 2, Flags = all.Flags | AccountFilterFlags.Reversed }));
        var t11 = f.TransferOf(11).Timestamp;
        var t12 = f.TransferOf(12).Timestamp;
        Assert.Equal([11, 12], Ids(all with { TimestampMin = t11, TimestampMax = t12 }));

        // Invalid filters give nothing.
        Assert.Empty(Ids(all with { Flags = AccountFilterFlags.None }));
        Assert.Empty(Ids(all with { Limit = 0 }));
        Assert.Empty(Ids(all with { AccountId = 0 }));
        Assert.Empty(Ids(all with { TimestampMin = t12, TimestampMax = t11 }));
        Assert.Empty(Ids(all with { AccountId = 77 }));
    }

    [Fact]
    public void Balance_history_is_kept_only_for_history_accounts()
    {
        var f = new LedgerFixture();
        Assert.All(f.CreateAccounts(NewAccount(1, flags: AccountFlags.History), NewAccount(2)), r => Assert.Equal(CreateAccountResult.Created, r));
        f.CreateTransfers(NewTransfer(10, 1, 2, 5), NewTransfer(11, 2, 1, 3, TransferFlags.Pending));
        f.CreateTransfer(Post(12, 11, 2));
        var into = new AccountBalance[10];
        var filter = new AccountFilter { AccountId = 1, Limit = 10, Flags = AccountFilterFlags.Debits | AccountFilterFlags.Credits };
        Assert.Equal(3, f.Ledger.GetAccountBalances(filter, into));
        Assert.Equal((UInt128)5, into[0].DebitsPosted);
        Assert.Equal((UInt128)3, into[1].CreditsPending);
        Assert.Equal((UInt128)2, into[2].CreditsPosted);
        Assert.Equal(UInt128.Zero, into[2].CreditsPending);
        Assert.Equal(f.TransferOf(12).Timestamp, into[2].Timestamp);
        Assert.Equal(1, f.Ledger.GetAccountBalances(filter with { Limit = 1, Flags = AccountFilterFlags.Reversed }, into));
        Assert.Equal((UInt128)2, into[0].CreditsPosted);
        Assert.Equal(0, f.Ledger.GetAccountBalances(filter with { AccountId = 2 }, into));
    }

    [Fact]
    public void Lookups_return_found_records_in_request_order()
    {
        var f = new LedgerFixture();
        f.CreatePlainAccounts(3);
        f.CreateTransfers(NewTransfer(10, 1, 2, 1), NewTransfer(11, 2, 3, 1));
        var accounts = new Account[3];
        Assert.Equal(2, f.Ledger.LookupAccounts([3, 99, 1], accounts));
        Assert.Equal((UInt128)3, accounts[0].Id);
        Assert.Equal((UInt128)1, accounts[1].Id);
        var transfers = new Transfer[2];
        Assert.Equal(1, f.Ledger.LookupTransfers([11, 12], transfers));
        Assert.Equal((UInt128)11, transfers[0].Id);
    }
}
