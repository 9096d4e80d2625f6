using System.Globalization;
using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.CrashChild;

/// <summary>
/// Usage: <c>RaftLedger.Storage.CrashChild &lt;wal-directory&gt; &lt;seed&gt; [fill]</c>. Opens (recovers) the WAL, prints
/// <c>ready</c>, then appends to four groups concurrently forever, printing <c>ack &lt;group&gt; &lt;index&gt;</c> once
/// every entry up to that index is durable. Payloads depend only on (group, index), so a checker can verify them.
/// Every few appends a group takes a snapshot marker, so segments are compacted while it runs. With <c>fill</c> no
/// marker is taken, so the log only grows; the first failed open or append is printed as <c>failed &lt;error&gt;</c>
/// and the child exits with code 3 (used on a small filesystem to reach a real "no space left on device").
/// </summary>
public static class Program
{
    public const int GroupCount = 4;

    /// <summary>The options the child and its checker both use: small segments so rolling and compaction happen.</summary>
    public static WalOptions Options(string directory) => new()
    {
        Directory = directory,
        SegmentBytes = 256 * 1024,
        FlushBytesMax = 32 * 1024,
        RecordBytesMax = 4096,
        QueueLengthMax = 64,
        GroupCacheBytesMax = 16 * 1024,
        CompactionRewriteBytesMax = 16 * 1024,
        Log = static line => Console.Error.WriteLine(line),
    };

    /// <summary>The payload of entry <paramref name="index"/> of <paramref name="groupId"/>.</summary>
    public static byte[] Payload(ulong groupId, ulong index)
    {
        var state = (groupId * 0x9E3779B97F4A7C15UL) ^ (index * 0xC2B2AE3D27D4EB4FUL);
        var bytes = new byte[(int)(16 + (state % 300))];
        for (var i = 0; i < bytes.Length; i++)
        {
            state = (state * 6364136223846793005UL) + 1442695040888963407UL;
            bytes[i] = (byte)(state >> 56);
        }

        return bytes;
    }

    public static async Task<int> Main(string[] args)
    {
        if (args.Length is < 2 or > 3 || !int.TryParse(args[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed) ||
            (args.Length == 3 && args[2] != "fill"))
        {
            await Console.Error.WriteLineAsync("usage: RaftLedger.Storage.CrashChild <wal-directory> <seed> [fill]");
            return 2;
        }

        var output = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
        var fill = args.Length == 3;
        try
        {
            using var wal = WriteAheadLog.Open(Options(args[0]));
            await output.WriteLineAsync("ready");
            var appenders = new Task[GroupCount];
            for (var g = 0; g < GroupCount; g++)
            {
                var groupId = (ulong)g + 1;
                var random = new Random(seed + g);
                appenders[g] = Task.Run(() => AppendForever(wal, groupId, random, fill, output));
            }

            await Task.WhenAll(appenders);
            return 0;
        }
        catch (IOException e) when (fill)
        {
            lock (output)
            {
                output.WriteLine($"failed {e.Message.ReplaceLineEndings(" ")} ({e.InnerException?.Message})");
            }

            return 3;
        }
    }

    private static async Task AppendForever(WriteAheadLog wal, ulong groupId, Random random, bool fill, StreamWriter output)
    {
        var group = wal.GetGroup(groupId);
        var next = group.LastIndex + 1;
        for (var round = 0; ; round++)
        {
            var count = random.Next(1, 12);
            var entries = new List<Entry>(count);
            for (var i = 0; i < count; i++)
            {
                entries.Add(new Entry(1, next + (ulong)i, EntryType.Normal, Payload(groupId, next + (ulong)i)));
            }

            var last = next + (ulong)count - 1;
            SnapshotMetadata? snapshot = null;
            if (!fill && round % 7 == 6 && next > 40)
            {
                // Pretend the state machine is durable well behind the log, as the host would report it.
                wal.SetCompactableIndex(groupId, next - 30);
                snapshot = new SnapshotMetadata(next - 30, 1, ConfState.OfVoters(1, 2, 3));
            }

            await wal.AppendAsync(new WalGroupWrite(groupId, entries, new HardState(1, 0, last), snapshot));
            lock (output)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ack {groupId} {last}"));
            }

            next = last + 1;
        }
    }
}
