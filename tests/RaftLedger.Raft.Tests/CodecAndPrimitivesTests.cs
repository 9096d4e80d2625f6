using System.Buffers;
using RaftLedger.Common;
using RaftLedger.Raft;

namespace RaftLedger.Raft.Tests;

/// <summary>Message and conf-change codecs, the PRNG, configuration limits and the in-memory storage.</summary>
public class CodecAndPrimitivesTests
{
    private static Message Sample() => new()
    {
        Type = MessageType.Append,
        From = 1,
        To = ulong.MaxValue,
        Term = 300,
        LogTerm = 299,
        Index = 1UL << 40,
        Commit = 127,
        Reject = true,
        RejectHint = 128,
        Transfer = true,
        LostState = true,
        Context = new byte[] { 1, 2, 3 },
        Entries =
        [
            new Entry(300, (1UL << 40) + 1, EntryType.Normal, new byte[] { 9, 8, 7 }),
            new Entry(300, (1UL << 40) + 2, EntryType.ConfChange, ConfChangeCodec.Encode(ConfChange.AddLearner(5))),
            new Entry(300, (1UL << 40) + 3, EntryType.Normal, ReadOnlyMemory<byte>.Empty),
        ],
        Snapshot = new SnapshotMetadata(77, 6, new ConfState([1, 2], [3], [1, 2, 4], [4], true)),
    };

    private static void AssertSame(Message expected, Message actual)
    {
        Assert.Equal(
            (expected.Type, expected.From, expected.To, expected.Term, expected.LogTerm, expected.Index, expected.Commit),
            (actual.Type, actual.From, actual.To, actual.Term, actual.LogTerm, actual.Index, actual.Commit));
        Assert.Equal((expected.Reject, expected.RejectHint, expected.Transfer, expected.LostState), (actual.Reject, actual.RejectHint, actual.Transfer, actual.LostState));
        Assert.Equal(expected.Context.ToArray(), actual.Context.ToArray());
        Assert.Equal(expected.Entries.Count, actual.Entries.Count);
        for (var i = 0; i < expected.Entries.Count; i++)
        {
            var (e, a) = (expected.Entries[i], actual.Entries[i]);
            Assert.Equal((e.Term, e.Index, e.Type), (a.Term, a.Index, a.Type));
            Assert.Equal(e.Data.ToArray(), a.Data.ToArray());
        }

        Assert.Equal(expected.Snapshot is null, actual.Snapshot is null);
        if (expected.Snapshot is { } s)
        {
            Assert.Equal((s.Index, s.Term), (actual.Snapshot!.Index, actual.Snapshot.Term));
            Assert.True(s.ConfState.SameMembersAs(actual.Snapshot.ConfState));
        }
    }

    [Fact]
    public void Message_codec_round_trips_every_field()
    {
        var message = Sample();
        var bytes = MessageCodec.Encode(message);
        Assert.Equal(MessageCodec.GetEncodedSize(message), bytes.Length);
        Assert.True(MessageCodec.TryDecode(bytes, out var decoded, out var error), error);
        AssertSame(message, decoded!);
        var writer = new ArrayBufferWriter<byte>();
        MessageCodec.Encode(message, writer);
        Assert.Equal(bytes, writer.WrittenSpan.ToArray());
    }

    [Fact]
    public void Message_codec_round_trips_every_message_type_in_a_live_cluster()
    {
        var cluster = new TestCluster(3, id => TestCluster.Config(id, preVote: true, checkQuorum: true));
        cluster.Elect(1);
        cluster.Propose(1, "x");
        cluster[1].Raft.ReadIndex(new byte[] { 42 });
        cluster.Stabilize();
        cluster[1].Raft.TransferLeadership(2);
        cluster.Stabilize();
        Assert.True(cluster.Sent.Count > 20);
        foreach (var message in cluster.Sent)
        {
            Assert.True(MessageCodec.TryDecode(MessageCodec.Encode(message), out var decoded, out var error), error);
            AssertSame(message, decoded!);
        }
    }

    [Fact]
    public void Message_codec_refuses_truncated_corrupt_or_padded_input()
    {
        var bytes = MessageCodec.Encode(Sample());
        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.False(MessageCodec.TryDecode(bytes.AsMemory(0, length), out _, out var error));
            Assert.StartsWith("message:", error, StringComparison.Ordinal);
        }

        Assert.False(MessageCodec.TryDecode(bytes.Concat(new byte[] { 0 }).ToArray(), out _, out var trailing));
        Assert.Contains("trailing", trailing, StringComparison.Ordinal);
        var badVersion = (byte[])bytes.Clone();
        badVersion[0] = 99;
        Assert.False(MessageCodec.TryDecode(badVersion, out _, out _));
        var badType = (byte[])bytes.Clone();
        badType[1] = 200;
        Assert.False(MessageCodec.TryDecode(badType, out _, out _));
    }

    [Fact]
    public void Message_codec_survives_random_garbage_without_throwing()
    {
        var random = new DeterministicRandom(7);
        var buffer = new byte[64];
        for (var i = 0; i < 5000; i++)
        {
            var length = random.NextInt(buffer.Length);
            for (var j = 0; j < length; j++)
            {
                buffer[j] = (byte)random.NextUInt64();
            }

            buffer[0] = MessageCodec.Version;
            _ = MessageCodec.TryDecode(buffer.AsMemory(0, length), out _, out _);
        }
    }

    [Fact]
    public void Conf_change_codec_round_trips_and_refuses_bad_input()
    {
        var change = new ConfChange(
            [new ConfChangeSingle(ConfChangeKind.AddVoter, 4), new ConfChangeSingle(ConfChangeKind.RemoveNode, ulong.MaxValue)],
            ConfChangeTransition.JointExplicit);
        var bytes = ConfChangeCodec.Encode(change);
        Assert.True(ConfChangeCodec.TryDecode(bytes, out var decoded, out _));
        Assert.True(change.SameAs(decoded!));
        Assert.True(ConfChangeCodec.Decode(ConfChangeCodec.Encode(ConfChange.LeaveJoint)).IsLeaveJoint);
        Assert.False(ConfChangeCodec.TryDecode(bytes.AsSpan(0, bytes.Length - 1), out _, out _));
        var zeroId = (byte[])bytes.Clone();
        Array.Clear(zeroId, 4, 8);
        Assert.False(ConfChangeCodec.TryDecode(zeroId, out _, out var error));
        Assert.Contains("node id 0", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Deterministic_random_repeats_its_sequence_for_a_seed_and_stays_in_range()
    {
        var a = new DeterministicRandom(42);
        var b = new DeterministicRandom(42);
        var c = new DeterministicRandom(43);
        var sameAsC = 0;
        for (var i = 0; i < 1000; i++)
        {
            var x = a.NextUInt64();
            Assert.Equal(x, b.NextUInt64());
            sameAsC += x == c.NextUInt64() ? 1 : 0;
            Assert.InRange(a.NextInt(3, 7), 3, 6);
            b.NextInt(3, 7);
            var d = a.NextDouble();
            b.NextDouble();
            Assert.InRange(d, 0.0, 0.999999999);
        }

        Assert.Equal(0, sameAsC);
        var counts = new int[4];
        var r = new DeterministicRandom(1);
        for (var i = 0; i < 4000; i++)
        {
            counts[r.NextInt(4)]++;
        }

        Assert.All(counts, n => Assert.InRange(n, 850, 1150));
    }

    [Fact]
    public void Config_limits_relate_as_required_and_bad_values_are_named()
    {
        var recommended = RaftConfig.Recommended(1);
        recommended.Validate();
        // How the limits relate: a full message fits the in-flight, uncommitted and apply budgets, and heartbeats are
        // far more frequent than elections.
        Assert.True(recommended.MessageBytesMax <= recommended.InflightBytesMax);
        Assert.True(recommended.MessageBytesMax <= recommended.UncommittedBytesMax);
        Assert.True(recommended.MessageBytesMax <= recommended.ReadyCommittedBytesMax);
        Assert.True(recommended.HeartbeatTicks * 5 <= recommended.ElectionTimeoutTicks);
        var bad = new RaftConfig
        {
            Id = 1,
            ElectionTimeoutTicks = 1,
            HeartbeatTicks = 1,
            InflightMessagesMax = 1,
            InflightBytesMax = 1 << 20,
            MessageBytesMax = 1 << 20,
            UncommittedBytesMax = 1 << 20,
            PreVote = true,
            CheckQuorum = true,
            ReadOnlyMode = ReadOnlyMode.Safe,
            ProposalForwarding = ProposalForwarding.Forward,
        };
        var ex = Assert.Throws<ArgumentException>(() => new RaftNode(bad, new MemoryLogStorage(), new DeterministicRandom(1)));
        Assert.Contains("ElectionTimeoutTicks", ex.Message, StringComparison.Ordinal);
        var lease = new RaftConfig
        {
            Id = 1,
            ElectionTimeoutTicks = 10,
            HeartbeatTicks = 1,
            InflightMessagesMax = 1,
            InflightBytesMax = 1 << 20,
            MessageBytesMax = 1 << 20,
            UncommittedBytesMax = 1 << 20,
            PreVote = true,
            CheckQuorum = false,
            ReadOnlyMode = ReadOnlyMode.LeaseBased,
            ProposalForwarding = ProposalForwarding.Forward,
        };
        Assert.Contains("CheckQuorum", Assert.Throws<ArgumentException>(lease.Validate).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Memory_storage_truncates_on_conflicting_append_and_compacts_to_a_snapshot()
    {
        var storage = new MemoryLogStorage();
        storage.Append([new Entry(1, 1, EntryType.Normal, default), new Entry(1, 2, EntryType.Normal, default), new Entry(1, 3, EntryType.Normal, default)]);
        storage.Append([new Entry(2, 2, EntryType.Normal, default)]);
        Assert.Equal((1UL, 2UL), (storage.FirstIndex, storage.LastIndex));
        Assert.True(storage.TryGetTerm(2, out var term) && term == 2);
        storage.CreateSnapshot(2, ConfState.OfVoters(1));
        storage.Compact(2);
        Assert.Equal((3UL, 2UL), (storage.FirstIndex, storage.LastIndex));
        Assert.True(storage.TryGetTerm(2, out term) && term == 2);
        Assert.False(storage.TryGetTerm(1, out _));
        Assert.Throws<InvariantViolationException>(() => storage.Append([new Entry(2, 5, EntryType.Normal, default)]));
    }

    [Fact]
    public void Memory_storage_get_entries_honours_the_byte_budget_but_returns_at_least_one()
    {
        var storage = new MemoryLogStorage();
        storage.Append(Enumerable.Range(1, 5).Select(i => new Entry(1, (ulong)i, EntryType.Normal, new byte[76])).ToArray());
        var into = new List<Entry>();
        storage.GetEntries(1, 6, 250, into);
        Assert.Equal(2, into.Count);
        into.Clear();
        storage.GetEntries(1, 6, 1, into);
        Assert.Single(into);
    }
}
