namespace RaftLedger.Node.Tests.Transport;

/// <summary>
/// Waits for a condition with a bounded timeout. Polling a condition is a barrier, not a sleep used as
/// synchronisation: the test proceeds the moment the state it needs exists, and fails with a message if
/// it never does.
/// </summary>
internal static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    public static async Task Until(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out waiting for: {what}");
            }

            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }
}
