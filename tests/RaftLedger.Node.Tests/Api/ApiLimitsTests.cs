using System.Buffers;
using System.Text.Json;
using RaftLedger.Ledger;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Api;

public sealed class ApiLimitsTests
{
    [Fact]
    public void Largest_legal_transfer_batch_fits_in_the_body_limit()
    {
        var max = new Transfer
        {
            Id = UInt128.MaxValue,
            DebitAccountId = UInt128.MaxValue,
            CreditAccountId = UInt128.MaxValue,
            Amount = UInt128.MaxValue,
            PendingId = UInt128.MaxValue,
            UserData128 = UInt128.MaxValue,
            UserData64 = ulong.MaxValue,
            UserData32 = uint.MaxValue,
            TimeoutSeconds = uint.MaxValue,
            Ledger = uint.MaxValue,
            Code = ushort.MaxValue,
            Flags = Enum.GetValues<TransferFlags>().Aggregate((a, b) => a | b),
            Timestamp = ulong.MaxValue,
        };
        var batch = Enumerable.Repeat(max, ApiLimits.EventsPerBatchMax).ToArray();
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            JsonResponseWriter.WriteTransfers(writer, batch);
        }

        Assert.True(buffer.WrittenCount < ApiLimits.RequestBodyBytesMax, $"{buffer.WrittenCount} bytes");
        // The batch written is also a valid request: the reader takes back exactly what the writer wrote.
        var read = new List<Transfer>();
        Assert.True(JsonRequestReader.TryReadTransfers(buffer.WrittenSpan, read, out var error), error.Detail);
        Assert.Equal(ApiLimits.EventsPerBatchMax, read.Count);
        Assert.Equal(max, read[^1]);
    }

    [Fact]
    public void Api_batch_limit_matches_the_ledger_batch_and_query_limits()
    {
        Assert.Equal(LedgerLimits.BatchEventsMax, ApiLimits.EventsPerBatchMax);
        Assert.Equal(LedgerLimits.LookupIdsMax, ApiLimits.EventsPerBatchMax);
        Assert.True(ApiLimits.QueryRowsMax <= LedgerLimits.QueryResultsMax);
        Assert.InRange(ApiLimits.QueryRowsDefault, 1, ApiLimits.QueryRowsMax);
    }
}
