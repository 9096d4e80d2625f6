using System.Buffers;
using System.IO.Pipelines;
using RaftLedger.Common;

namespace RaftLedger.Node.Transport;

/// <summary>
/// Liveness of one peer connection, from dial (or accept) to close. Every <see cref="TransportOptions.PingInterval"/>
/// it asks for a ping when nothing was written in the last interval, and it cancels <see cref="Token"/> when nothing at
/// all was received for <see cref="TransportOptions.SilentIntervalsMax"/> intervals: a peer that vanished without
/// closing its socket (power loss, partition), or that accepts and never answers, is found that way. It also bounds
/// the connect and the hello, which count as silence until the answer arrives.
/// </summary>
internal sealed class PeerWatchdog : IDisposable
{
    private readonly CancellationTokenSource abort;
    private readonly ITimer timer;
    private long receivedReads;
    private long writtenFrames;

    // Read and written only by the timer callback. Two callbacks could overlap only if one took a whole interval; the
    // worst outcome would be one interval miscounted, which the silence limit of several intervals absorbs.
    private long receivedAtTick;
    private long writtenAtTick;
    private int silentIntervals;

    public PeerWatchdog(TransportOptions options, CancellationToken outer)
    {
        abort = CancellationTokenSource.CreateLinkedTokenSource(outer);
        timer = options.Time.CreateTimer(_ => Tick(), null, options.PingInterval, options.PingInterval);
        SilentIntervalsMax = options.SilentIntervalsMax;
    }

    /// <summary>Cancelled when the connection is silent too long or the outer token is cancelled.</summary>
    public CancellationToken Token => abort.Token;

    /// <summary>Called on the timer's thread when nothing was written for an interval (set once the hello is done).</summary>
    public Action? Idle { get; set; }

    private int SilentIntervalsMax { get; }

    /// <summary>Some bytes arrived from the peer.</summary>
    public void NoteReceived() => Interlocked.Increment(ref receivedReads);

    /// <summary>A frame went out to the peer.</summary>
    public void NoteWritten() => Interlocked.Increment(ref writtenFrames);

    /// <summary>Ends the connection's loops (the first of them to finish calls it).</summary>
    public Task CancelAsync() => abort.CancelAsync();

    public void Dispose()
    {
        timer.Dispose();
        abort.Dispose();
    }

    private void Tick()
    {
        var written = Interlocked.Read(ref writtenFrames);
        if (written == writtenAtTick)
        {
            Idle?.Invoke();
        }

        writtenAtTick = written;
        var received = Interlocked.Read(ref receivedReads);
        silentIntervals = received == receivedAtTick ? silentIntervals + 1 : 0;
        receivedAtTick = received;
        if (silentIntervals >= SilentIntervalsMax)
        {
            try
            {
                abort.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The connection ended between the timer firing and this call: nothing left to cancel.
            }
        }
    }
}

/// <summary>
/// One peer connection after its hello, run in both directions until either ends: the link's drains write its queue as
/// frames (<see cref="PeerFrames"/>) onto this connection while it is the link's writer, one frame and one flush at a time
/// (<see cref="Drain"/>); the reader copies each frame it receives into its own array (the sinks keep the payloads: the
/// host queues them for its loop) and hands its messages to <c>deliver</c>. The same code runs over Kestrel's pipes on the
/// accepting side and over a socket's stream on the dialing side. A batch taken from the queue is written once: what a
/// broken connection had taken is lost, not sent again on the next one (the cross-shard protocol relies on it, see
/// design/cross-shard.md, "Not done").
/// </summary>
internal sealed class PeerConnection(PeerLink link, PipeReader input, PipeWriter output, PeerWatchdog watchdog, Action<ulong, List<PeerFrameMessage>> deliver)
    : IPeerFrameWriter
{
    private readonly List<PeerFrameMessage> batch = []; // Used only by the drain that holds the link.

    // Completed when a write failed or the peer's side of the pipe ended: the connection is over.
    private readonly TaskCompletionSource<string> writeEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Runs until the peer closes, a read or write fails, or the watchdog cancels; returns why it ended.</summary>
    public async Task<string> RunAsync()
    {
        watchdog.Idle = link.TryEnqueuePing;
        var read = ReceiveAsync(watchdog.Token);
        using (watchdog.Token.Register(() => writeEnded.TrySetResult("the connection ended")))
        {
            link.Attach(this);
            try
            {
                await Task.WhenAny(writeEnded.Task, read).ConfigureAwait(false);
            }
            finally
            {
                link.Detach(this);
            }
        }

        var silent = watchdog.Token.IsCancellationRequested;
        await watchdog.CancelAsync().ConfigureAwait(false);
        await read.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return silent ? "nothing received within the silence limit"
            : read.Exception?.InnerException?.Message ?? (writeEnded.Task.IsCompleted ? writeEnded.Task.Result : "the connection ended");
    }

    /// <inheritdoc/>
    public bool Drain()
    {
        try
        {
            while (!writeEnded.Task.IsCompleted && link.IsWriter(this))
            {
                var data = link.TakeBatch(batch);
                if (batch.Count == 0)
                {
                    return true;
                }

                PeerFrames.WriteFrame(output, batch);
                batch.Clear();
                var flush = output.FlushAsync(watchdog.Token);
                if (!flush.IsCompletedSuccessfully)
                {
                    _ = FinishDrainAsync(flush, data);
                    return false;
                }

                Flushed(flush.Result, data);
            }
        }
        catch (Exception e)
        {
            // On the sender's thread (the host's loop among others): a broken connection must end, never throw there.
            batch.Clear();
            writeEnded.TrySetResult(e.Message);
        }

        return true;
    }

    /// <summary>A write that could not complete at once: waits for it, then drains on (on the thread that completed it).</summary>
    private async Task FinishDrainAsync(ValueTask<FlushResult> flush, bool data)
    {
        try
        {
            Flushed(await flush.ConfigureAwait(false), data);
        }
        catch (Exception e)
        {
            writeEnded.TrySetResult(e.Message);
        }

        if (Drain())
        {
            link.EndDrain();
        }
    }

    private void Flushed(FlushResult flush, bool data)
    {
        watchdog.NoteWritten();
        if (data)
        {
            link.CountSentBatch();
        }

        if (flush.IsCompleted || flush.IsCanceled)
        {
            writeEnded.TrySetResult("the peer stopped reading");
        }
    }

    /// <summary>
    /// Reads frames until the peer closes. A frame's bytes are copied out of the pipe as they arrive, so a frame larger
    /// than the pipe's buffer limit (Kestrel pauses its socket reads at 1 MiB unconsumed) still completes.
    /// </summary>
    private async Task ReceiveAsync(CancellationToken cancel)
    {
        var messages = new List<PeerFrameMessage>();
        byte[]? frame = null;
        var filled = 0;
        while (true)
        {
            var result = await input.ReadAsync(cancel).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (!buffer.IsEmpty)
            {
                watchdog.NoteReceived();
            }

            while (TryFill(ref buffer, ref frame, ref filled))
            {
                Invariant.Check(frame is not null && filled == frame.Length);
                if (!PeerFrames.TryDecodeFrame(frame, messages))
                {
                    throw new InvalidDataException($"node {link.RemoteId} sent a malformed frame of {frame.Length} bytes");
                }

                deliver(link.RemoteId, messages);
                messages.Clear();
                frame = null;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }

    /// <summary>Moves bytes from <paramref name="buffer"/> into the frame being received; true once it is whole.</summary>
    private bool TryFill(ref ReadOnlySequence<byte> buffer, ref byte[]? frame, ref int filled)
    {
        if (frame is null)
        {
            var status = PeerFrames.TryReadLength(ref buffer, out var frameBytes);
            if (status == PeerReadStatus.NeedMore)
            {
                return false;
            }

            if (status == PeerReadStatus.Malformed)
            {
                throw new InvalidDataException($"node {link.RemoteId} sent a frame length beyond {PeerFrames.FrameBytesMax} bytes");
            }

            frame = new byte[frameBytes];
            filled = 0;
        }

        var take = (int)Math.Min(buffer.Length, frame.Length - filled);
        buffer.Slice(0, take).CopyTo(frame.AsSpan(filled));
        buffer = buffer.Slice(take);
        filled += take;
        return filled == frame.Length;
    }
}
