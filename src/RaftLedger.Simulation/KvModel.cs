namespace RaftLedger.Simulation;

public enum KvOperationKind : byte
{
    /// <summary>Sets the key's value.</summary>
    Put = 1,

    /// <summary>Reads the key's value (0 for a key never written).</summary>
    Get = 2,

    /// <summary>Adds the value to the key's value and returns the new value (a counter).</summary>
    Add = 3,
}

/// <summary>A client's request to the replicated key-value state machine.</summary>
public readonly record struct KvInput(KvOperationKind Kind, long Key, long Value);

/// <summary>
/// The sequential specification of one key: a register that also supports add. Puts of a pending
/// operation are accepted with any output; reads and adds must return exactly the modelled value.
/// </summary>
public sealed class RegisterModel : ISequentialModel<long, KvInput, long>
{
    public static RegisterModel Instance { get; } = new();

    public long Initial => 0;

    public bool Step(long state, KvInput input, long output, bool pending, out long next)
    {
        switch (input.Kind)
        {
            case KvOperationKind.Put:
                next = input.Value;
                return true;
            case KvOperationKind.Get:
                next = state;
                return pending || output == state;
            case KvOperationKind.Add:
                next = state + input.Value;
                return pending || output == next;
            default:
                throw new ArgumentOutOfRangeException(nameof(input), input.Kind, "unknown key-value operation");
        }
    }
}

/// <summary>Checks a key-value history key by key (a history is linearizable iff each key's is).</summary>
public static class KvLinearizability
{
    /// <summary>Returns the first key whose history is not linearizable (or unknown), or null when all are.</summary>
    public static (long Key, LinearizabilityOutcome Outcome)? FindViolation(IReadOnlyList<Operation<KvInput, long>> history)
    {
        var byKey = new SortedDictionary<long, List<Operation<KvInput, long>>>();
        foreach (var operation in history)
        {
            if (!byKey.TryGetValue(operation.Input.Key, out var list))
            {
                byKey[operation.Input.Key] = list = [];
            }

            // A read whose answer never came constrains nothing; leaving it out keeps the search small.
            if (!(operation.IsPending && operation.Input.Kind == KvOperationKind.Get))
            {
                list.Add(operation);
            }
        }

        foreach (var (key, operations) in byKey)
        {
            var outcome = LinearizabilityChecker.Check(operations, RegisterModel.Instance);
            if (outcome != LinearizabilityOutcome.Linearizable)
            {
                return (key, outcome);
            }
        }

        return null;
    }
}
