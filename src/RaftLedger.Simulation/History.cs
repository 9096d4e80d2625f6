using RaftLedger.Common;

namespace RaftLedger.Simulation;

/// <summary>
/// One client operation as the client saw it: invoked at <see cref="CallTime"/>, answered at
/// <see cref="ReturnTime"/>. An operation whose outcome the client never learned (it timed out and the
/// run ended) has <see cref="ReturnTime"/> = <see cref="Pending"/>: it may or may not have taken effect.
/// Times are positions in one global order of events, not ticks, so "before" is exact.
/// </summary>
public readonly record struct Operation<TInput, TOutput>(int ClientId, TInput Input, TOutput Output, long CallTime, long ReturnTime)
{
    public const long Pending = long.MaxValue;

    public bool IsPending => ReturnTime == Pending;
}

/// <summary>
/// Records invoke and complete events of client operations in the order they happen. Retries of one
/// operation are the same operation: it is invoked once (first attempt) and completes once (first answer).
/// </summary>
public sealed class OperationHistory<TInput, TOutput>
{
    private readonly List<Operation<TInput, TOutput>> _operations = [];

    // Invariant: strictly increases with every event, so no two events share a time.
    private long _clock;

    public IReadOnlyList<Operation<TInput, TOutput>> Operations => _operations;

    public int PendingCount { get; private set; }

    /// <summary>Starts an operation; returns its handle for <see cref="Complete"/>.</summary>
    public int Invoke(int clientId, TInput input)
    {
        _operations.Add(new Operation<TInput, TOutput>(clientId, input, default!, ++_clock, Operation<TInput, TOutput>.Pending));
        PendingCount++;
        return _operations.Count - 1;
    }

    /// <summary>Records the answer of a pending operation.</summary>
    public void Complete(int handle, TOutput output)
    {
        var operation = _operations[handle];
        Invariant.Check(operation.IsPending, "an operation completes at most once");
        _operations[handle] = operation with { Output = output, ReturnTime = ++_clock };
        PendingCount--;
        Invariant.Check(PendingCount >= 0);
    }
}
