namespace RaftLedger.Storage.Wal;

/// <summary>One append waiting for the writer; its task completes once its records are synced.</summary>
internal sealed class PendingAppend
{
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PendingAppend(IReadOnlyList<WalGroupWrite> writes, int storedBytes, bool isCheckpoint)
    {
        Writes = writes;
        StoredBytes = storedBytes;
        IsCheckpoint = isCheckpoint;
    }

    public IReadOnlyList<WalGroupWrite> Writes { get; }

    /// <summary>Bytes its records take in a flush.</summary>
    public int StoredBytes { get; }

    /// <summary>A compaction rewrite made by the writer itself: not validated against the writer's view.</summary>
    public bool IsCheckpoint { get; }

    /// <summary>Why the writer refused it (a caller bug), or null.</summary>
    public Exception? Rejection { get; set; }

    /// <summary>Index into the flush's entry locations where this append's entries start.</summary>
    public int LocationStart { get; set; }

    public Task Task => _completion.Task;

    public void Complete() => _completion.TrySetResult();

    public void Fail(Exception error) => _completion.TrySetException(error);
}
