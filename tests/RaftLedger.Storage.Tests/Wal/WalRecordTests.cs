using System.Text;
using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

public class WalRecordTests
{
    [Fact]
    public void Crc32c_matches_the_standard_check_value()
    {
        // The CRC-32C catalogue check value for "123456789".
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
        Assert.Equal(0u, Crc32C.Compute([]));
    }

    [Fact]
    public void Entry_record_round_trips_with_every_header_field()
    {
        var payload = WalTestData.Payload(7, 42, 3, 37);
        var buffer = new byte[WalRecord.StoredBytes(payload.Length)];
        var header = new WalRecordHeader(WalRecordKind.Entry, WalRecord.FlagEndOfAppend, EntryType.ConfChange, 99, 7, 3, 42);

        var stored = WalRecord.Write(buffer, 1, header, payload);

        Assert.Equal(0, stored % WalRecord.AlignmentBytes);
        Assert.True(WalRecord.TryRead(buffer, 1, 4096, out var read, out var length));
        Assert.Equal(header, read);
        Assert.Equal(WalRecord.HeaderBytes + payload.Length, length);
        Assert.True(buffer.AsSpan(WalRecord.HeaderBytes, payload.Length).SequenceEqual(payload));
    }

    [Fact]
    public void Any_flipped_bit_in_a_record_is_rejected()
    {
        var payload = WalTestData.Payload(1, 1, 1, 20);
        var clean = new byte[WalRecord.StoredBytes(payload.Length)];
        WalRecord.Write(clean, 1, new WalRecordHeader(WalRecordKind.Entry, 0, EntryType.Normal, 1, 1, 1, 1), payload);
        var length = WalRecord.HeaderBytes + payload.Length;
        for (var bit = 0; bit < length * 8; bit++)
        {
            var damaged = (byte[])clean.Clone();
            damaged[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.False(WalRecord.TryRead(damaged, 1, 4096, out _, out _), $"bit {bit} flip accepted");
        }
    }

    [Fact]
    public void A_record_is_valid_only_for_the_segment_it_was_sealed_for()
    {
        // Recycled segment files keep their old records: under the new sequence they must fail, every time.
        var payload = WalTestData.Payload(1, 1, 1, 40);
        var random = new Random(77);
        for (var trial = 0; trial < 2000; trial++)
        {
            var sealedFor = (ulong)random.NextInt64(1, uint.MaxValue);
            var readAs = trial % 2 == 0 ? sealedFor + 1 : (ulong)random.NextInt64(1, uint.MaxValue);
            var record = new byte[WalRecord.StoredBytes(payload.Length)];
            WalRecord.Write(record, sealedFor, new WalRecordHeader(WalRecordKind.Entry, 0, EntryType.Normal, 1, 1, 1, 1), payload);
            Assert.True(WalRecord.TryRead(record, sealedFor, 4096, out _, out _));
            Assert.Equal(readAs == sealedFor, WalRecord.TryRead(record, readAs, 4096, out _, out _));
        }
    }

    [Fact]
    public void A_record_cut_short_at_any_byte_is_rejected()
    {
        var payload = WalTestData.Payload(1, 1, 1, 40);
        var clean = new byte[WalRecord.StoredBytes(payload.Length)];
        WalRecord.Write(clean, 1, new WalRecordHeader(WalRecordKind.Entry, 0, EntryType.Normal, 1, 1, 1, 1), payload);
        for (var cut = 0; cut < WalRecord.HeaderBytes + payload.Length; cut++)
        {
            var torn = (byte[])clean.Clone();
            torn.AsSpan(cut).Clear();
            Assert.False(WalRecord.TryRead(torn, 1, 4096, out _, out _), $"record torn at byte {cut} accepted");
        }
    }

    [Fact]
    public void Adding_flags_keeps_the_record_valid()
    {
        var buffer = new byte[WalRecord.StoredBytes(0)];
        WalRecord.Write(buffer, 1, new WalRecordHeader(WalRecordKind.Entry, 0, EntryType.Normal, 1, 1, 1, 1), []);
        WalRecord.AddFlags(buffer, 1, WalRecord.FlagEndOfFlush);
        Assert.True(WalRecord.TryRead(buffer, 1, 4096, out var header, out _));
        Assert.True(header.EndsFlush);
        Assert.False(header.EndsAppend);
    }

    [Fact]
    public void A_record_longer_than_the_limit_is_rejected()
    {
        var payload = new byte[200];
        var buffer = new byte[WalRecord.StoredBytes(payload.Length)];
        WalRecord.Write(buffer, 1, new WalRecordHeader(WalRecordKind.Entry, 0, EntryType.Normal, 1, 1, 1, 1), payload);
        Assert.False(WalRecord.TryRead(buffer, 1, WalRecord.HeaderBytes + 199, out _, out _));
        Assert.True(WalRecord.TryRead(buffer, 1, WalRecord.HeaderBytes + 200, out _, out _));
    }

    [Fact]
    public void Conf_state_and_hard_state_payloads_round_trip()
    {
        var conf = new ConfState([1, 2, 3], [4], [1, 2, 5], [6], true);
        var bytes = new byte[WalRecord.SnapshotPayloadBytes(conf)];
        Assert.Equal(bytes.Length, WalRecord.WriteConfState(bytes, conf));
        Assert.True(conf.SameMembersAs(WalRecord.ReadConfState(bytes)));
        Assert.Throws<FormatException>(() => WalRecord.ReadConfState(bytes.AsSpan(0, bytes.Length - 1)));

        var state = new HardState(9, 2, 77);
        var hard = new byte[WalRecord.HardStatePayloadBytes];
        WalRecord.WriteHardState(hard, state);
        Assert.Equal(state, WalRecord.ReadHardState(9, hard));
    }

    [Fact]
    public void Default_limits_relate_as_the_log_requires()
    {
        var options = new WalOptions { Directory = "unused" };
        options.Validate();
        Assert.True(options.RecordBytesMax <= options.FlushBytesMax, "any record fits in one flush");
        Assert.True(options.CompactionRewriteBytesMax <= options.FlushBytesMax, "a checkpoint is one append");
        Assert.True(options.SegmentBytes >= 2L * options.FlushBytesMax, "a flush fits in a fresh segment with room to spare");
        Assert.True(options.SegmentBytes <= WalOptions.SegmentBytesMaxLimit, "offsets fit in an int");
        // The benchmark's largest batch (8189 entries of 128 bytes) is one append.
        Assert.True(8189L * WalRecord.StoredBytes(128) <= options.FlushBytesMax);
        Assert.InRange(options.IdleSpinMicroseconds, 0, WalOptions.IdleSpinMicrosecondsMaxLimit);
        Assert.InRange(options.GroupCommitGatherMicroseconds, 1, WalOptions.GroupCommitGatherMicrosecondsMaxLimit);
    }

    [Fact]
    public void Inconsistent_limits_are_refused_with_the_option_named()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            new WalOptions { Directory = "unused", SegmentBytes = 1024 * 1024, FlushBytesMax = 1024 * 1024, RecordBytesMax = 1024 * 1024, ReadBytesMax = 1024 * 1024 }.Validate());
        Assert.Contains("SegmentBytes", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() =>
            new WalOptions { Directory = "unused", RecordBytesMax = 8 * 1024 * 1024 }.Validate());
        var spin = Assert.Throws<ArgumentException>(() =>
            new WalOptions { Directory = "unused", IdleSpinMicroseconds = WalOptions.IdleSpinMicrosecondsMaxLimit + 1 }.Validate());
        Assert.Contains("IdleSpinMicroseconds", spin.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new WalOptions { Directory = "unused", IdleSpinMicroseconds = -1 }.Validate());
        var gather = Assert.Throws<ArgumentException>(() => new WalOptions
        {
            Directory = "unused",
            GroupCommitGatherMicroseconds = WalOptions.GroupCommitGatherMicrosecondsMaxLimit + 1,
        }.Validate());
        Assert.Contains("GroupCommitGatherMicroseconds", gather.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new WalOptions { Directory = "unused", GroupCommitGatherMicroseconds = -1 }.Validate());
    }
}
