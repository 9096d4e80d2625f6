using System.Buffers.Binary;
using RaftLedger.Common;
using RaftLedger.Ledger;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>A part of a coalesced entry: one client request and where its events start in the command.</summary>
internal readonly record struct ProposedPart(ShardRequest Request, int Offset);

/// <summary>An entry this leader proposed: its term, batch timestamp, event count and the requests it carries.</summary>
internal sealed record ProposedEntry(ulong Term, ulong BatchTimestamp, int EventCount, List<ProposedPart> Parts);

internal sealed partial class ShardReplica
{
    /// <summary>
    /// Coalesces queued writes of the same operation into ledger commands (at most one batch each, and never
    /// past a request whose last event leaves a linked chain open, so chains never span clients), assigns each
    /// command its cluster timestamp and proposes it.
    /// </summary>
    private void ProposeQueuedWrites()
    {
        for (var entries = 0; entries < HostOptions.EntriesPerRoundMax && writes.Count > 0; entries++)
        {
            var kind = writes.Peek().Kind;
            var parts = new List<ProposedPart>();
            var events = 0;
            while (writes.TryPeek(out var next) && next.Kind == kind && events + next.EventCount <= HostOptions.EntryEventsMax)
            {
                writes.Dequeue();
                if (!next.TryMarkProposed())
                {
                    continue; // The caller's deadline passed while it waited: it was told nothing was applied.
                }

                parts.Add(new ProposedPart(next, events));
                events += next.EventCount;
                if (next.EndsWithOpenChain())
                {
                    break;
                }
            }

            if (events > 0)
            {
                Propose(kind, parts, events);
            }
        }
    }

    private void Propose(ShardRequestKind kind, List<ProposedPart> parts, int events)
    {
        Invariant.Check(events <= HostOptions.EntryEventsMax);
        // Event i of a batch with timestamp T gets T - n + i + 1, so T must leave room for all n above the last.
        var now = (ulong)(time.GetUtcNow().ToUnixTimeMilliseconds() * 1_000_000);
        var timestamp = Math.Max(now, lastProposedTimestamp + (ulong)events);
        var command = new byte[LedgerCommand.EncodedLength(events)];
        command[0] = LedgerCommand.Version;
        command[1] = (byte)(kind == ShardRequestKind.CreateAccounts ? LedgerOperation.CreateAccounts : LedgerOperation.CreateTransfers);
        BinaryPrimitives.WriteUInt32LittleEndian(command.AsSpan(4), (uint)events);
        BinaryPrimitives.WriteUInt64LittleEndian(command.AsSpan(8), timestamp);
        foreach (var part in parts)
        {
            part.Request.Payload.Span.CopyTo(command.AsSpan(LedgerLimits.CommandHeaderBytes + (part.Offset * LedgerLimits.RecordSizeBytes)));
        }

        Invariant.Check(LedgerCommand.TryReadHeader(command, out _, out _, out var count) && count == events);
        var result = Raft.Propose(command);
        if (!result.IsAccepted)
        {
            var status = result.Status == ProposalStatus.UncommittedLogFull ? ShardCallStatus.Overloaded : ShardCallStatus.NoLeader;
            var failure = ShardCallResult.Fail(status, $"shard {Shard}: {result.Describe()}", result.LeaderHint);
            parts.ForEach(p => p.Request.Complete(failure));
            return;
        }

        Invariant.Check(result.FirstIndex == result.LastIndex);
        lastProposedTimestamp = timestamp;
        FailOverwrittenProposal(result.FirstIndex, result.Term);
        proposed.Add(result.FirstIndex, new ProposedEntry(result.Term, timestamp, events, parts));
    }

    /// <summary>Applies committed entries in order: ledger commands change the ledger; requests waiting on them complete.</summary>
    public void Apply(IReadOnlyList<Entry> committed)
    {
        foreach (var entry in committed)
        {
            if (entry.Index <= applied)
            {
                continue; // Already applied before a restart (the ledger store persisted it).
            }

            Invariant.Check(entry.Index == applied + 1, "committed entries are applied in order, without gaps");
            var command = entry.Type == EntryType.Normal && entry.Data.Length > 0;
            if (command)
            {
                // UnsafeTestFaults is off unless a test deliberately breaks this node (see there).
                var eventCount = UnsafeTestFaults.SkipApply(entry.Index, entry.Data.Span, applyResults)
                    ?? Ledger.Apply(entry.Data.Span, applyResults, entry.Index).EventCount;
                CompleteProposal(entry, eventCount);
                OnEntryApplied(entry, applyResults.AsSpan(0, eventCount));
            }
            else
            {
                FailReplacedProposal(entry);
                OnEntryApplied(entry, default);
            }

            applied = entry.Index;
        }

        CompleteReadsUpTo(applied);
    }

    private void CompleteProposal(in Entry entry, int eventCount)
    {
        if (!proposed.Remove(entry.Index, out var mine))
        {
            return;
        }

        if (mine.Term != entry.Term)
        {
            FailParts(mine, entry.Index);
            return;
        }

        Invariant.Check(mine.EventCount == eventCount);
        foreach (var part in mine.Parts)
        {
            var count = part.Request.EventCount;
            var results = new byte[count * ShardPayload.WriteResultBytes];
            for (var i = 0; i < count; i++)
            {
                var status = applyResults[part.Offset + i];
                var at = i * ShardPayload.WriteResultBytes;
                results[at] = status;
                // Event k of n in a batch with timestamp T was stamped T - n + k + 1 (LedgerStateMachine remarks).
                var stamp = status == 0 ? mine.BatchTimestamp - (ulong)eventCount + (ulong)(part.Offset + i) + 1 : 0;
                BinaryPrimitives.WriteUInt64LittleEndian(results.AsSpan(at + 1), stamp);
            }

            CompleteWrite(part.Request, results);
        }
    }

    private void FailReplacedProposal(in Entry entry)
    {
        if (proposed.Remove(entry.Index, out var mine))
        {
            FailParts(mine, entry.Index);
        }
    }

    // This replica proposed at `index` in an earlier term, lost the lead, had that entry truncated by a leader with a
    // shorter log, and now leads again with its new entry at the same index. The old entry is no longer in the
    // leader's log, so it can never commit (a committed entry is in every later leader's log): fail it now, as its
    // apply will never come.
    private void FailOverwrittenProposal(ulong index, ulong term)
    {
        if (proposed.Remove(index, out var overwritten))
        {
            Invariant.Check(overwritten.Term < term, "a leader proposes each index once per term");
            FailParts(overwritten, index);
        }
    }

    private void FailParts(ProposedEntry mine, ulong index)
    {
        // Another leader's entry took this index: ours can never commit, so nothing of it was applied.
        var failure = ShardCallResult.Fail(ShardCallStatus.NoLeader, $"shard {Shard} changed leader before entry {index} committed; nothing was applied, retry", Raft.Leader);
        mine.Parts.ForEach(p => p.Request.Complete(failure));
    }
}
