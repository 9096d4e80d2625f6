using RaftLedger.Node.Host;

namespace RaftLedger.Node.Tests.Host;

/// <summary>A node that stops on a full disk says which disk and that a restart with room loses nothing.</summary>
public sealed class FullDiskAdviceTests
{
    private const string DataDirectory = "/var/lib/raftledger/n1";

    [Fact]
    public void A_real_no_space_error_deep_in_the_cause_chain_gets_the_advice()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "/dev/full is Linux's always-full device");
        var noSpace = Assert.Throws<IOException>(() => File.WriteAllBytes("/dev/full", new byte[4096]));
        var stopped = new AggregateException(new IOException("The write-ahead log failed and accepts no more appends; restart the node.", noSpace));

        var advice = FullDiskAdvice.For(stopped, DataDirectory);

        Assert.NotNull(advice);
        Assert.Contains($"the disk holding {DataDirectory} is full", advice, StringComparison.Ordinal);
    }

    [Fact]
    public void RocksDBs_no_space_message_gets_the_advice()
    {
        var rocks = new InvalidOperationException("IO error: No space left on device: While appending to file: /x/000123.sst");

        Assert.NotNull(FullDiskAdvice.For(rocks, DataDirectory));
    }

    [Fact]
    public void Other_storage_failures_get_none()
    {
        var denied = new IOException("Permission denied : '/var/lib/raftledger/n1/wal-0000000000000002.log.tmp'", 13);

        Assert.Null(FullDiskAdvice.For(new AggregateException(denied), DataDirectory));
    }
}
