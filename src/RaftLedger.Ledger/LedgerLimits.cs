namespace RaftLedger.Ledger;

/// <summary>The ledger's limits, in one place (see the test that asserts how they relate).</summary>
public static class LedgerLimits
{
    /// <summary>Events per create_accounts / create_transfers batch (TigerBeetle's limit for 1 MiB messages).</summary>
    public const int BatchEventsMax = 8189;

    /// <summary>Results one get_account_transfers / get_account_balances query returns at most.</summary>
    public const int QueryResultsMax = 8189;

    /// <summary>Ids one lookup_accounts / lookup_transfers call takes at most.</summary>
    public const int LookupIdsMax = 8189;

    /// <summary>Encoded size of one account, transfer or balance record (TigerBeetle's 128-byte layout).</summary>
    public const int RecordSizeBytes = 128;

    /// <summary>Encoded size of a command header: version, operation, reserved, event count, batch timestamp.</summary>
    public const int CommandHeaderBytes = 16;

    /// <summary>Largest encoded command: a full batch.</summary>
    public const int CommandBytesMax = CommandHeaderBytes + (BatchEventsMax * RecordSizeBytes);

    /// <summary>Cluster timestamps (ns) stay below 2^63, as TigerBeetle's; expiry times too (overflows_timeout).</summary>
    public const ulong TimestampMax = long.MaxValue;

    /// <summary>Transfer timeouts are given in seconds and compared with cluster time in nanoseconds.</summary>
    public const ulong NanosecondsPerSecond = 1_000_000_000;

    /// <summary>
    /// Largest value of one side-table record (cross-shard protocol state): a Prepared record of a full transaction's
    /// legs on one participant, about 1.2 MB (RocksDB takes values of megabytes).
    /// </summary>
    public const int SideRecordBytesMax = CrossShard.CrossShardLimits.PreparedRecordBytesMax > CrossShard.CrossShardLimits.CoordinatorRecordBytesMax
        ? CrossShard.CrossShardLimits.PreparedRecordBytesMax
        : CrossShard.CrossShardLimits.CoordinatorRecordBytesMax;

    /// <summary>
    /// Result bytes one applied command writes at most: one per event for create commands, and a cross-shard Prepare's
    /// leg reports (<see cref="CrossShard.CrossShardLimits.ResultBytesMax"/>, about 80 KB), the larger.
    /// </summary>
    public const int ResultBytesMax = CrossShard.CrossShardLimits.ResultBytesMax > BatchEventsMax
        ? CrossShard.CrossShardLimits.ResultBytesMax
        : BatchEventsMax;
}
