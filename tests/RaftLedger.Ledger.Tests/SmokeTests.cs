using RaftLedger.Ledger;
using static RaftLedger.Ledger.Tests.LedgerFixture;

namespace RaftLedger.Ledger.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void Transfer_moves_posted_balances_between_two_accounts()
    {
        var f = new LedgerFixture();
        f.CreatePlainAccounts(2);
        Assert.Equal(CreateTransferResult.Created, f.CreateTransfer(NewTransfer(100, 1, 2, 25)));
        Assert.Equal((UInt128)25, f.AccountOf(1).DebitsPosted);
        Assert.Equal((UInt128)25, f.AccountOf(2).CreditsPosted);
        Assert.Equal((UInt128)0, f.AccountOf(1).CreditsPosted);
        Assert.Equal(CreateTransferResult.Exists, f.CreateTransfer(NewTransfer(100, 1, 2, 25)));
    }
}
