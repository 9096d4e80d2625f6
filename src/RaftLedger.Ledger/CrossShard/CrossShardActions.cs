namespace RaftLedger.Ledger.CrossShard;

/// <summary>
/// Something the host must do for a <see cref="CrossShardDriver"/>: the driver is pure, so every
/// proposal, message and client answer leaves it as an action, taken in order with
/// <see cref="CrossShardDriver.TryTakeAction"/>.
/// </summary>
public abstract record CrossShardAction;

/// <summary>
/// Propose <paramref name="Command"/> (an ordinary ledger command, see <see cref="LedgerCommand"/>) on
/// this shard's Raft group. When its entry is applied on this replica the host calls
/// <see cref="CrossShardDriver.OnProposalApplied"/> with the same token and the result bytes of
/// <see cref="LedgerStateMachine.Apply"/>; when it will never apply, <see cref="CrossShardDriver.OnProposalFailed"/>.
/// The batch timestamp inside the command is a placeholder (0): the host stamps it like every other
/// proposal (<see cref="LedgerCommand.SetBatchTimestamp"/>).
/// </summary>
public sealed record ProposeAction(long Token, byte[] Command) : CrossShardAction;

/// <summary>Send <paramref name="Message"/> (opaque, at most <see cref="CrossShardLimits.MessageBytesMax"/>) to the leader of <paramref name="ToShard"/>; best effort, may be lost.</summary>
public sealed record SendAction(int ToShard, byte[] Message) : CrossShardAction;

/// <summary>
/// The request <paramref name="RequestToken"/> (from <see cref="CrossShardDriver.Submit"/>) is decided:
/// one result and one timestamp (0 unless created) per submitted event, in submission order.
/// </summary>
public sealed record CompleteAction(long RequestToken, CreateTransferResult[] Results, ulong[] Timestamps) : CrossShardAction;

/// <summary>
/// The request <paramref name="RequestToken"/> cannot be answered by this driver (HTTP 503 when
/// <paramref name="OutcomeUnknown"/> is false: nothing was decided, retry; 504 when true: the outcome
/// will be decided without this client, retry with the same ids to learn it).
/// </summary>
public sealed record FailAction(long RequestToken, bool OutcomeUnknown, string Detail) : CrossShardAction;
