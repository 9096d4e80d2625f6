namespace RaftLedger.Node.Transport;

/// <summary>
/// Settings of one node's peer transport. The limits are named here, in one place, and a test asserts how
/// they relate: the largest Raft message fits in a batch (one peer frame), and a snapshot chunk fits in a gRPC message.
/// </summary>
public sealed record TransportOptions
{
    /// <summary>Largest encoded Raft message accepted for sending; the Raft core's message size limit must stay below it.</summary>
    public const int MessageBytesMax = 4 * 1024 * 1024;

    /// <summary>Largest batch written in one send. Always admits one message of <see cref="MessageBytesMax"/>.</summary>
    public const int BatchBytesMax = MessageBytesMax + (64 * 1024);

    /// <summary>
    /// Largest gRPC message either side accepts (snapshot chunks, forwarded requests; peer batches travel as
    /// <see cref="PeerFrames"/> frames of at most <see cref="BatchBytesMax"/>): a batch plus protobuf framing.
    /// </summary>
    public const int GrpcMessageBytesMax = BatchBytesMax + (64 * 1024);

    /// <summary>Bytes of one snapshot chunk.</summary>
    public const int SnapshotChunkBytesMax = 1024 * 1024;

    /// <summary>
    /// Queued bytes up to which the sender writes a peer's frame on its own thread (no wake-up of another thread, which
    /// is most of a small message's cost on this kind of machine); above it a pool thread writes, so that bulk sends
    /// (batched appends, catch-up) overlap the host's fsync instead of delaying it (PERFORMANCE "Twenty-fourth session").
    /// </summary>
    public const long InlineDrainBytesMax = 64 * 1024;

    /// <summary>Messages queued for one peer before new ones are dropped (Raft retransmits what is lost).</summary>
    public const int QueueMessagesMax = 8192;

    /// <summary>Bytes queued for one peer before new messages are dropped.</summary>
    public const long QueueBytesMax = 64L * 1024 * 1024;

    /// <summary>Header carrying the shared cluster secret on every stream.</summary>
    public const string SecretHeader = "x-raftledger-secret";

    /// <summary>Header carrying the caller's node id on every stream.</summary>
    public const string NodeHeader = "x-raftledger-node";

    /// <summary>This node's id (never 0).</summary>
    public required ulong NodeId { get; init; }

    /// <summary>The cluster secret every peer must present; peers with another secret are refused.</summary>
    public required string Secret { get; init; }

    /// <summary>First wait before redialing a peer after a failure; doubles up to <see cref="ReconnectDelayMax"/>.</summary>
    public TimeSpan ReconnectDelayMin { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Longest wait between redials, so a returning peer is found within about this long.</summary>
    public TimeSpan ReconnectDelayMax { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A connection that wrote nothing for this long sends a ping, so its peer's reader keeps seeing traffic; and a
    /// connection is checked for silence at this period (see <see cref="SilentIntervalsMax"/>).
    /// </summary>
    public TimeSpan PingInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A connection on which nothing at all arrived for this many ping intervals (about 3 s by default; the gRPC stream
    /// it replaced used HTTP/2 pings after 1 s with a 2 s timeout) is closed and its peer reported down. This also
    /// bounds a dial and its hello.
    /// </summary>
    public int SilentIntervalsMax { get; init; } = 3;

    /// <summary>Clock for backoff delays, pings and the silence limit.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Throws when the options cannot work, saying which value to fix.</summary>
    public void Validate()
    {
        if (NodeId == 0)
        {
            throw new ArgumentException("node id 0 is reserved; give every node an id of 1 or more", nameof(NodeId));
        }

        if (string.IsNullOrEmpty(Secret))
        {
            throw new ArgumentException("the cluster secret must not be empty; pass the same --secret to every node", nameof(Secret));
        }

        if (ReconnectDelayMin <= TimeSpan.Zero || ReconnectDelayMax < ReconnectDelayMin)
        {
            throw new ArgumentException("reconnect delays must satisfy 0 < min <= max", nameof(ReconnectDelayMin));
        }

        if (PingInterval <= TimeSpan.Zero || SilentIntervalsMax < 2)
        {
            throw new ArgumentException("the ping interval must be positive and the silence limit at least 2 intervals (one ping may be in flight)", nameof(PingInterval));
        }

        if (System.Text.Encoding.UTF8.GetByteCount(Secret) > PeerFrames.SecretBytesMax)
        {
            throw new ArgumentException($"the cluster secret must be at most {PeerFrames.SecretBytesMax} bytes (UTF-8)", nameof(Secret));
        }
    }
}
