using System.Buffers.Binary;
using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

/// <summary>A scratch directory deleted on dispose, plus small WAL options so that segments roll often.</summary>
internal sealed class WalDirectory : IDisposable
{
    public WalDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "raftledger-wal-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
        // Tests copy segment images into fresh directories: mark them as this build's layout, as Open would.
        WalFormat.WriteIfMissing(Path);
    }

    public string Path { get; }

    public List<string> LogLines { get; } = [];

    public WalOptions Options(long segmentBytes = 64 * 1024, long groupCacheBytesMax = 1 << 20, int compactionRewriteBytesMax = 4096) => new()
    {
        Directory = Path,
        SegmentBytes = segmentBytes,
        FlushBytesMax = 16 * 1024,
        RecordBytesMax = 4096,
        QueueLengthMax = 64,
        GroupCacheBytesMax = groupCacheBytesMax,
        CompactionRewriteBytesMax = compactionRewriteBytesMax,
        CompactionRewriteSegmentsMin = 2,
        Log = line =>
        {
            lock (LogLines)
            {
                LogLines.Add(line);
            }
        },
    };

    public WriteAheadLog Open() => WriteAheadLog.Open(Options());

    public string[] Segments() => [.. WalFiles.ListSegments(Path).Select(s => s.Path)];

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover scratch directory must not fail the test.
        }
    }
}

internal static class WalTestData
{
    /// <summary>A payload that depends only on (group, index, term), so a reader can check it without a copy.</summary>
    public static byte[] Payload(ulong groupId, ulong index, ulong term, int? length = null)
    {
        var seed = (groupId * 0x9E3779B97F4A7C15UL) ^ (index * 0xC2B2AE3D27D4EB4FUL) ^ term;
        var bytes = new byte[length ?? (int)(8 + (seed % 200))];
        for (var i = 0; i < bytes.Length; i++)
        {
            seed = (seed * 6364136223846793005UL) + 1442695040888963407UL;
            bytes[i] = (byte)(seed >> 56);
        }

        return bytes;
    }

    public static Entry Entry(ulong groupId, ulong index, ulong term = 1, int? length = null) =>
        new(term, index, EntryType.Normal, Payload(groupId, index, term, length));

    public static List<Entry> Entries(ulong groupId, ulong from, ulong to, ulong term = 1, int? length = null)
    {
        var list = new List<Entry>();
        for (var i = from; i <= to; i++)
        {
            list.Add(Entry(groupId, i, term, length));
        }

        return list;
    }

    public static Task Append(WriteAheadLog wal, ulong groupId, ulong from, ulong to, ulong term = 1, ulong? commit = null) =>
        wal.Write(new WalGroupWrite(groupId, Entries(groupId, from, to, term), new HardState(term, 0, commit ?? 0), null));

    /// <summary>AppendAsync with the test's cancellation token.</summary>
    public static Task Write(this WriteAheadLog wal, params WalGroupWrite[] writes) =>
        wal.AppendAsync(writes, TestContext.Current.CancellationToken);

    /// <summary>Asserts the group holds exactly [first, last] with the expected payloads (all term 1 unless given).</summary>
    public static void AssertLog(IRaftLogStorage storage, ulong groupId, ulong first, ulong last, Func<ulong, ulong>? termOf = null)
    {
        Assert.Equal(first, storage.FirstIndex);
        Assert.Equal(last, storage.LastIndex);
        if (last < first)
        {
            return;
        }

        var entries = new List<Entry>();
        storage.GetEntries(first, last + 1, long.MaxValue, entries);
        Assert.Equal((int)(last - first + 1), entries.Count);
        foreach (var entry in entries)
        {
            var term = termOf?.Invoke(entry.Index) ?? 1;
            Assert.Equal(term, entry.Term);
            Assert.True(entry.Data.Span.SequenceEqual(Payload(groupId, entry.Index, term)), $"payload of entry {entry.Index} differs");
        }
    }

    /// <summary>Start offsets and lengths of the readable records in an image of the segment file <paramref name="segmentPath"/>.</summary>
    /// <summary>
    /// A copy of <paramref name="image"/> whose record at <paramref name="offset"/> (<paramref name="length"/> bytes) is
    /// torn after <paramref name="cut"/> bytes: the rest of its aligned slot zeroed, or random with <paramref name="garbage"/>.
    /// </summary>
    public static byte[] TearRecord(byte[] image, int offset, int length, int cut, bool garbage, Random random)
    {
        var torn = (byte[])image.Clone();
        var tail = torn.AsSpan(offset + cut, WalRecord.Align(length) - cut);
        if (garbage)
        {
            random.NextBytes(tail);
        }
        else
        {
            tail.Clear();
        }

        return torn;
    }

    public static List<(int Offset, int Length, WalRecordHeader Header)> Records(byte[] image, string segmentPath)
    {
        var sequence = SequenceOf(segmentPath);
        var records = new List<(int, int, WalRecordHeader)>();
        var at = 0;
        while (at < image.Length && WalRecord.TryRead(image.AsSpan(at), sequence, 1 << 20, out var header, out var length))
        {
            records.Add((at, length, header));
            at += WalRecord.Align(length);
        }

        return records;
    }

    /// <summary>The sequence in a segment (or free segment) file name, which every record's checksum covers.</summary>
    public static ulong SequenceOf(string segmentPath) =>
        ulong.Parse(System.IO.Path.GetFileNameWithoutExtension(segmentPath)["wal-".Length..], System.Globalization.CultureInfo.InvariantCulture);

    public static ulong FlushOf(byte[] image, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(image.AsSpan(offset + 16));
}
