using RaftLedger.Storage.Rocks;
using static RaftLedger.Storage.Tests.Rocks.RocksTestSupport;

namespace RaftLedger.Storage.Tests.Rocks;

public sealed class RocksLedgerFormatTests
{
    [Fact]
    public void A_new_folder_gets_the_format_file_and_reopens()
    {
        using var directory = new TempDirectory();
        Open(directory.PathName).Dispose();

        Assert.Equal(RocksLedgerFormat.Version.ToString(), File.ReadAllText(Path.Combine(directory.PathName, RocksLedgerFormat.FileName)));
        Open(directory.PathName).Dispose();
    }

    [Fact]
    public void State_of_another_format_is_refused_with_what_to_do()
    {
        using var directory = new TempDirectory();
        Open(directory.PathName).Dispose();
        File.WriteAllText(Path.Combine(directory.PathName, RocksLedgerFormat.FileName), "7");

        var error = Assert.Throws<InvalidDataException>(() => Open(directory.PathName));

        Assert.Contains("format 7", error.Message);
        Assert.Contains(RecoveryAdvice.WipeAndRejoin, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void State_without_a_format_file_is_the_first_format_and_is_refused()
    {
        using var directory = new TempDirectory();
        Open(directory.PathName).Dispose();
        File.Delete(Path.Combine(directory.PathName, RocksLedgerFormat.FileName));

        var error = Assert.Throws<InvalidDataException>(() => Open(directory.PathName));

        Assert.Contains("format 1", error.Message);
    }
}
