using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

// A post/void arrives at its id's home h, but its pending transfer's status lives at the pending transfer's
// home p: h delegates it to p (Delegate), p coordinates it as a transaction whose participants are the legs'
// shards and h (an id leg: h checks and claims the id, and stores the authoritative copy), and answers h
// (Delegated) once it is finished everywhere. h resends until answered; p answers a duplicate from memory.
//
// That memory is per leader of p, so once h has sent a Delegate twice an earlier send may have run at another
// leader (committed, or still running there) and the answer h gets may come from a later run that saw its effects:
// exists (the earlier run's own record), pending_transfer_already_posted/voided (the earlier run moved the pending
// transfer on), id_already_failed (the earlier run burnt the id), or a failure or Retry while the earlier run can
// still commit (a new leader of p may resume it only after the later run started). So each Delegate carries its send
// number and p's answer says how many of the sends its leader received, and the latest: when that leader received
// every send h made, no other leader ran any and the answer stands; when it received every send up to its latest but
// h has sent more since, h waits for the answer to those (that leader answers them from memory); otherwise h takes
// only created as definite and turns every other answer into outcome unknown (504, retry with the same id), as for
// DelegatedOutcome.Unknown. Created is safe: a run that commits holds the id's claim on h (an earlier run holding
// it makes it IdBusy; one that stored it makes it exists) and its Decide at p re-checks the pending transfer's status
// in log order (an earlier run that committed leaves it posted/voided), so two runs never both commit. Sorting the failures into those an earlier run could
// cause and those it could not is not worth the risk: a client's retry is a first send again, and p checks it
// against its own copy and the pending transfer without a transaction, so it answers exists (or a failure found
// against the pending transfer) in one round trip. (A Delegate the network delivers twice could still run at two
// leaders unnoticed: the transport may duplicate, see docs/design/cross-shard.md "Not done".)
public sealed partial class CrossShardDriver
{
    // At h: post/voids sent to their pending transfer's home, by delegation id (a transaction id of h).
    // Invariant: each holds one open unit of its request.
    private readonly Dictionary<UInt128, Delegation> delegations = [];

    // At p: delegations received, by delegation id: the request running it, then the answer (resent to duplicates).
    // Invariant: at most CrossShardLimits.DelegationsRememberedMax entries; answeredOrder lists the answered ones.
    private readonly Dictionary<UInt128, Delegated> delegated = [];
    private readonly Queue<UInt128> answeredOrder = new();
    private long remoteTokenSequence;

    /// <summary>At h: hands a single post/void whose pending transfer lives on another shard to that shard.</summary>
    private void StartDelegation(Request request, in Transfer t, int offset)
    {
        var delegation = new Delegation(NextTransactionId(), request, offset, t, nowNs);
        delegations.Add(delegation.Id, delegation);
        request.Open++;
        SendDelegate(delegation);
    }

    private void SendDelegate(Delegation delegation)
    {
        delegation.LastSentNs = nowNs;
        delegation.Sends = Math.Min(delegation.Sends + 1, CrossShardLimits.DelegationSendsCountedMax + 1);
        Send(ShardOf(delegation.Event.PendingId), new CrossShardMessage(CrossShardMessageKind.Delegate, shard, shard, delegation.Id)
        {
            Legs = [new Leg(0, LegSides.Id, delegation.Event)],
            Sends = delegation.Sends,
        });
    }

    /// <summary>At h: the pending transfer's home answered (late or duplicate answers are ignored).</summary>
    private void OnDelegatedReply(CrossShardMessage message)
    {
        if (message.Home != shard || !delegations.TryGetValue(message.TransactionId, out var delegation) || AnswersOlderSendsOnly(delegation, message))
        {
            return;
        }

        delegations.Remove(message.TransactionId);
        var request = delegation.Request;
        request.Open--;
        switch (OutcomeTaken(delegation, message))
        {
            case DelegatedOutcome.Answered:
                request.Results[delegation.Offset] = message.Status;
                request.Timestamps[delegation.Offset] = message.Status == CreateTransferResult.Created ? message.Timestamp : 0;
                request.AnyCommitted |= message.Status == CreateTransferResult.Created;
                break;
            case DelegatedOutcome.Retry:
                request.FailDetail ??= $"The post/void {delegation.Event.Id:X32} was not applied (its pending transfer's shard could not finish it now): retry with the same id.";
                break;
            default:
                var cause = delegation.Sends > 1 ? "it was sent to its pending transfer's shard again, where an earlier attempt may have run" : "its pending transfer's shard changed leader";
                request.AnyCommitted = true;
                request.FailDetail ??= $"The post/void {delegation.Event.Id:X32} may have been applied ({cause}): retry with the same id.";
                break;
        }

        MaybeAnswer(request);
    }

    /// <summary>
    /// An answer (not created) from a leader that received every send up to its latest but not h's newest: the newer
    /// sends are on their way (or lost; h resends), and that leader answers them from memory with the full count, so
    /// h waits for that answer instead of turning this one into outcome unknown.
    /// </summary>
    private static bool AnswersOlderSendsOnly(Delegation delegation, CrossShardMessage message) =>
        message.Outcome != DelegatedOutcome.Unknown && !IsCreated(message) && message.Sends == message.LatestSend && message.LatestSend >= 1 && message.LatestSend < delegation.Sends;

    /// <summary>
    /// How h takes p's answer: after a resend only created is definite, unless the answering leader received every send
    /// (see the comment at the top of this file). The first send's answer stands as it is.
    /// </summary>
    private static DelegatedOutcome OutcomeTaken(Delegation delegation, CrossShardMessage message)
    {
        var everySendSeen = message.Sends == delegation.Sends && delegation.Sends <= CrossShardLimits.DelegationSendsCountedMax;
        return delegation.Sends > 1 && !IsCreated(message) && !everySendSeen ? DelegatedOutcome.Unknown : message.Outcome;
    }

    private static bool IsCreated(CrossShardMessage answer) => answer.Outcome == DelegatedOutcome.Answered && answer.Status == CreateTransferResult.Created;

    /// <summary>At h: resends unanswered delegations; gives up (outcome unknown) after the abandonment timeout.</summary>
    private void TickDelegations()
    {
        List<Delegation>? expired = null;
        foreach (var delegation in delegations.Values)
        {
            if (nowNs - delegation.StartedNs >= options.AbandonTimeoutNs)
            {
                (expired ??= []).Add(delegation);
            }
            else if (nowNs - delegation.LastSentNs >= options.RetryIntervalNs)
            {
                SendDelegate(delegation);
            }
        }

        foreach (var delegation in expired ?? [])
        {
            OnDelegatedReply(new CrossShardMessage(CrossShardMessageKind.Delegated, shard, shard, delegation.Id) { Outcome = DelegatedOutcome.Unknown });
        }
    }

    /// <summary>At p: runs a post/void delegated by its id's home, or answers a duplicate from memory.</summary>
    private void OnDelegateRequest(CrossShardMessage message)
    {
        if (message.Legs.Length != 1 || !IsPostOrVoid(message.Legs[0].Transfer) || (message.Legs[0].Transfer.Flags & TransferFlags.Linked) != 0 ||
            ShardOf(message.Legs[0].Transfer.PendingId) != shard || ShardOf(message.Legs[0].Transfer.Id) != message.From || message.Home != message.From ||
            message.Sends is < 1 or > CrossShardLimits.DelegationSendsCountedMax + 1)
        {
            MessagesDropped++;
            return;
        }

        if (delegated.TryGetValue(message.TransactionId, out var known))
        {
            known.Received(message.Sends);
            if (known.Answer is { } answer)
            {
                Send(message.From, answer with { Sends = known.SendsReceived, LatestSend = known.LatestSend });
            }

            return; // Still running: it answers when finished.
        }

        if (delegated.Count >= CrossShardLimits.DelegationsRememberedMax && !ForgetOldestAnswer())
        {
            return; // Full of running delegations: dropped like a lost message; h resends.
        }

        var request = new Request(--remoteTokenSequence, 1) { ReplyTo = message.From, DelegationId = message.TransactionId };
        requests.Add(request.Token, request);
        var entry = new Delegated(request);
        entry.Received(message.Sends);
        delegated.Add(message.TransactionId, entry);
        StartUnit(request, message.Legs.Select(l => l.Transfer).ToArray(), 0);
        MaybeAnswer(request);
    }

    private bool ForgetOldestAnswer()
    {
        if (!answeredOrder.TryDequeue(out var oldest))
        {
            return false;
        }

        delegated.Remove(oldest);
        return true;
    }

    /// <summary>At p: a delegated request is done: its answer goes to h (and is kept for duplicates).</summary>
    private void AnswerDelegation(Request request)
    {
        Invariant.Check(request.ReplyTo >= 0 && request.Results.Length == 1, "a delegation is one post/void");
        var outcome = request.FailDetail is null ? DelegatedOutcome.Answered : request.AnyCommitted ? DelegatedOutcome.Unknown : DelegatedOutcome.Retry;
        var answer = new CrossShardMessage(CrossShardMessageKind.Delegated, request.ReplyTo, shard, request.DelegationId)
        {
            Outcome = outcome,
            Status = request.Results[0],
            Timestamp = request.Timestamps[0],
        };
        var (sendsReceived, latestSend) = (0, 0);
        if (delegated.TryGetValue(request.DelegationId, out var entry))
        {
            entry.Answer = answer;
            answeredOrder.Enqueue(request.DelegationId);
            (sendsReceived, latestSend) = (entry.SendsReceived, entry.LatestSend);
        }

        Send(request.ReplyTo, answer with { Sends = sendsReceived, LatestSend = latestSend });
    }

    private void ClearDelegations()
    {
        delegations.Clear();
        delegated.Clear();
        answeredOrder.Clear();
    }

    private sealed class Delegation(UInt128 id, Request request, int offset, Transfer @event, ulong startedNs)
    {
        public UInt128 Id { get; } = id;

        public Request Request { get; } = request;

        public int Offset { get; } = offset;

        public Transfer Event { get; } = @event;

        public ulong StartedNs { get; } = startedNs;

        public ulong LastSentNs { get; set; }

        /// <summary>Delegates sent so far (1 = only the first; at most DelegationSendsCountedMax + 1, meaning more than p counts).</summary>
        public int Sends { get; set; }
    }

    private sealed class Delegated(Request request)
    {
        // Bit n - 1: send n of h reached this leader (a duplicate delivery counts once).
        private ulong sendsReceivedMask;

        public Request Request { get; } = request;

        public CrossShardMessage? Answer { get; set; }

        /// <summary>How many distinct sends of h this leader received: when it equals h's sends, no other leader got any.</summary>
        public int SendsReceived => System.Numerics.BitOperations.PopCount(sendsReceivedMask);

        /// <summary>The highest send number of h this leader received.</summary>
        public int LatestSend { get; private set; }

        public void Received(int send)
        {
            Invariant.Check(send >= 1, "sends are numbered from 1");
            LatestSend = Math.Max(LatestSend, send);
            if (send <= CrossShardLimits.DelegationSendsCountedMax)
            {
                sendsReceivedMask |= 1UL << (send - 1);
            }
        }
    }
}
