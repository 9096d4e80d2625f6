using System.Diagnostics;
using Grpc.Core;

namespace RaftLedger.Cli.Bench;

public sealed partial class BenchRun
{
    // Warm-up callers take stream numbers above every measured caller's (ConcurrencyMax, ClientsMax) and below the
    // 2^24 streams a run's ids can tell apart, so their transfer ids never meet the measured ones.
    private const int WarmupStreamOffset = 1 << 20;

    private long paymentsReserved;
    private int streamOffset;
    private long warmupCommitted;
    private long warmupSdkRequests;

    /// <summary>What the measuring phase leaves for the report.</summary>
    private readonly record struct Measured(double Seconds, List<TimelineSample> Timeline, CpuUsage Cpu);

    private WorkloadMix Mix => new(options.CrossShard, options.TwoPhase);

    /// <summary>
    /// Runs the callers until the duration passes or the payments are done, then lets requests in
    /// flight finish (bounded by <see cref="BenchLimits.DrainTimeout"/>).
    /// </summary>
    private async Task<Measured> MeasureAsync(CancellationToken cancellationToken)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var abort = new CancellationTokenSource();
        var cpu = new CpuMeter();
        recorder = new BenchRecorder(Ledger.ShardCount, Stopwatch.GetTimestamp());
        if (options.Transfers is null)
        {
            stopping.CancelAfter(options.Duration);
        }

        var live = new ProgressSampler(Recorder, output);
        sampler = live;
        var sampling = live.RunAsync(() => phase, stopping.Token);
        var killing = options.KillLeaderEvery is { } every ? KillLoopAsync(every, stopping.Token, abort.Token) : Task.CompletedTask;
        var callers = StartCallers(stopping.Token, abort.Token);
        // With --transfers the callers end on their own; either way, once they stop everything else stops.
        var finished = await Task.WhenAny(callers, WhenCancelled(stopping.Token));
        if (finished != callers && !await Finishes(callers, BenchLimits.DrainTimeout))
        {
            output.WriteLine($"  requests still unanswered {BenchLimits.DrainTimeout.TotalSeconds:0} s after the end: cancelling them (counted as unanswered_at_exit)");
            await abort.CancelAsync();
        }

        await callers;
        var seconds = Recorder.SecondsSinceStart(Stopwatch.GetTimestamp());
        var used = cpu.Stop();
        await stopping.CancelAsync();
        await sampling;
        await killing;
        live.Finish();
        return new Measured(seconds, live.Samples, used);
    }

    private Task StartCallers(CancellationToken stopping, CancellationToken abort)
    {
        var count = sdk is null ? options.Concurrency : options.Clients;
        var callers = new Task[count];
        for (var i = 0; i < count; i++)
        {
            var stream = streamOffset + i;
            callers[i] = sdk is { } client
                ? Task.Run(() => ClientCallerAsync(client, stream, stopping, abort), CancellationToken.None)
                : Task.Run(() => WorkerAsync(stream, options.Batch, stopping, abort), CancellationToken.None);
        }

        return Task.WhenAll(callers);
    }

    /// <summary>
    /// Runs the callers for <see cref="BenchOptions.Warmup"/>, with ids of their own and a recorder that is then
    /// dropped, so the measured run starts on warm processes. Nothing of it reaches the report.
    /// </summary>
    private async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        output.WriteLine($"Warming up for {options.Warmup.TotalSeconds:0.#} s (not measured)");
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var abort = new CancellationTokenSource(options.Warmup + BenchLimits.DrainTimeout);
        stopping.CancelAfter(options.Warmup);
        recorder = new BenchRecorder(Ledger.ShardCount, Stopwatch.GetTimestamp());
        streamOffset = WarmupStreamOffset;
        try
        {
            await StartCallers(stopping.Token, abort.Token);
        }
        finally
        {
            streamOffset = 0;
        }

        var errors = 0L;
        foreach (var (_, count) in Recorder.ErrorsSnapshot())
        {
            errors += count;
        }

        warmupCommitted = Recorder.Committed;
        warmupSdkRequests = sdk?.Statistics.CreateRequests ?? 0;
        output.WriteLine($"  warm-up: {warmupCommitted:N0} transfers committed, {errors:N0} errors");
        totals.Reset();
        Interlocked.Exchange(ref paymentsReserved, 0);
    }

    private static Task WhenCancelled(CancellationToken token) => Task.Delay(Timeout.Infinite, token).ContinueWith(
        static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private static async Task<bool> Finishes(Task task, TimeSpan timeout)
    {
        try
        {
            await task.WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>One caller: build a batch homed on one shard, send it until answered, repeat.</summary>
    private async Task WorkerAsync(int stream, int batchSize, CancellationToken stopping, CancellationToken abort)
    {
        var generator = new WorkloadGenerator(chooser!, Mix, options.Seed, ids!, stream);
        var batch = new TransferBatch(batchSize);
        var pacer = NewPacer(stream, batchSize);
        long events = 0;
        try
        {
            while (await PaceAsync(pacer, stopping))
            {
                var shard = generator.NextShard();
                var allowed = ReservePayments(batchSize);
                var started = Stopwatch.GetTimestamp();
                var fill = generator.Fill(shard, batch.Events, allowed);
                ReturnPayments(allowed - fill.Payments);
                if (fill.Events == 0)
                {
                    break;
                }

                batch.Seal(fill.Events);
                events += fill.Events;
                await SendUntilAnsweredAsync(shard, batch, started, generator, abort);
            }
        }
        finally
        {
            totals.Add(generator, events);
        }
    }

    private Pacer NewPacer(int stream, int paymentsPerRequest)
    {
        var callers = options.Clients > 0 ? options.Clients : options.Concurrency;
        return Pacer.ForRate(options.Rate, paymentsPerRequest, stream, callers, Stopwatch.Frequency);
    }

    /// <summary>Waits until this caller's next request may start (<c>--rate</c>); false once the run is stopping.</summary>
    private static async Task<bool> PaceAsync(Pacer pacer, CancellationToken stopping)
    {
        var wait = pacer.WaitTicks(Stopwatch.GetTimestamp());
        if (wait > 0 && !stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return false;
            }
        }

        return !stopping.IsCancellationRequested;
    }

    /// <summary>Payments this caller may make now (all of them in --duration mode).</summary>
    private int ReservePayments(int wanted)
    {
        if (options.Transfers is not { } budget)
        {
            return wanted;
        }

        var taken = Interlocked.Add(ref paymentsReserved, wanted);
        var granted = (int)Math.Clamp(wanted - (taken - budget), 0, wanted);
        ReturnPayments(wanted - granted);
        return granted;
    }

    private void ReturnPayments(int unused)
    {
        if (unused > 0 && options.Transfers is not null)
        {
            Interlocked.Add(ref paymentsReserved, -unused);
        }
    }

    /// <summary>
    /// Sends the batch, retrying with the same ids on failures that leave nothing applied or the outcome
    /// unknown, until <see cref="BenchLimits.RequestDeadline"/> after the batch was made.
    /// </summary>
    private async Task SendUntilAnsweredAsync(int shard, TransferBatch batch, long started, WorkloadGenerator generator, CancellationToken abort)
    {
        var deadline = started + (long)(BenchLimits.RequestDeadline.TotalSeconds * Stopwatch.Frequency);
        for (var attempt = 0; ; attempt++)
        {
            var sent = Stopwatch.GetTimestamp();
            Recorder.RequestSent();
            CallOutcome outcome;
            try
            {
                outcome = await Ledger.SendAsync(shard, batch, attempt, abort);
            }
            catch (Exception exception) when (abort.IsCancellationRequested && exception is OperationCanceledException or RpcException)
            {
                Fail(batch, generator, "unanswered_at_exit");
                return;
            }

            if (outcome.IsAnswered)
            {
                Recorder.RequestLatency.RecordSince(sent);
                Count(shard, batch, outcome, attempt, started, generator);
                return;
            }

            if (!outcome.Retryable || Stopwatch.GetTimestamp() > deadline)
            {
                Fail(batch, generator, (outcome.Retryable ? "unanswered_" : "refused_") + outcome.FailureKind);
                return;
            }

            Recorder.Retry(outcome.FailureKind);
            try
            {
                await Task.Delay(BenchLimits.RetryDelay, abort);
            }
            catch (OperationCanceledException)
            {
                Fail(batch, generator, "unanswered_at_exit");
                return;
            }
        }
    }

    private void Count(int shard, TransferBatch batch, CallOutcome outcome, int attempt, long started, WorkloadGenerator generator)
    {
        var answered = Stopwatch.GetTimestamp();
        var results = outcome.Results!.Results;
        var created = 0;
        for (var i = 0; i < batch.Count; i++)
        {
            var status = results[i].Status;
            var ok = IsCreated(status, attempt);
            if (ok)
            {
                created++;
            }
            else
            {
                Recorder.Error(status, 1);
            }

            generator.Acknowledge(batch.Events[i], ok);
        }

        Recorder.Commit(shard, created, answered);
        Recorder.TransferLatency.Record(LatencyHistogram.ToMicroseconds(answered - started), created);
    }

    private void Fail(TransferBatch batch, WorkloadGenerator generator, string kind)
    {
        Recorder.Error(kind, batch.Count);
        for (var i = 0; i < batch.Count; i++)
        {
            generator.Acknowledge(batch.Events[i], created: false);
        }
    }
}
