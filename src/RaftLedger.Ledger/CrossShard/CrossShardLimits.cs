namespace RaftLedger.Ledger.CrossShard;

/// <summary>The cross-shard protocol's limits, in one place (a test asserts how they relate).</summary>
public static class CrossShardLimits
{
    /// <summary>Events in one cross-shard transaction (one <see cref="CrossShardDriver.Submit"/> call).</summary>
    public const int TransactionEventsMax = 64;

    /// <summary>Shards one transaction touches at most (home plus participants): each event has two legs.</summary>
    public const int TransactionShardsMax = (2 * TransactionEventsMax) + 1;

    /// <summary>Bytes of one encoded leg (transfer record plus leg header).</summary>
    public const int LegBytes = CrossShardCommand.LegBytes;

    /// <summary>Transactions in one Finish command: each reserves <see cref="TransactionEventsMax"/> timestamps.</summary>
    public const int FinishItemsPerCommandMax = LedgerLimits.BatchEventsMax / TransactionEventsMax;

    /// <summary>Transactions in one Prepare, Decide, Retire or AbortIfUndecided command.</summary>
    public const int ItemsPerCommandMax = 64;

    /// <summary>Commands of each kind the driver has proposed and not yet seen applied.</summary>
    public const int ProposalsInFlightMax = 8;

    /// <summary>Message header bytes: version, kind, home shard, transaction id, counts.</summary>
    public const int MessageHeaderBytes = 32;

    /// <summary>Largest message between shards: a prepare of a full transaction.</summary>
    public const int MessageBytesMax = MessageHeaderBytes + (TransactionEventsMax * 2 * LegBytes);

    /// <summary>How many times an unanswered query of a prepared leg is sent before the participant waits a full abandonment timeout again.</summary>
    public const int QueryRetriesMax = 1_000_000;

    /// <summary>Cross-shard transactions one coordinator drives at once (new submissions beyond this fail with 503).</summary>
    public const int CoordinatorTransactionsMax = 4096;

    /// <summary>Prepared transactions one participant tracks in memory for abandonment checks.</summary>
    public const int ParticipantTransactionsMax = 16384;

    /// <summary>Finished transactions a participant leader remembers so that a late duplicate Prepare cannot reserve again.</summary>
    public const int RecentlyFinishedMax = 4 * ParticipantTransactionsMax;

    /// <summary>Actions queued for the host before the driver stops producing more (it retries on a later tick instead).</summary>
    public const int ActionsQueuedMax = 65536;

    /// <summary>Delegated post/voids a pending transfer's home remembers (running, and answered for duplicates).</summary>
    public const int DelegationsRememberedMax = 4096;

    /// <summary>Cross-shard pending transfers a home shard's leader tracks for expiry at once (the earliest; later scans find the rest).</summary>
    public const int ExpiriesTrackedMax = 65536;

    /// <summary>Expiry transactions a leader starts per tick (the rest start on the next ticks).</summary>
    public const int ExpiriesStartedPerTickMax = 256;

    /// <summary>Times a balancing transaction refused by a stale clamp is started afresh on a new snapshot before the client gets 503.</summary>
    public const int StaleClampRestartsMax = 3;
}
