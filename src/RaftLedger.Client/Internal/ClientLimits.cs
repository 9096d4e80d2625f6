using RaftLedger.Ledger;

namespace RaftLedger.Client.Internal;

/// <summary>The client's fixed limits, in one place (a test asserts how they relate).</summary>
internal static class ClientLimits
{
    /// <summary>Events in one create request: the cluster's batch limit (TigerBeetle's 8189).</summary>
    public const int BatchEventsMax = LedgerLimits.BatchEventsMax;

    /// <summary>Ids in one lookup request.</summary>
    public const int LookupIdsMax = LedgerLimits.LookupIdsMax;

    /// <summary>Largest gRPC message sent or received: a full batch of events or results with room to spare.</summary>
    public const int MessageBytesMax = 16 * 1024 * 1024;

    /// <summary>Upper bound on one event's protobuf encoding (19 fields, none over 10 bytes plus a 2-byte tag).</summary>
    public const int EventWireBytesMax = 19 * 12;

    /// <summary>A node that failed a request is avoided for this long (unless no other node is left).</summary>
    public static readonly TimeSpan NodeAvoidDuration = TimeSpan.FromSeconds(1);

    /// <summary>Failure-triggered map refreshes start at most this often.</summary>
    public static readonly TimeSpan ClusterMapRefreshGapMin = TimeSpan.FromMilliseconds(50);

    /// <summary>One node's answer to a cluster-map read is awaited at most this long.</summary>
    public static readonly TimeSpan ClusterMapReadTimeout = TimeSpan.FromSeconds(2);
}
