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
/// One peer connection after its hello, run in both directions until either ends: the pump writes the link's queue as
/// frames (<see cref="PeerFrames"/>), one frame and one flush per wake-up; the reader copies each frame it receives into
/// its own array (the sinks keep the payloads: the host queues them for its loop) and hands its messages to
/// <c>deliver</c>. The same code runs over Kestrel's pipes on the accepting side and over a socket's stream on the dialing side.
/// </summary>
internal sealed class PeerConnection(PeerLink link, PipeReader input, PipeWriter output, PeerWatchdog watchdog, Action<ulong, List<PeerFrameMessage>> deliver)
{
    /// <summary>Runs until the peer closes, a read or write fails, or the watchdog cancels; returns why it ended.</summary>
    public async Task<string> RunAsync()
    {
        watchdog.Idle = link.TryEnqueuePing;
        var pump = PumpAsync(watchdog.Token);
        var read = ReceiveAsync(watchdog.Token);
        await Task.WhenAny(pump, read).ConfigureAwait(false);
        var silent = watchdog.Token.IsCancellationRequested;
        await watchdog.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(pump, read).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return silent ? "nothing received within the silence limit"
            : read.Exception?.InnerException?.Message ?? pump.Exception?.InnerException?.Message ?? "the connection ended";
    }

    private async Task PumpAsync(CancellationToken cancel)
    {
        link.Attach();
        try
        {
            var batch = new List<PeerFrameMessage>();
            while (await link.WaitToReadAsync(cancel).ConfigureAwait(false))
            {
                var data = link.TakeBatch(batch);
                if (batch.Count == 0)
                {
                    continue;
                }

                PeerFrames.WriteFrame(output, batch);
                batch.Clear();
                var flush = await output.FlushAsync(cancel).ConfigureAwait(false);
                watchdog.NoteWritten();
                if (data)
                {
                    link.CountSentBatch();
                }

                if (flush.IsCompleted || flush.IsCanceled)
                {
                    return;
                }
            }
        }
        finally
        {
            link.Detach();
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
