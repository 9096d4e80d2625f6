using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Host;

/// <summary>
/// A create_transfers request the home shard's leader split into parts: its fast-path events (one coalesced
/// write) and its cross-shard events (one or more driver submissions). Each part reports once; when the last
/// one has, the caller gets every event's result in input order, or a failure: "nothing applied" only when
/// every part says so, otherwise "outcome unknown" (a retry with the same ids is safe and tells).
/// Parts report from the scheduler thread and from the fast part's completion, hence the lock.
/// </summary>
internal sealed class SplitRequest(ShardRequest parent)
{
    private readonly Lock gate = new();
    private readonly byte[] results = new byte[parent.EventCount * ShardPayload.WriteResultBytes];

    // Invariant: remaining > 0 until the parent is completed, exactly once, when it reaches 0.
    private int remaining;
    private bool mayHaveApplied;
    private ShardCallResult? failure;

    /// <summary>How many parts will report; set before any part can.</summary>
    public void Expect(int parts)
    {
        Invariant.Check(parts > 0 && remaining == 0);
        remaining = parts;
    }

    public void FastDone(int[] positions, ShardCallResult result)
    {
        lock (gate)
        {
            if (result.IsOk)
            {
                Invariant.Check(result.Payload.Length == positions.Length * ShardPayload.WriteResultBytes);
                for (var j = 0; j < positions.Length; j++)
                {
                    result.Payload.Span.Slice(j * ShardPayload.WriteResultBytes, ShardPayload.WriteResultBytes)
                        .CopyTo(results.AsSpan(positions[j] * ShardPayload.WriteResultBytes));
                }

                mayHaveApplied = true;
            }
            else
            {
                mayHaveApplied |= result.Status == ShardCallStatus.OutcomeUnknown;
                failure ??= result;
            }

            FinishOne();
        }
    }

    public void CrossDone(int[] positions, CreateTransferResult[] statuses, ulong[] timestamps)
    {
        lock (gate)
        {
            Invariant.Check(statuses.Length == positions.Length && timestamps.Length == positions.Length);
            for (var j = 0; j < positions.Length; j++)
            {
                var at = positions[j] * ShardPayload.WriteResultBytes;
                results[at] = (byte)statuses[j];
                BinaryPrimitives.WriteUInt64LittleEndian(results.AsSpan(at + 1), timestamps[j]);
            }

            mayHaveApplied = true;
            FinishOne();
        }
    }

    public void CrossFailed(bool outcomeUnknown, string detail, ulong leaderHint)
    {
        lock (gate)
        {
            mayHaveApplied |= outcomeUnknown;
            failure ??= ShardCallResult.Fail(outcomeUnknown ? ShardCallStatus.OutcomeUnknown : ShardCallStatus.Overloaded, detail, leaderHint);
            FinishOne();
        }
    }

    private void FinishOne()
    {
        Invariant.Check(remaining > 0, "each part reports once");
        if (--remaining > 0)
        {
            return;
        }

        if (failure is not { } failed)
        {
            parent.Complete(ShardCallResult.Ok(results));
        }
        else if (mayHaveApplied && failed.Status != ShardCallStatus.OutcomeUnknown)
        {
            parent.Complete(ShardCallResult.Fail(ShardCallStatus.OutcomeUnknown, $"{failed.Detail}; other events of the batch may have been applied, retry with the same ids"));
        }
        else
        {
            parent.Complete(failed);
        }
    }
}
