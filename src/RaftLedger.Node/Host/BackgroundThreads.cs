using System.Runtime.InteropServices;
using System.Threading.Channels;

namespace RaftLedger.Node.Host;

/// <summary>
/// Dedicated threads for CPU-heavy work that can wait: writing a shard's snapshot file for a lagging follower and
/// preparing a received one for ingest. On the thread pool that work took the cores the scheduler loop needed: during a
/// catch-up under load a leader's round took 1.28 s of which the loop ran ~0.1 s, while its snapshot writers used about
/// four times that (docs/PERFORMANCE.md, "Where a slow round's time went during a catch-up"). On Linux these threads
/// run at a higher nice value than the process (raising it needs no privilege), so the loop and the RPC threads are scheduled first; the work
/// still gets every core the serving path leaves idle.
/// </summary>
internal sealed class BackgroundThreads : IDisposable
{
    private readonly Channel<WorkItem> queue;
    private readonly Thread[] threads;

    /// <param name="threadCount">Threads; also the most items that run at once.</param>
    /// <param name="niceIncrement">Added to the threads' Linux nice value (0: the process's own priority).</param>
    /// <param name="queuedItemsMax">Items that may wait; callers beyond it wait for room.</param>
    /// <param name="onNiceFailed">Called once per thread whose priority could not be lowered (with the errno).</param>
    public BackgroundThreads(int threadCount, int niceIncrement, int queuedItemsMax, Action<int>? onNiceFailed = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(niceIncrement);
        ArgumentOutOfRangeException.ThrowIfLessThan(queuedItemsMax, 1);
        queue = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(queuedItemsMax) { SingleWriter = false, SingleReader = false });
        threads = new Thread[threadCount];
        for (var i = 0; i < threadCount; i++)
        {
            threads[i] = new Thread(() => Run(niceIncrement, onNiceFailed)) { IsBackground = true, Name = $"background-{i}" };
            threads[i].Start();
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on one of the threads. The task fails with <see cref="OperationCanceledException"/>
    /// when the threads stop before the work starts, and with the work's own exception when it throws.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(work);
        var item = new WorkItem<T>(work);
        try
        {
            await queue.Writer.WriteAsync(item, cancel).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new OperationCanceledException("the node's background threads have stopped");
        }

        return await item.Done.Task.ConfigureAwait(false);
    }

    /// <summary>Stops taking work, cancels what waits, and waits for the items that are running to end.</summary>
    public void Dispose()
    {
        if (!queue.Writer.TryComplete())
        {
            return;
        }

        while (queue.Reader.TryRead(out var item))
        {
            item.Cancel();
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }
    }

    private void Run(int niceIncrement, Action<int>? onNiceFailed)
    {
        // nice() returns the new value, which may itself be -1: only errno tells a failure (the runtime clears it first).
        if (niceIncrement > 0 && OperatingSystem.IsLinux() && NativeMethods.nice(niceIncrement) == -1 && Marshal.GetLastPInvokeError() is var errno and not 0)
        {
            onNiceFailed?.Invoke(errno);
        }

        // A dedicated thread may block: it has nothing else to do while the queue is empty.
        while (queue.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            if (queue.Reader.TryRead(out var item))
            {
                item.Run();
            }
        }
    }

    private abstract class WorkItem
    {
        public abstract void Run();

        public abstract void Cancel();
    }

    private sealed class WorkItem<T>(Func<T> work) : WorkItem
    {
        public TaskCompletionSource<T> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void Run()
        {
            try
            {
                Done.TrySetResult(work());
            }
#pragma warning disable CA1031 // Any exception is the caller's to see, through the task.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Done.TrySetException(e);
            }
        }

        public override void Cancel() => Done.TrySetCanceled();
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054 // LibraryImport needs AllowUnsafeBlocks in the shared csproj; these signatures are blittable.
#pragma warning disable CA5392
        /// <summary>On Linux a nice value belongs to a thread, so this lowers the calling thread alone.</summary>
        [DllImport("libc", SetLastError = true)]
        internal static extern int nice(int increment);
#pragma warning restore CA5392
#pragma warning restore SYSLIB1054
    }
}
