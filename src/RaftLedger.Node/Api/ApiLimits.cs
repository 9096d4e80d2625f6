namespace RaftLedger.Node.Api;

/// <summary>
/// Every limit of the client API in one place. <c>ApiLimitsTests</c> asserts how they relate:
/// the largest legal batch, written with every field at its longest, fits in the body limit.
/// </summary>
public static class ApiLimits
{
    /// <summary>Events per create or lookup request (TigerBeetle's batch size for 128-byte events).</summary>
    public const int EventsPerBatchMax = 8189;

    /// <summary>
    /// Request body size. A transfer with every field present and at its maximum value is about
    /// 700 bytes of JSON, so 8189 of them need about 5.7 MiB; 8 MiB leaves room for whitespace.
    /// </summary>
    public const int RequestBodyBytesMax = 8 * 1024 * 1024;

    /// <summary>Rows returned by an account transfers or balances query when no limit is given.</summary>
    public const int QueryRowsDefault = 100;

    /// <summary>Rows a single account transfers or balances query may return.</summary>
    public const int QueryRowsMax = EventsPerBatchMax;

    /// <summary>Longest raw value echoed back in an error message, so errors stay readable.</summary>
    public const int EchoedValueCharsMax = 48;

    /// <summary>Retry-After sent with a 503 when the service does not suggest one.</summary>
    public const int RetryAfterSecondsDefault = 1;
}
