using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

public sealed class RocksSnapshotTests
{
    private static void Fill(RocksShard shard, int records, ulong appliedIndex, int valueBytes = 100)
    {
        using var batch = shard.NewBatch();
        for (var i = 0; i < records; i++)
        {
            var table = i % 3 == 0 ? RocksTable.Accounts : RocksTable.Transfers;
            batch.Put(table, Key((ulong)i), Value(new string((char)('a' + (i % 26)), valueBytes) + shard.ShardId));
        }

        batch.Commit(appliedIndex);
    }

    [Fact]
    public void Snapshot_installed_into_another_shard_reproduces_it_and_leaves_other_shards_untouched()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var source = database.OpenShard(1);
        var target = database.OpenShard(2);
        var bystander = database.OpenShard(3);
        Fill(source, 25_000, appliedIndex: 40); // ~2.7 MB: several chunks
        Fill(target, 10, appliedIndex: 5);
        Fill(bystander, 100, appliedIndex: 77);
        var bystanderRows = Dump(bystander);

        using var stream = new MemoryStream();
        RocksSnapshotSummary written;
        using (var snapshot = source.CreateSnapshot())
        {
            written = snapshot.WriteTo(stream);
        }

        Assert.True(written.DataChunkCount > 1);
        Assert.Equal(25_000, written.RecordCount);
        Assert.True(stream.Length <= written.DataChunkCount * (long)(RocksLedgerLimits.SnapshotChunkPayloadBytesMax + RocksSnapshotFormat.ChunkHeaderBytes) + 1024);

        stream.Position = 0;
        var installed = target.InstallSnapshot(stream);
        Assert.Equal(40UL, installed.AppliedIndex);
        Assert.Equal(40UL, target.AppliedIndex);
        Assert.Equal(40UL, target.DurableAppliedIndex);
        Assert.False(target.IsInstalling);
        Assert.Equal(Fingerprint(source), Fingerprint(target));
        Assert.Equal(Dump(source), Dump(target));
        Assert.Equal(bystanderRows, Dump(bystander));
        Assert.Equal(77UL, bystander.AppliedIndex);
    }

    [Fact]
    public void Snapshot_is_a_consistent_view_while_applying_continues()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var shard = database.OpenShard(5);
        Fill(shard, 50, appliedIndex: 3);
        var before = Fingerprint(shard);
        using var snapshot = shard.CreateSnapshot();
        using (var batch = shard.NewBatch())
        {
            batch.Put(RocksTable.Accounts, Key(999), Value("written after the snapshot"));
            batch.Delete(RocksTable.Transfers, Key(1));
            batch.Commit(4);
        }

        Assert.Equal(3UL, snapshot.AppliedIndex);
        Assert.Equal(before, snapshot.ContentFingerprint());
        Assert.NotEqual(before, Fingerprint(shard));

        using var stream = new MemoryStream();
        snapshot.WriteTo(stream);
        var copy = database.OpenShard(6);
        stream.Position = 0;
        copy.InstallSnapshot(stream);
        Assert.Equal(3UL, copy.AppliedIndex);
        Assert.Equal(before, Fingerprint(copy));
    }

    [Fact]
    public void Corrupt_chunk_in_a_seekable_stream_is_refused_and_the_previous_state_is_unchanged()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var source = database.OpenShard(1);
        var target = database.OpenShard(2);
        Fill(source, 20_000, appliedIndex: 10);
        Fill(target, 30, appliedIndex: 8);
        var targetBefore = Dump(target);
        var bytes = WriteSnapshot(source);

        // A byte in the last data chunk: everything before it would pass.
        bytes[bytes.Length - 200] ^= 0x10;
        var error = Assert.Throws<RocksSnapshotCorruptException>(() => target.InstallSnapshot(new MemoryStream(bytes)));

        Assert.Contains("checksum mismatch", error.Message);
        Assert.Contains("previous state is unchanged", error.Message);
        Assert.False(target.IsInstalling);
        Assert.Equal(8UL, target.AppliedIndex);
        Assert.Equal(targetBefore, Dump(target));
    }

    [Fact]
    public void Corrupt_chunk_in_a_streamed_install_is_refused_and_the_previous_state_is_unchanged()
    {
        using var directory = new TempDirectory();
        var path = directory.Sub("db");
        using var database = Open(path);
        var source = database.OpenShard(1);
        var target = database.OpenShard(2);
        Fill(source, 20_000, appliedIndex: 10);
        Fill(target, 30, appliedIndex: 8);
        var targetBefore = Dump(target);
        var good = WriteSnapshot(source);
        var bad = (byte[])good.Clone();
        bad[bad.Length - 200] ^= 0x01;

        // Nothing reaches the shard before the whole stream is checked: the install ingests one file built first.
        var error = Assert.Throws<RocksSnapshotCorruptException>(() => target.InstallSnapshot(new NonSeekableStream(bad)));
        Assert.Contains("previous state is unchanged", error.Message);
        Assert.False(target.IsInstalling);
        Assert.Equal(8UL, target.AppliedIndex);
        Assert.Equal(targetBefore, Dump(target));
        Assert.Empty(Directory.GetFiles(Path.Combine(path, RocksLedgerDatabase.IngestFolderName)));

        target.InstallSnapshot(new NonSeekableStream(good));
        Assert.Equal(10UL, target.AppliedIndex);
        Assert.Equal(Fingerprint(source), Fingerprint(target));
    }

    [Fact]
    public void A_shard_marked_by_an_interrupted_install_of_an_earlier_version_is_served_again_after_a_good_install()
    {
        using var directory = new TempDirectory();
        var path = directory.Sub("db");
        byte[] good;
        UInt128 sourceFingerprint;
        using (var database = Open(path))
        {
            var source = database.OpenShard(1);
            Fill(source, 2_000, appliedIndex: 10);
            Fill(database.OpenShard(2), 30, appliedIndex: 8);
            sourceFingerprint = Fingerprint(source);
            good = WriteSnapshot(source);

            // What an install before the twenty-fifth session left when it stopped between chunks: the marker key.
            var marker = new byte[RocksLedgerLimits.TablePrefixBytes + 1];
            var length = RocksKeys.Write(marker, 2, RocksTable.Meta, [RocksKeys.MetaInstalling]);
            database.Db.Put(marker.AsSpan(0, length).ToArray(), new byte[] { 1 });
        }

        using (var reopened = Open(path))
        {
            var target = reopened.OpenShard(2);
            Assert.True(target.IsInstalling);
            target.InstallSnapshot(new NonSeekableStream(good));
            Assert.False(target.IsInstalling);
            Assert.Equal(10UL, target.AppliedIndex);
            Assert.Equal(sourceFingerprint, Fingerprint(target));
        }

        // The ingested file's range deletion removed the marker with the old state, and the new state is on disk.
        using (var again = Open(path))
        {
            var target = again.OpenShard(2);
            Assert.False(target.IsInstalling);
            Assert.Equal(10UL, target.DurableAppliedIndex);
            Assert.Equal(sourceFingerprint, Fingerprint(target));
        }
    }

    [Fact]
    public void A_prepared_install_touches_no_shard_until_it_is_ingested_and_a_left_over_file_is_deleted_at_open()
    {
        using var directory = new TempDirectory();
        var path = directory.Sub("db");
        using (var database = Open(path))
        {
            var source = database.OpenShard(1);
            var target = database.OpenShard(2);
            Fill(source, 5_000, appliedIndex: 12);
            Fill(target, 40, appliedIndex: 7);
            var before = Dump(target);
            var sst = database.NewIngestPath();
            using var prepared = database.PrepareInstall(2, new MemoryStream(WriteSnapshot(source)), sst);
            Assert.Equal(12UL, prepared.Summary.AppliedIndex);
            Assert.Equal(5_000, prepared.Summary.RecordCount);
            Assert.True(File.Exists(sst));

            // Applying goes on meanwhile; the ingest then replaces all of it.
            Fill(target, 50, appliedIndex: 9);
            Assert.NotEqual(before, Dump(target));
            Assert.Equal(12UL, target.InstallPrepared(prepared).AppliedIndex);
            Assert.Equal(Dump(source), Dump(target));
            Assert.False(File.Exists(sst));

            // One more prepared and never ingested, as when the process stops in between.
            database.PrepareInstall(2, new MemoryStream(WriteSnapshot(source)), database.NewIngestPath());
            Assert.Single(Directory.GetFiles(Path.Combine(path, RocksLedgerDatabase.IngestFolderName)));
        }

        using var reopened = Open(path);
        Assert.False(Directory.Exists(Path.Combine(path, RocksLedgerDatabase.IngestFolderName)));
        Assert.Equal(12UL, reopened.OpenShard(2).AppliedIndex);
    }

    [Fact]
    public void An_ingested_snapshot_is_durable_without_flushing_the_other_shards_writes()
    {
        using var directory = new TempDirectory();
        var live = directory.Sub("live");
        var crashed = directory.Sub("crashed");
        List<(RocksTable, string, string)> sourceRows;
        using (var database = Open(live))
        {
            var source = database.OpenShard(1);
            var target = database.OpenShard(2);
            var bystander = database.OpenShard(3);
            Fill(source, 5_000, appliedIndex: 12);
            Fill(target, 40, appliedIndex: 7);
            database.MakeDurable();
            sourceRows = Dump(source);
            Fill(bystander, 100, appliedIndex: 77); // In the memtable only.

            using var prepared = database.PrepareInstall(2, new MemoryStream(WriteSnapshot(source)), database.NewIngestPath());
            target.InstallPrepared(prepared);

            Assert.Equal(12UL, target.DurableAppliedIndex);
            Assert.Equal(0UL, bystander.DurableAppliedIndex);
            TakeCrashImage(database, live, crashed);
        }

        // What the files hold at that moment: the installed shard, and not the other shard's unflushed writes (the
        // install flushed nothing it did not need to).
        using var reopened = Open(crashed);
        Assert.Equal(12UL, reopened.OpenShard(2).AppliedIndex);
        Assert.Equal(sourceRows, Dump(reopened.OpenShard(2)));
        Assert.Equal(0UL, reopened.OpenShard(3).AppliedIndex);
        Assert.Empty(Dump(reopened.OpenShard(3)));
    }

    [Fact]
    public void Every_single_byte_flip_anywhere_in_a_snapshot_is_refused()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var source = database.OpenShard(1);
        Fill(source, 12, appliedIndex: 3, valueBytes: 10);
        var bytes = WriteSnapshot(source);
        Assert.Equal(12, RocksShardSnapshots.Verify(new MemoryStream(bytes)).RecordCount);
        for (var position = 0; position < bytes.Length; position++)
        {
            var flipped = (byte[])bytes.Clone();
            flipped[position] ^= 0x80;
            Assert.Throws<RocksSnapshotCorruptException>(() => RocksShardSnapshots.Verify(new MemoryStream(flipped)));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(24)]
    [InlineData(-1)]
    public void Truncated_or_extended_snapshot_is_refused(int cut)
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var source = database.OpenShard(1);
        Fill(source, 40, appliedIndex: 3);
        var bytes = WriteSnapshot(source);
        var changed = cut > 0 ? bytes[..^cut] : [.. bytes, 0];
        var error = Assert.Throws<RocksSnapshotCorruptException>(() => RocksShardSnapshots.Verify(new MemoryStream(changed)));
        Assert.Contains("Snapshot chunk", error.Message);
    }

    [Fact]
    public void Dropped_data_chunk_is_refused_by_sequence_number()
    {
        using var directory = new TempDirectory();
        using var database = Open(directory.PathName);
        var source = database.OpenShard(1);
        Fill(source, 20_000, appliedIndex: 3);
        var bytes = WriteSnapshot(source);
        var chunks = SplitChunks(bytes);
        Assert.True(chunks.Count >= 4);
        var withoutSecondChunk = chunks.Where((_, i) => i != 1).SelectMany(chunk => chunk).ToArray();
        var error = Assert.Throws<RocksSnapshotCorruptException>(() => RocksShardSnapshots.Verify(new MemoryStream(withoutSecondChunk)));
        Assert.Contains("sequence", error.Message);
    }

    private static byte[] WriteSnapshot(RocksShard shard)
    {
        using var stream = new MemoryStream();
        using var snapshot = shard.CreateSnapshot();
        snapshot.WriteTo(stream);
        return stream.ToArray();
    }

    private static List<byte[]> SplitChunks(byte[] bytes)
    {
        var chunks = new List<byte[]>();
        var offset = 0;
        while (offset < bytes.Length)
        {
            var length = RocksSnapshotFormat.ChunkHeaderBytes + (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 12));
            chunks.Add(bytes[offset..(offset + length)]);
            offset += length;
        }

        return chunks;
    }

    /// <summary>A stream as it arrives from the network: read-only, forward-only.</summary>
    private sealed class NonSeekableStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream inner = new(bytes);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
