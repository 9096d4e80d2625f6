namespace RaftLedger.Raft;

/// <summary>How a leader confirms it is still leader before answering a read index.</summary>
public enum ReadOnlyMode : byte
{
    /// <summary>Confirm with a heartbeat round to a quorum (no clock assumptions). The default.</summary>
    Safe = 0,

    /// <summary>Trust the check-quorum lease (assumes bounded clock drift); needs CheckQuorum.</summary>
    LeaseBased = 1,
}

/// <summary>What a follower does with a proposal.</summary>
public enum ProposalForwarding : byte
{
    /// <summary>Forward it to the known leader (the caller learns the outcome by watching the log).</summary>
    Forward = 0,

    /// <summary>Refuse it and return the leader hint so the caller can retry there.</summary>
    Refuse = 1,
}

/// <summary>
/// Options and limits of one Raft node, all in one place. Limits are validated by <see cref="Validate"/>,
/// which the <see cref="RaftNode"/> constructor calls; <see cref="Recommended"/> gives sensible values.
/// </summary>
public sealed class RaftConfig
{
    /// <summary>This node's id (never 0).</summary>
    public required ulong Id { get; init; }

    /// <summary>Ticks without hearing from a leader before a follower campaigns; the actual timeout is random in [ET, 2ET).</summary>
    public required int ElectionTimeoutTicks { get; init; }

    /// <summary>Ticks between a leader's heartbeats; must be well below the election timeout.</summary>
    public required int HeartbeatTicks { get; init; }

    /// <summary>Append messages in flight (sent, unacknowledged) per follower while replicating.</summary>
    public required int InflightMessagesMax { get; init; }

    /// <summary>Entry bytes in flight per follower while replicating.</summary>
    public required long InflightBytesMax { get; init; }

    /// <summary>Entry bytes per append message (a single larger entry is still sent alone).</summary>
    public required long MessageBytesMax { get; init; }

    /// <summary>Bytes of proposed-but-uncommitted entries a leader accepts before refusing proposals.</summary>
    public required long UncommittedBytesMax { get; init; }

    /// <summary>Campaign with a pre-vote first, so an isolated node cannot disrupt a healthy leader.</summary>
    public required bool PreVote { get; init; }

    /// <summary>A leader that hears from no quorum for an election timeout steps down; followers honour leases.</summary>
    public required bool CheckQuorum { get; init; }

    /// <summary>How read-index requests are confirmed.</summary>
    public required ReadOnlyMode ReadOnlyMode { get; init; }

    /// <summary>What followers do with proposals.</summary>
    public required ProposalForwarding ProposalForwarding { get; init; }

    /// <summary>Bytes of committed entries handed out in one Ready for applying.</summary>
    public long ReadyCommittedBytesMax { get; init; } = 16L << 20;

    /// <summary>
    /// The last index the host's state machine has applied (persisted alongside its state). On restart the
    /// core hands out committed entries after it. 0 for a fresh node. It may exceed the persisted commit index,
    /// which a host need not sync (<see cref="Ready.MustSync"/>), but never the stored log.
    /// </summary>
    public ulong Applied { get; init; }

    /// <summary>
    /// This node lost its durable state (its data folder was wiped) and rejoins under the same id, having forgotten
    /// entries it acknowledged and votes it cast. Until it holds a committed entry of the current leader's term (so
    /// every entry committed before that leader, all of which that leader has), it neither votes nor campaigns: its
    /// vote could otherwise elect a replica that lacks an acknowledged entry. (A vote it cast before the wipe in a term
    /// no live node knows about is still forgotten; only a new identity closes that.)
    /// </summary>
    public bool Rejoining { get; init; }

    /// <summary>Values that suit a LAN cluster ticking every 100 ms: 1 s election timeout, 100 ms heartbeats.</summary>
    public static RaftConfig Recommended(ulong id) => new()
    {
        Id = id,
        ElectionTimeoutTicks = 10,
        HeartbeatTicks = 1,
        InflightMessagesMax = 256,
        InflightBytesMax = 32L << 20,
        MessageBytesMax = 1L << 20,
        UncommittedBytesMax = 64L << 20,
        PreVote = true,
        CheckQuorum = true,
        ReadOnlyMode = ReadOnlyMode.Safe,
        ProposalForwarding = ProposalForwarding.Forward,
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option that is out of range and how to fix it.</summary>
    public void Validate()
    {
        Require(Id != 0, nameof(Id), "node id 0 is reserved for 'none'; use ids from 1");
        Require(HeartbeatTicks >= 1, nameof(HeartbeatTicks), "must be at least 1 tick");
        Require(ElectionTimeoutTicks > HeartbeatTicks, nameof(ElectionTimeoutTicks),
            $"must exceed HeartbeatTicks ({HeartbeatTicks}); 10x is usual");
        Require(InflightMessagesMax >= 1, nameof(InflightMessagesMax), "must be at least 1");
        Require(MessageBytesMax >= Entry.OverheadBytes, nameof(MessageBytesMax),
            $"must hold at least one empty entry ({Entry.OverheadBytes} bytes)");
        Require(InflightBytesMax >= MessageBytesMax, nameof(InflightBytesMax),
            $"must allow at least one full message ({MessageBytesMax} bytes)");
        Require(UncommittedBytesMax >= MessageBytesMax, nameof(UncommittedBytesMax),
            $"must allow at least one full message ({MessageBytesMax} bytes)");
        Require(ReadyCommittedBytesMax >= MessageBytesMax, nameof(ReadyCommittedBytesMax),
            $"must allow at least one full message ({MessageBytesMax} bytes)");
        Require(ReadOnlyMode != ReadOnlyMode.LeaseBased || CheckQuorum, nameof(ReadOnlyMode),
            "lease-based reads are only safe with CheckQuorum = true");
    }

    private static void Require(bool condition, string option, string what)
    {
        if (!condition)
        {
            throw new ArgumentException($"RaftConfig.{option} is invalid: {what}.", option);
        }
    }
}
