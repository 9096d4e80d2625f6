using Google.Protobuf;
using Google.Protobuf.Reflection;
using RaftLedger.Ledger;
using Wire = RaftLedger.Node.Api.Wire;

namespace RaftLedger.Node.Tests.Api;

/// <summary>
/// The record conversions the node and the client SDK share (<see cref="Wire.WireRecords"/>): every field survives the
/// round trip, and every field of the proto message is filled, so a field added to ledger.proto and forgotten in the
/// conversion fails here.
/// </summary>
public sealed class WireRecordsTests
{
    private const int Seed = 21;
    private const int Rounds = 200;

    [Fact]
    public void Accounts_round_trip_and_fill_every_proto_field()
    {
        var random = new Random(Seed);
        for (var round = 0; round < Rounds; round++)
        {
            var account = new Account
            {
                Id = Wide(random),
                DebitsPending = Wide(random),
                DebitsPosted = Wide(random),
                CreditsPending = Wide(random),
                CreditsPosted = Wide(random),
                UserData128 = Wide(random),
                UserData64 = Long(random),
                UserData32 = Int(random),
                Ledger = Int(random),
                Code = Short(random),
                Flags = (AccountFlags)Short(random),
                Timestamp = Long(random),
            };
            var message = Wire.WireRecords.ToWire(account);
            AssertEveryFieldSet(message, $"seed {Seed} round {round}");
            Assert.Equal(account, Wire.WireRecords.FromWire(message));
        }
    }

    [Fact]
    public void Transfers_round_trip_and_fill_every_proto_field()
    {
        var random = new Random(Seed);
        for (var round = 0; round < Rounds; round++)
        {
            var transfer = new Transfer
            {
                Id = Wide(random),
                DebitAccountId = Wide(random),
                CreditAccountId = Wide(random),
                Amount = Wide(random),
                PendingId = Wide(random),
                UserData128 = Wide(random),
                UserData64 = Long(random),
                UserData32 = Int(random),
                TimeoutSeconds = Int(random),
                Ledger = Int(random),
                Code = Short(random),
                Flags = (TransferFlags)Short(random),
                Timestamp = Long(random),
            };
            var message = Wire.WireRecords.ToWire(transfer);
            AssertEveryFieldSet(message, $"seed {Seed} round {round}");
            Assert.Equal(transfer, Wire.WireRecords.FromWire(message));
        }
    }

    [Fact]
    public void Balances_round_trip_and_fill_every_proto_field()
    {
        var random = new Random(Seed);
        for (var round = 0; round < Rounds; round++)
        {
            var balance = new AccountBalance
            {
                DebitsPending = Wide(random),
                DebitsPosted = Wide(random),
                CreditsPending = Wide(random),
                CreditsPosted = Wide(random),
                Timestamp = Long(random),
            };
            var message = Wire.WireRecords.ToWire(balance);
            AssertEveryFieldSet(message, $"seed {Seed} round {round}");
            Assert.Equal(balance, Wire.WireRecords.FromWire(message));
        }
    }

    /// <summary>Every scalar field is non-zero: the values above are drawn non-zero in every part.</summary>
    private static void AssertEveryFieldSet(IMessage message, string replay)
    {
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            Assert.True(field.FieldType is FieldType.Fixed64 or FieldType.UInt64 or FieldType.UInt32 or FieldType.Fixed32,
                $"{message.Descriptor.Name}.{field.Name} is a {field.FieldType}: extend this test for it");
            var value = Convert.ToUInt64(field.Accessor.GetValue(message), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(value != 0, $"{message.Descriptor.Name}.{field.Name} was not filled by the conversion ({replay})");
        }
    }

    private static UInt128 Wide(Random random) => new(Long(random), Long(random));

    private static ulong Long(Random random) => (ulong)random.NextInt64(1, long.MaxValue) | (1UL << 63);

    private static uint Int(Random random) => (uint)random.Next(1, int.MaxValue);

    private static ushort Short(Random random) => (ushort)random.Next(1, ushort.MaxValue + 1);
}
