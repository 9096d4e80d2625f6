using System.Collections.Frozen;
using RaftLedger.Ledger;
using RaftLedger.Node.Api;

namespace RaftLedger.Node.Tests.Cluster;

/// <summary>How an answer to create_transfers compares with the statuses a test expects.</summary>
internal enum AnswerVerdict
{
    /// <summary>Every status is the expected one.</summary>
    Exact,

    /// <summary>Not exact, but what the ledger answers to a retry after an earlier attempt of the same call applied.</summary>
    Excused,

    /// <summary>Neither: the cluster answered something the test does not expect.</summary>
    Wrong,
}

/// <summary>
/// Judges a create_transfers answer that came after retries. A retry sends the same ids, so when an earlier attempt
/// may have applied (504, a timeout, a broken connection), the ledger correctly answers what a duplicate gets: a
/// created transfer answers exists, and a transfer that failed with a transient status (its id burnt, see
/// <see cref="LedgerResults.IsTransient"/>) answers id_already_failed. Nothing else is excused.
/// </summary>
/// <remarks>
/// A linked chain is all-or-nothing, so it is judged as one unit, as RunBatch applies it: a chain starts at a linked
/// event and ends at the first event that is not linked (or at the end of the batch, open). A retried chain that was
/// created answers exists on its first event and linked_event_failed on the others (the first event's exists breaks
/// the chain); a retried chain that failed with a transient status answers id_already_failed on that event, the
/// others linked_event_failed as before. Each unit is either exact or one of those, independently of the other units
/// (a batch split by shard may have applied some parts only).
/// </remarks>
internal static class RetriedAnswers
{
    public const string Created = "created";
    public const string Exists = "exists";
    public const string IdAlreadyFailed = "id_already_failed";
    public const string LinkedEventFailed = "linked_event_failed";

    private static readonly FrozenDictionary<string, CreateTransferResult> StatusByName =
        Enum.GetValues<CreateTransferResult>().ToFrozenDictionary(SnakeCaseNames<CreateTransferResult>.Of);

    /// <summary>
    /// Compares <paramref name="actual"/> with <paramref name="expected"/> (one status per event of
    /// <paramref name="transfers"/>); <paramref name="possiblyApplied"/>: an earlier attempt of the same call may have
    /// applied, which alone allows <see cref="AnswerVerdict.Excused"/>.
    /// </summary>
    public static AnswerVerdict Judge(IReadOnlyList<Transfer> transfers, IReadOnlyList<string> expected, IReadOnlyList<string> actual, bool possiblyApplied)
    {
        if (expected.Count != transfers.Count)
        {
            throw new ArgumentException($"{expected.Count} expected statuses for {transfers.Count} transfers: give one per transfer.", nameof(expected));
        }

        if (actual.Count != expected.Count)
        {
            return AnswerVerdict.Wrong;
        }

        var verdict = AnswerVerdict.Exact;
        for (var start = 0; start < transfers.Count;)
        {
            var end = UnitEnd(transfers, start);
            var unit = Judge(expected.Skip(start).Take(end - start).ToArray(), actual.Skip(start).Take(end - start).ToArray(), possiblyApplied);
            if (unit == AnswerVerdict.Wrong)
            {
                return AnswerVerdict.Wrong;
            }

            verdict = unit == AnswerVerdict.Excused ? AnswerVerdict.Excused : verdict;
            start = end;
        }

        return verdict;
    }

    /// <summary>
    /// The statuses a retry of one unit (a single event or a chain) answers after an earlier attempt applied, when the
    /// unit's first answer was <paramref name="expected"/>; null when a retry answers the same (nothing was applied
    /// or burnt) or <paramref name="expected"/> is no answer the ledger gives to a chain.
    /// </summary>
    public static string[]? AfterApplied(IReadOnlyList<string> expected)
    {
        if (expected.All(s => s == Created))
        {
            return [Exists, .. Enumerable.Repeat(LinkedEventFailed, expected.Count - 1)];
        }

        var failing = Enumerable.Range(0, expected.Count).Where(i => expected[i] != LinkedEventFailed).ToArray();
        if (failing.Length != 1 || !StatusByName.TryGetValue(expected[failing[0]], out var status) || !LedgerResults.IsTransient(status))
        {
            return null;
        }

        var retried = expected.ToArray();
        retried[failing[0]] = IdAlreadyFailed;
        return retried;
    }

    private static AnswerVerdict Judge(string[] expected, string[] actual, bool possiblyApplied)
    {
        if (expected.SequenceEqual(actual))
        {
            return AnswerVerdict.Exact;
        }

        return possiblyApplied && AfterApplied(expected) is { } retried && retried.SequenceEqual(actual) ? AnswerVerdict.Excused : AnswerVerdict.Wrong;
    }

    /// <summary>One past the last event of the unit that starts at <paramref name="start"/>.</summary>
    private static int UnitEnd(IReadOnlyList<Transfer> transfers, int start)
    {
        var end = start;
        while (end < transfers.Count - 1 && (transfers[end].Flags & TransferFlags.Linked) != 0)
        {
            end++;
        }

        return end + 1;
    }
}
