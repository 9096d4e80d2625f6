using RaftLedger.Ledger;
using RaftLedger.Raft;
using RaftLedger.Storage.Rocks;
using RaftLedger.Storage.Wal;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

/// <summary>
/// The Raft WAL and the RocksDB ledger state together, as the node runs them: append a command to the WAL
/// (durable once the append completes), then apply it to RocksDB (not synced). After a crash, recovery takes
/// the applied index from RocksDB and replays the WAL after it; the result must be exactly the state of the
/// committed log, whatever the crash point.
/// </summary>
public sealed class RocksWithWalCrashTests
{
    private const ulong GroupId = 1;
    private const uint ShardId = 1;
    private static readonly ConfState Members = ConfState.OfVoters(1, 2, 3);

    private static WalOptions WalOptionsFor(string directory) => new()
    {
        Directory = directory,
        SegmentBytes = 256 * 1024,
        FlushBytesMax = 64 * 1024,
        RecordBytesMax = 64 * 1024,
        CompactionRewriteBytesMax = 4096,
        CompactionRewriteSegmentsMin = 2,
        Log = static _ => { },
    };

    /// <summary>The committed log: ledger commands, and the fingerprint of the ledger after each one.</summary>
    private sealed class CommittedLog
    {
        public List<byte[]> Commands { get; } = [];

        public List<UInt128> Fingerprints { get; } = [];

        public static CommittedLog Generate(int seed, int batches)
        {
            var log = new CommittedLog();
            var scenario = new LedgerScenario(seed);
            var reference = new LedgerStateMachine(new InMemoryLedgerStore());
            var batch = scenario.Accounts();
            for (var i = 0; i < batches; i++, batch = scenario.NextBatch())
            {
                var command = batch.Accounts is not null
                    ? LedgerCommand.EncodeCreateAccounts(batch.Timestamp, batch.Accounts)
                    : LedgerCommand.EncodeCreateTransfers(batch.Timestamp, batch.Transfers);
                log.Commands.Add(command);
                reference.Apply(command, new byte[LedgerLimits.BatchEventsMax], (ulong)(i + 1));
                log.Fingerprints.Add(reference.Fingerprint());
            }

            return log;
        }
    }

    private static async Task AppendToWal(WriteAheadLog wal, CommittedLog log, int index)
    {
        var entry = new Entry(1, (ulong)index, EntryType.Normal, log.Commands[index - 1]);
        await wal.AppendAsync(new WalGroupWrite(GroupId, [entry], new HardState(1, 1, (ulong)index), null), TestContext.Current.CancellationToken);
    }

    /// <summary>Node restart: RocksDB says where the state is; the WAL supplies every entry after it.</summary>
    private static UInt128 Recover(string walDirectory, string rocksDirectory, out ulong appliedOnDisk, out ulong walFirstIndex)
    {
        using var wal = WriteAheadLog.Open(WalOptionsFor(walDirectory));
        using var database = Open(rocksDirectory);
        var group = wal.GetGroup(GroupId);
        var store = new RocksLedgerStore(database.OpenShard(ShardId));
        var ledger = new LedgerStateMachine(store);
        appliedOnDisk = store.AppliedIndex;
        walFirstIndex = group.FirstIndex;

        // The rule under test: the WAL was never compacted past what RocksDB had made durable.
        Assert.True(group.FirstIndex <= appliedOnDisk + 1, $"WAL starts at {group.FirstIndex} but RocksDB only has {appliedOnDisk}");
        var entries = new List<Entry>();
        if (appliedOnDisk < group.LastIndex)
        {
            group.GetEntries(appliedOnDisk + 1, group.LastIndex + 1, long.MaxValue, entries);
        }

        var results = new byte[LedgerLimits.BatchEventsMax];
        foreach (var entry in entries)
        {
            ledger.Apply(entry.Data.Span, results, entry.Index);
        }

        Assert.Equal(group.LastIndex, store.AppliedIndex);
        return ledger.Fingerprint();
    }

    [Theory]
    [InlineData(11)]
    [InlineData(29)]
    public async Task Crash_between_the_WAL_fsync_and_the_RocksDB_write_recovers_the_committed_log(int seed)
    {
        using var directory = new TempDirectory();
        var log = CommittedLog.Generate(seed, batches: 30);
        using (var wal = WriteAheadLog.Open(WalOptionsFor(directory.Sub("wal"))))
        using (var database = Open(directory.Sub("rocks")))
        {
            var ledger = new LedgerStateMachine(new RocksLedgerStore(database.OpenShard(ShardId)));
            var results = new byte[LedgerLimits.BatchEventsMax];
            for (var index = 1; index <= log.Commands.Count; index++)
            {
                await AppendToWal(wal, log, index);

                // The last five entries are durable in the WAL but the node dies before applying them.
                if (index <= log.Commands.Count - 5)
                {
                    ledger.Apply(log.Commands[index - 1], results, (ulong)index);
                }

                if (index == 10)
                {
                    database.MakeDurable();
                }
            }

            TakeCrashImage(database, directory.Sub("rocks"), directory.Sub("rocks-crashed"));
        }

        var fingerprint = Recover(directory.Sub("wal"), directory.Sub("rocks-crashed"), out var applied, out _);
        Assert.InRange(applied, 10UL, (ulong)log.Commands.Count - 5);
        Assert.Equal(log.Fingerprints[^1], fingerprint);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(77)]
    public async Task Crash_after_the_RocksDB_write_before_the_next_WAL_compaction_recovers_the_committed_log(int seed)
    {
        using var directory = new TempDirectory();
        var log = CommittedLog.Generate(seed, batches: 40);
        using (var wal = WriteAheadLog.Open(WalOptionsFor(directory.Sub("wal"))))
        using (var database = Open(directory.Sub("rocks")))
        {
            var shard = database.OpenShard(ShardId);
            var ledger = new LedgerStateMachine(new RocksLedgerStore(shard));
            var results = new byte[LedgerLimits.BatchEventsMax];
            for (var index = 1; index <= log.Commands.Count; index++)
            {
                await AppendToWal(wal, log, index);
                ledger.Apply(log.Commands[index - 1], results, (ulong)index);
                if (index % 12 == 0)
                {
                    await CompactUpToDurable(wal, database, shard);
                }
            }

            // Everything is applied to RocksDB, nothing since the last compaction is flushed; a snapshot marker
            // past the durable index must be refused by the WAL.
            Assert.True(shard.DurableAppliedIndex < shard.AppliedIndex);
            await Assert.ThrowsAnyAsync<ArgumentException>(() => wal.AppendAsync(
                new WalGroupWrite(GroupId, [], null, new SnapshotMetadata(shard.AppliedIndex, 1, Members)), TestContext.Current.CancellationToken));
            TakeCrashImage(database, directory.Sub("rocks"), directory.Sub("rocks-crashed"));
        }

        var fingerprint = Recover(directory.Sub("wal"), directory.Sub("rocks-crashed"), out var applied, out var walFirst);
        Assert.True(walFirst > 1, "the WAL was compacted");
        Assert.True(applied >= 36, $"RocksDB reopened at {applied}, below the last durable index 36");
        Assert.Equal(log.Fingerprints[^1], fingerprint);
    }

    /// <summary>The host's compaction step: flush RocksDB, then let the WAL drop what RocksDB has made durable.</summary>
    private static async Task CompactUpToDurable(WriteAheadLog wal, RocksLedgerDatabase database, RocksShard shard)
    {
        database.MakeDurable();
        var durable = database.DurableAppliedIndex(ShardId);
        Assert.Equal(shard.AppliedIndex, durable);
        wal.SetCompactableIndex(GroupId, durable);
        await wal.AppendAsync(new WalGroupWrite(GroupId, [], null, new SnapshotMetadata(durable, 1, Members)), TestContext.Current.CancellationToken);
    }
}
