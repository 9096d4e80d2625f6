using RaftLedger.Common;

namespace RaftLedger.Storage.Wal;

/// <summary>
/// Every limit of the write-ahead log, in one place. Defaults suit a production node; tests and the
/// crash child shrink segments so that rolling and compaction happen often.
/// </summary>
public sealed record WalOptions
{
    /// <summary>Default segment file size: large enough that rolling is rare, small enough to delete promptly.</summary>
    public const long SegmentBytesDefault = 64L * 1024 * 1024;

    /// <summary>Largest segment we accept: record locations store the offset as an int.</summary>
    public const long SegmentBytesMaxLimit = 1L << 30;

    /// <summary>Default bytes written by one flush (one fdatasync); also the largest single append.</summary>
    public const int FlushBytesMaxDefault = 4 * 1024 * 1024;

    /// <summary>
    /// Default largest single record (header + payload): 2 MiB, above the largest Raft entry a node proposes (a
    /// cross-shard command of a full 8,189-event chain, about 1.4 MB; a full create_transfers batch is just under 1 MiB).
    /// </summary>
    public const int RecordBytesMaxDefault = 2 * 1024 * 1024;

    /// <summary>Default number of appends that may wait for the writer before appenders are held back.</summary>
    public const int QueueLengthMaxDefault = 4096;

    /// <summary>Default bytes of recent entries each group keeps in memory.</summary>
    public const long GroupCacheBytesMaxDefault = 4L * 1024 * 1024;

    /// <summary>
    /// Default bytes of segment one read of older (uncached) entries covers at most: a follower that fell behind is
    /// sent entries read in sequential pieces of this size, not one read per entry.
    /// </summary>
    public const int ReadBytesMaxDefault = RecordBytesMaxDefault;

    /// <summary>Default number of groups one node's log may hold.</summary>
    public const int GroupsMaxDefault = 4096;

    /// <summary>Default bytes of one group's live log that compaction will copy forward to free an old segment.</summary>
    public const int CompactionRewriteBytesMaxDefault = 1024 * 1024;

    /// <summary>Default number of segments the log may hold before compaction copies small lagging groups forward.</summary>
    public const int CompactionRewriteSegmentsMinDefault = 4;

    /// <summary>
    /// Default number of compacted segment files kept to be recycled as later segments. One compaction often frees
    /// several segments at once (a snapshot of a busy shard releases all it pinned); kept files need no zero-filling
    /// when reused, which was 2.5–3.5 % of a node's CPU under batched load (docs/PERFORMANCE.md). Costs their disk space
    /// while the log is short, as PostgreSQL's recycled WAL segments do.
    /// </summary>
    public const int FreeSegmentsMaxDefault = 3;

    /// <summary>
    /// Default time the writer polls for the next append after a flush before it sleeps: none. Spinning was meant
    /// to catch a lone appender's next append without a thread wake-up, but measured side by side on a quiet
    /// machine (docs/PERFORMANCE.md, WAL idle spin A/B) 50 µs gave 1.32× the raw fdatasync latency against 1.27×
    /// without, and less group commit (8.0× against 8.9×), while taking CPU the node's other threads need.
    /// </summary>
    public const int IdleSpinMicrosecondsDefault = 0;

    /// <summary>Largest idle spin accepted: beyond this the writer would steal a core for nothing.</summary>
    public const int IdleSpinMicrosecondsMaxLimit = 1000;

    /// <summary>
    /// Default longest wait for more appends before a flush, when the previous flush served several appenders
    /// (PostgreSQL's commit_delay with commit_siblings, MySQL's binlog group commit delay). Those appenders wake
    /// one by one after their flush and append again; without the wait the next flush takes whichever came first
    /// and the rest wait a whole fdatasync, so flushes alternate between half-full batches. A fraction of one
    /// fdatasync (~250 µs on this disk) is enough to gather them. A lone appender — a node's scheduler — never waits.
    /// </summary>
    public const int GroupCommitGatherMicrosecondsDefault = 100;

    /// <summary>Largest gather wait accepted: it delays every append of a busy log by up to this much.</summary>
    public const int GroupCommitGatherMicrosecondsMaxLimit = 1000;

    /// <summary>Directory holding the segment files; created if missing.</summary>
    public required string Directory { get; init; }

    /// <summary>Size of each preallocated (zero-filled) segment file.</summary>
    public long SegmentBytes { get; init; } = SegmentBytesDefault;

    /// <summary>Compacted segment files kept for reuse at most (0: every compacted segment is deleted).</summary>
    public int FreeSegmentsMax { get; init; } = FreeSegmentsMaxDefault;

    /// <summary>Upper bound on bytes written per fdatasync, and on the encoded size of one append.</summary>
    public int FlushBytesMax { get; init; } = FlushBytesMaxDefault;

    /// <summary>Upper bound on one record (header + entry payload).</summary>
    public int RecordBytesMax { get; init; } = RecordBytesMaxDefault;

    /// <summary>Appends queued for the writer; more wait (back-pressure).</summary>
    public int QueueLengthMax { get; init; } = QueueLengthMaxDefault;

    /// <summary>Bytes (counted as <see cref="Raft.Entry.SizeBytes"/>) of recent entries cached per group.</summary>
    public long GroupCacheBytesMax { get; init; } = GroupCacheBytesMaxDefault;

    /// <summary>
    /// Bytes of segment one read of uncached entries covers at most (records of other groups in between included);
    /// at least <see cref="RecordBytesMax"/>, so any record fits in one read.
    /// </summary>
    public int ReadBytesMax { get; init; } = ReadBytesMaxDefault;

    /// <summary>Groups one log can hold; the node-wide cache bound is GroupsMax * GroupCacheBytesMax.</summary>
    public int GroupsMax { get; init; } = GroupsMaxDefault;

    /// <summary>A group whose whole live log is at most this big is copied forward to free an old segment.</summary>
    public int CompactionRewriteBytesMax { get; init; } = CompactionRewriteBytesMaxDefault;

    /// <summary>
    /// Compaction copies small lagging groups forward only while the log holds more segments than this;
    /// below it, old segments wait for snapshots (copying active groups on every roll would multiply writes).
    /// </summary>
    public int CompactionRewriteSegmentsMin { get; init; } = CompactionRewriteSegmentsMinDefault;

    /// <summary>How long the writer polls for more appends after a flush before sleeping (0 = never spin).</summary>
    public int IdleSpinMicroseconds { get; init; } = IdleSpinMicrosecondsDefault;

    /// <summary>
    /// Longest wait for more appends before a flush when the previous flush served two or more appends (0 = never);
    /// the wait ends early once no append arrived for a quarter of it.
    /// </summary>
    public int GroupCommitGatherMicroseconds { get; init; } = GroupCommitGatherMicrosecondsDefault;

    /// <summary>
    /// TEST INSTRUMENT, null (off) by default: a file the writer overwrites after every successful fdatasync with how
    /// much of the log is durable (<see cref="WalSyncedMark"/>), for <c>raftledger verify</c>'s power-cut fault.
    /// </summary>
    public string? SyncedMarkPath { get; init; }

    /// <summary>
    /// TEST ONLY, DELIBERATELY BROKEN when above 0: the mark lags this many updates (about one per flush) behind the
    /// truth, as if those flushes had been acted on before they reached the disk. Needs <see cref="SyncedMarkPath"/>.
    /// </summary>
    public int SyncedMarkLagMarks { get; init; }

    /// <summary>Receives operational log lines (recovery truncations, compaction). Defaults to stderr.</summary>
    public Action<string> Log { get; init; } = static line => Console.Error.WriteLine(line);

    /// <summary>Checks how the limits relate; throws ArgumentException naming the bad option.</summary>
    public void Validate()
    {
        Check(!string.IsNullOrWhiteSpace(Directory), "Directory must name the WAL directory");
        Check(RecordBytesMax >= WalRecord.HeaderBytes + 64, "RecordBytesMax must hold a header and a small payload");
        Check(FlushBytesMax >= RecordBytesMax, "FlushBytesMax must be >= RecordBytesMax so any record fits in a flush");
        Check(ReadBytesMax >= RecordBytesMax, "ReadBytesMax must be >= RecordBytesMax so any record fits in one read");
        Check(CompactionRewriteBytesMax <= FlushBytesMax, "CompactionRewriteBytesMax must be <= FlushBytesMax (a rewrite is one append)");
        Check(SegmentBytes >= 2L * FlushBytesMax, "SegmentBytes must be >= 2 * FlushBytesMax so a flush always fits in a fresh segment");
        Check(SegmentBytes <= SegmentBytesMaxLimit, $"SegmentBytes must be <= {SegmentBytesMaxLimit}");
        Check(SegmentBytes % WalRecord.AlignmentBytes == 0, "SegmentBytes must be a multiple of 8");
        Check(CompactionRewriteSegmentsMin >= 1, "CompactionRewriteSegmentsMin must be >= 1");
        Check(FreeSegmentsMax >= 0, "FreeSegmentsMax must be >= 0");
        Check(QueueLengthMax >= 1, "QueueLengthMax must be >= 1");
        Check(GroupCacheBytesMax >= 0, "GroupCacheBytesMax must be >= 0");
        Check(GroupsMax >= 1, "GroupsMax must be >= 1");
        Check(SyncedMarkLagMarks >= 0, "SyncedMarkLagMarks must be >= 0");
        Check(SyncedMarkLagMarks == 0 || SyncedMarkPath is not null, "SyncedMarkLagMarks needs SyncedMarkPath");
        Check(IdleSpinMicroseconds is >= 0 and <= IdleSpinMicrosecondsMaxLimit, $"IdleSpinMicroseconds must be in [0, {IdleSpinMicrosecondsMaxLimit}]");
        Check(GroupCommitGatherMicroseconds is >= 0 and <= GroupCommitGatherMicrosecondsMaxLimit,
            $"GroupCommitGatherMicroseconds must be in [0, {GroupCommitGatherMicrosecondsMaxLimit}]");
        Invariant.Check(WalRecord.HeaderBytes % WalRecord.AlignmentBytes == 0);
    }

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new ArgumentException($"Invalid WAL options: {message}.");
        }
    }
}
