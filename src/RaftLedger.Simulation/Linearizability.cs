using RaftLedger.Common;

namespace RaftLedger.Simulation;

/// <summary>A sequential specification: the model a concurrent history must be explainable by.</summary>
public interface ISequentialModel<TState, TInput, TOutput>
    where TState : IEquatable<TState>
{
    TState Initial { get; }

    /// <summary>
    /// Applies <paramref name="input"/> to <paramref name="state"/>. Returns false when the observed
    /// <paramref name="output"/> is impossible from that state. For a pending operation (its outcome was
    /// never observed) <paramref name="pending"/> is true and the output must not be checked.
    /// </summary>
    bool Step(TState state, TInput input, TOutput output, bool pending, out TState next);
}

public enum LinearizabilityOutcome
{
    Linearizable,
    NotLinearizable,

    /// <summary>The search exceeded <see cref="SimLimits.CheckerStepsMax"/>: no verdict.</summary>
    Unknown,
}

/// <summary>
/// Decides whether a history is linearizable: whether each operation can be given one instant between
/// its call and its return so that the sequence of instants obeys the sequential model. This is the
/// Wing–Gong search with Lowe's memoisation (as in Porcupine): repeatedly linearize an operation whose
/// call comes before every remaining return, remember each (set of linearized operations, state) already
/// tried, and backtrack when the first remaining event is a return whose operation is not linearized.
/// A pending operation returns "at infinity": it may be linearized after everything, which is the same as
/// never having taken effect.
/// </summary>
public static class LinearizabilityChecker
{
    public static LinearizabilityOutcome Check<TState, TInput, TOutput>(
        IReadOnlyList<Operation<TInput, TOutput>> operations,
        ISequentialModel<TState, TInput, TOutput> model,
        long stepsMax = SimLimits.CheckerStepsMax)
        where TState : IEquatable<TState>
    {
        Invariant.Check(operations.Count <= SimLimits.OperationsPerKeyMax, "partition the history (e.g. by key) first");
        if (operations.Count == 0)
        {
            return LinearizabilityOutcome.Linearizable;
        }

        var list = BuildEventList(operations);
        return Search(operations, model, list, stepsMax);
    }

    private static LinearizabilityOutcome Search<TState, TInput, TOutput>(
        IReadOnlyList<Operation<TInput, TOutput>> operations,
        ISequentialModel<TState, TInput, TOutput> model,
        EventList list,
        long stepsMax)
        where TState : IEquatable<TState>
    {
        var linearized = new ulong[(operations.Count + 63) / 64];
        var seen = new HashSet<CacheKey<TState>>();
        var stack = new Stack<(int CallEvent, TState StateBefore)>();
        var state = model.Initial;
        var e = list.Next[0];
        for (long steps = 0; list.Next[0] != -1; steps++)
        {
            if (steps >= stepsMax)
            {
                return LinearizabilityOutcome.Unknown;
            }

            if (list.IsCall[e])
            {
                var op = operations[list.Operation[e]];
                if (model.Step(state, op.Input, op.Output, op.IsPending, out var next) &&
                    seen.Add(new CacheKey<TState>(With(linearized, list.Operation[e]), next)))
                {
                    stack.Push((e, state));
                    state = next;
                    Set(linearized, list.Operation[e], true);
                    list.Lift(e);
                    e = list.Next[0];
                }
                else
                {
                    e = list.Next[e];
                }

                continue;
            }

            // A return of an operation not yet linearized: the choices so far cannot be right.
            if (stack.Count == 0)
            {
                return LinearizabilityOutcome.NotLinearizable;
            }

            var (call, before) = stack.Pop();
            state = before;
            Set(linearized, list.Operation[call], false);
            list.Unlift(call);
            e = list.Next[call];
        }

        return LinearizabilityOutcome.Linearizable;
    }

    private static EventList BuildEventList<TInput, TOutput>(IReadOnlyList<Operation<TInput, TOutput>> operations)
    {
        var n = operations.Count;
        var order = new (long Time, int Kind, int Operation)[2 * n];
        for (var i = 0; i < n; i++)
        {
            Invariant.Check(operations[i].CallTime < operations[i].ReturnTime, "an operation returns after it is called");

            // At equal times calls sort first: that treats the two operations as concurrent, never as ordered.
            order[2 * i] = (operations[i].CallTime, 0, i);
            order[(2 * i) + 1] = (operations[i].ReturnTime, 1, i);
        }

        Array.Sort(order);
        var list = new EventList(2 * n);
        var callEventOf = new int[n];
        for (var k = 0; k < order.Length; k++)
        {
            var id = k + 1;
            list.Operation[id] = order[k].Operation;
            list.IsCall[id] = order[k].Kind == 0;
            list.Previous[id] = id - 1;
            list.Next[id] = id == order.Length ? -1 : id + 1;
            if (list.IsCall[id])
            {
                callEventOf[order[k].Operation] = id;
            }
            else
            {
                list.ReturnOf[callEventOf[order[k].Operation]] = id;
            }
        }

        list.Next[0] = 1;
        return list;
    }

    private static ulong[] With(ulong[] bits, int index)
    {
        var copy = (ulong[])bits.Clone();
        Set(copy, index, true);
        return copy;
    }

    private static void Set(ulong[] bits, int index, bool value)
    {
        var mask = 1UL << (index & 63);
        bits[index >> 6] = value ? bits[index >> 6] | mask : bits[index >> 6] & ~mask;
    }

    /// <summary>
    /// Call and return events sorted by time in a doubly linked list, so that linearizing an operation
    /// (unlinking its two events) and undoing it are O(1). Node 0 is the head sentinel; -1 ends the list.
    /// </summary>
    private sealed class EventList(int eventCount)
    {
        public readonly int[] Next = new int[eventCount + 1];
        public readonly int[] Previous = new int[eventCount + 1];
        public readonly int[] Operation = new int[eventCount + 1];
        public readonly bool[] IsCall = new bool[eventCount + 1];
        public readonly int[] ReturnOf = new int[eventCount + 1];

        public void Lift(int call)
        {
            Unlink(call);
            Unlink(ReturnOf[call]);
        }

        /// <summary>Undoes <see cref="Lift"/>: relinks the return, then the call (reverse order of unlinking).</summary>
        public void Unlift(int call)
        {
            Relink(ReturnOf[call]);
            Relink(call);
        }

        private void Unlink(int node)
        {
            Next[Previous[node]] = Next[node];
            if (Next[node] != -1)
            {
                Previous[Next[node]] = Previous[node];
            }
        }

        private void Relink(int node)
        {
            Next[Previous[node]] = node;
            if (Next[node] != -1)
            {
                Previous[Next[node]] = node;
            }
        }
    }

    private readonly struct CacheKey<TState>(ulong[] bits, TState state) : IEquatable<CacheKey<TState>>
        where TState : IEquatable<TState>
    {
        private readonly ulong[] _bits = bits;
        private readonly TState _state = state;

        public bool Equals(CacheKey<TState> other) =>
            _state.Equals(other._state) && _bits.AsSpan().SequenceEqual(other._bits);

        public override bool Equals(object? obj) => obj is CacheKey<TState> other && Equals(other);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            hash.Add(_state);
            foreach (var word in _bits)
            {
                hash.Add(word);
            }

            return hash.ToHashCode();
        }
    }
}
