using RaftLedger.Ledger;

namespace RaftLedger.Node.Host;

/// <summary>
/// One client request queued for a shard's scheduler. Its state decides, race-free, who ends it: the scheduler
/// moves it Queued → Proposed when it puts it in a Raft entry; the caller moves it Queued → Abandoned when its
/// deadline passes first. So an abandoned request is known not to be applied, a proposed one may be.
/// </summary>
internal sealed class ShardRequest
{
    public const int Queued = 0;
    public const int Proposed = 1;
    public const int Abandoned = 2;

    private int state;

    public ShardRequest(int shard, ShardRequestKind kind, ReadOnlyMemory<byte> payload)
    {
        Shard = shard;
        Kind = kind;
        Payload = payload;
        EventCount = kind is ShardRequestKind.CreateAccounts or ShardRequestKind.CreateTransfers
            ? payload.Length / LedgerLimits.RecordSizeBytes
            : 0;
    }

    public int Shard { get; }

    public ShardRequestKind Kind { get; }

    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>Events of a write; 0 for reads.</summary>
    public int EventCount { get; }

    public bool IsWrite => EventCount > 0;

    public TaskCompletionSource<ShardCallResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int State => Volatile.Read(ref state);

    /// <summary>Scheduler side: claims the request for a proposal; false when the caller gave up on it.</summary>
    public bool TryMarkProposed() => Interlocked.CompareExchange(ref state, Proposed, Queued) == Queued;

    /// <summary>Caller side: gives up on a request not yet proposed; false when it was already proposed.</summary>
    public bool TryAbandon() => Interlocked.CompareExchange(ref state, Abandoned, Queued) == Queued;

    public void Complete(ShardCallResult result) => Done.TrySetResult(result);

    /// <summary>True when the last event asks to be linked to the next: such a batch must end its Raft entry.</summary>
    public bool EndsWithOpenChain()
    {
        if (!IsWrite)
        {
            return false;
        }

        var last = Payload.Span[((EventCount - 1) * LedgerLimits.RecordSizeBytes)..];
        return Kind == ShardRequestKind.CreateAccounts
            ? (LedgerCodec.ReadAccount(last).Flags & AccountFlags.Linked) != 0
            : (LedgerCodec.ReadTransfer(last).Flags & TransferFlags.Linked) != 0;
    }
}
