using System.Globalization;
using RaftLedger.Node.Host;

namespace RaftLedger.Node.Tests.Host;

/// <summary>
/// Snapshot files are written and prepared on dedicated threads at a lower priority than the scheduler loop: work runs
/// there and its outcome reaches the caller; what has not started when the node stops is cancelled, not lost in a queue.
/// </summary>
public sealed class BackgroundThreadsTests
{
    [Fact]
    public async Task Work_runs_on_a_background_thread_and_its_result_or_exception_reaches_the_caller()
    {
        using var threads = new BackgroundThreads(threadCount: 2, niceIncrement: 0, queuedItemsMax: 4);

        var name = await threads.RunAsync(() => Thread.CurrentThread.Name, TestContext.Current.CancellationToken);
        var failure = await Assert.ThrowsAsync<IOException>(() => threads.RunAsync<int>(() => throw new IOException("disk gone"), TestContext.Current.CancellationToken));

        Assert.StartsWith("background-", name, StringComparison.Ordinal);
        Assert.Equal("disk gone", failure.Message);
    }

    [Fact]
    public async Task On_Linux_the_threads_run_at_a_higher_nice_value_than_the_process()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "thread nice values are set on Linux only");
        var failures = 0;
        var before = ThisThreadsNice();
        using var threads = new BackgroundThreads(threadCount: 1, niceIncrement: 7, queuedItemsMax: 1, onNiceFailed: _ => Interlocked.Increment(ref failures));

        var nice = await threads.RunAsync(ThisThreadsNice, TestContext.Current.CancellationToken);

        Assert.Equal(0, failures);
        Assert.Equal(Math.Min(before + 7, 19), nice); // 19 is Linux's lowest priority.
        Assert.Equal(before, ThisThreadsNice()); // Only the background thread was lowered, not the caller.
    }

    [Fact]
    public async Task Stopping_cancels_work_that_has_not_started_and_waits_for_work_that_has()
    {
        var threads = new BackgroundThreads(threadCount: 1, niceIncrement: 0, queuedItemsMax: 4);
        using var started = new ManualResetEventSlim();
        using var gate = new ManualResetEventSlim();
        var running = threads.RunAsync(
            () =>
            {
                started.Set();
                gate.Wait();
                return 1;
            },
            TestContext.Current.CancellationToken);
        started.Wait(TestContext.Current.CancellationToken);
        var waiting = threads.RunAsync(() => 2, TestContext.Current.CancellationToken);

        var stopping = Task.Run(threads.Dispose, TestContext.Current.CancellationToken);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.False(stopping.IsCompleted); // Still waiting for the running item.
        gate.Set();
        await stopping;

        Assert.Equal(1, await running);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => threads.RunAsync(() => 3, TestContext.Current.CancellationToken));
    }

    /// <summary>Field 19 of /proc/thread-self/stat: the calling thread's nice value.</summary>
    private static int ThisThreadsNice()
    {
        var stat = File.ReadAllText("/proc/thread-self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[16], CultureInfo.InvariantCulture); // Fields after the name start at field 3.
    }
}
