using System.Diagnostics;
using RaftLedger.Cli.Demo;
using RaftLedger.Ledger;

namespace RaftLedger.Cli.Verify;

public sealed partial class VerifyRun
{
    private static readonly TimeSpan ExpiryPollInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Polls the accounts until every pending balance is what the open pending transfers without a timeout give, i.e.
    /// every timed one never posted or voided was released (the last timeouts run out after the clients stopped, and a
    /// cross-shard one waits for its home leader's expiry scan), bounded by <see cref="VerifyOptions.ExpirySettleTimeout"/>.
    /// What is still reserved then, the checker names from the final read.
    /// </summary>
    private async Task WaitTimedPendingsReleasedAsync(DemoAccounts accounts, IReadOnlyList<Transfer> present, CancellationToken cancellationToken)
    {
        var expected = ExpiryModel.OpenUntimedPending(present);
        var ids = accounts.All.ToArray();
        var started = Stopwatch.GetTimestamp();
        var deadline = DateTime.UtcNow + options.ExpirySettleTimeout;
        while (true)
        {
            var answer = await TryAsync(() => client.LookupAccountsAsync(Nodes[0].Url, ids, cancellationToken));
            if (answer is { IsOk: true } read && read.Value!.All(a => expected.GetValueOrDefault(a.Id) == (a.DebitsPending, a.CreditsPending)))
            {
                output.WriteLine($"  timed pending transfers: every reservation released {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s after cross-shard work finished");
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                output.WriteLine($"  timed pending transfers: reservations still held {options.ExpirySettleTimeout.TotalSeconds:0} s after cross-shard work finished (the check names them)");
                return;
            }

            await Task.Delay(ExpiryPollInterval, cancellationToken);
        }
    }
}
