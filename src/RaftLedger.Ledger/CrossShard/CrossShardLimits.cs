namespace RaftLedger.Ledger.CrossShard;

/// <summary>The cross-shard protocol's limits, in one place (a test asserts how they relate).</summary>
public static class CrossShardLimits
{
    /// <summary>
    /// Events in one cross-shard transaction: a whole linked chain of a request, so any chain a client may send is one
    /// atomic transaction. Every byte bound below is derived from it, so one transaction's largest command and message
    /// fit without splitting it.
    /// </summary>
    public const int TransactionEventsMax = LedgerLimits.BatchEventsMax;

    /// <summary>Shards one transaction touches at most (home plus participants): each event has two legs.</summary>
    public const int TransactionShardsMax = (2 * TransactionEventsMax) + 1;

    /// <summary>Bytes of one encoded leg (transfer record plus leg header).</summary>
    public const int LegBytes = CrossShardCommand.LegBytes;

    /// <summary>Legs of one transaction on one participant: one per (shard, event).</summary>
    public const int ParticipantLegsMax = TransactionEventsMax;

    /// <summary>
    /// Transactions in one Finish command. Each item reserves one timestamp per copy it may store (its leg count, at
    /// least one), and a command's timestamps stay within <see cref="LedgerLimits.BatchEventsMax"/>, which is the
    /// tighter bound when transactions are long.
    /// </summary>
    public const int FinishItemsPerCommandMax = 127;

    /// <summary>
    /// Transactions in one Prepare, Decide, Retire or AbortIfUndecided command. Prepare and Decide items are also
    /// added only while the command stays within <see cref="CommandBytesMax"/>, its results within
    /// <see cref="LedgerLimits.ResultBytesMax"/> and (Decide) its timestamps within <see cref="LedgerLimits.BatchEventsMax"/>.
    /// </summary>
    public const int ItemsPerCommandMax = 64;

    /// <summary>Bytes of a Prepare item's header: u128 transaction id, u16 home, u16 leg count.</summary>
    public const int PrepareItemHeaderBytes = 20;

    /// <summary>Largest Prepare item: a full transaction's legs on one participant.</summary>
    public const int PrepareItemBytesMax = PrepareItemHeaderBytes + (ParticipantLegsMax * LegBytes);

    /// <summary>
    /// Largest Decide item (<see cref="CrossShardCommand.EncodeDecide"/>): u128 id, u8 flags, u16 + participants, u16 event
    /// count, per event the transfer, leg status, home sides and two side reports (5 bytes each), the expires-elsewhere
    /// bit mask, per event a guard and requested amount, and per event a u64 expires-at.
    /// </summary>
    public const int DecideItemBytesMax = 16 + 1 + 2 + (2 * TransactionShardsMax) + 2 +
        (TransactionEventsMax * (LedgerLimits.RecordSizeBytes + 1 + 1 + 5 + 5)) + ((TransactionEventsMax + 7) / 8) +
        (TransactionEventsMax * (1 + 16)) + (TransactionEventsMax * 8);

    /// <summary>
    /// Largest cross-shard command (one Raft entry): the header, the u16 item count and one largest item (a Prepare or
    /// a Decide of a full transaction; batching adds items only while they fit). About 1.4 MB, above
    /// <see cref="LedgerLimits.CommandBytesMax"/>; the host's entry bound is the larger of the two.
    /// </summary>
    public const int CommandBytesMax = LedgerLimits.CommandHeaderBytes + 2 +
        (PrepareItemBytesMax > DecideItemBytesMax ? PrepareItemBytesMax : DecideItemBytesMax);

    /// <summary>
    /// Result bytes one cross-shard command writes at most: one full Prepare item (u8 prepared, then
    /// <see cref="CrossShardCommand.LegReportBytes"/> per leg) is larger than one full Decide's (u8, one per event).
    /// </summary>
    public const int ResultBytesMax = 1 + (ParticipantLegsMax * CrossShardCommand.LegReportBytes);

    /// <summary>Largest Prepared side record: u16 home, u64 prepared-at, u16 count, the legs.</summary>
    public const int PreparedRecordBytesMax = 12 + (ParticipantLegsMax * LegBytes);

    /// <summary>Largest Coordinator side record: u8 decision, u16 + participants, u16 + event ids.</summary>
    public const int CoordinatorRecordBytesMax = 5 + (2 * TransactionShardsMax) + (16 * TransactionEventsMax);

    /// <summary>Commands of each kind the driver has proposed and not yet seen applied.</summary>
    public const int ProposalsInFlightMax = 8;

    /// <summary>Message header bytes: version, kind, home shard, transaction id, counts.</summary>
    public const int MessageHeaderBytes = 32;

    /// <summary>
    /// Largest message between shards (about 2.4 MB): a Snapshot answer for a full transaction's accounts (two per event)
    /// or a bundle; a Prepare of a full transaction's legs on one participant is about half of it.
    /// </summary>
    public const int MessageBytesMax = MessageHeaderBytes + (TransactionEventsMax * 2 * LegBytes);

    /// <summary>How many times an unanswered query of a prepared leg is sent before the participant waits a full abandonment timeout again.</summary>
    public const int QueryRetriesMax = 1_000_000;

    /// <summary>Cross-shard transactions one coordinator drives at once (new submissions beyond this fail with 503).</summary>
    public const int CoordinatorTransactionsMax = 4096;

    /// <summary>
    /// Events of the transactions one coordinator holds at most, checked when a request longer than
    /// <see cref="ShortRequestEventsMax"/> arrives (beyond: 503): as many as <see cref="CoordinatorTransactionsMax"/> chains
    /// of 64 events, the bound before chains could be longer. With ~0.5 KB per event held (the events, their legs, the
    /// Decide item), about 130 MB at most.
    /// </summary>
    public const int CoordinatorEventsMax = CoordinatorTransactionsMax * 64;

    /// <summary>Requests of at most this many events are bounded by <see cref="CoordinatorTransactionsMax"/> alone.</summary>
    public const int ShortRequestEventsMax = 64;

    /// <summary>Prepared transactions one participant tracks in memory for abandonment checks.</summary>
    public const int ParticipantTransactionsMax = 16384;

    /// <summary>Finished transactions a participant leader remembers so that a late duplicate Prepare cannot reserve again.</summary>
    public const int RecentlyFinishedMax = 4 * ParticipantTransactionsMax;

    /// <summary>Actions queued for the host before the driver stops producing more (it retries on a later tick instead).</summary>
    public const int ActionsQueuedMax = 65536;

    /// <summary>Delegated post/voids a pending transfer's home remembers (running, and answered for duplicates).</summary>
    public const int DelegationsRememberedMax = 4096;

    /// <summary>
    /// Sends of one delegation a pending transfer's home counts (a bit each): after more sends than this the id's home
    /// takes only created as a definite answer (64 retry intervals: 3.2 s by default, near the abandonment timeout).
    /// </summary>
    public const int DelegationSendsCountedMax = 64;

    /// <summary>Cross-shard pending transfers a home shard's leader tracks for expiry at once (the earliest; later scans find the rest).</summary>
    public const int ExpiriesTrackedMax = 65536;

    /// <summary>Expiry transactions a leader starts per tick (the rest start on the next ticks).</summary>
    public const int ExpiriesStartedPerTickMax = 256;

    /// <summary>Times a balancing transaction refused by a stale clamp is started afresh on a new snapshot before the client gets 503.</summary>
    public const int StaleClampRestartsMax = 3;
}
