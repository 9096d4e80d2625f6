using RaftLedger.Simulation;

namespace RaftLedger.Simulation.Tests;

public sealed class LinearizabilityCheckerTests
{
    private static Operation<KvInput, long> Put(int client, long value, long call, long ret) =>
        new(client, new KvInput(KvOperationKind.Put, 1, value), 0, call, ret);

    private static Operation<KvInput, long> Get(int client, long output, long call, long ret) =>
        new(client, new KvInput(KvOperationKind.Get, 1, 0), output, call, ret);

    private static Operation<KvInput, long> Add(int client, long delta, long output, long call, long ret) =>
        new(client, new KvInput(KvOperationKind.Add, 1, delta), output, call, ret);

    private static LinearizabilityOutcome Check(params Operation<KvInput, long>[] operations) =>
        LinearizabilityChecker.Check(operations, RegisterModel.Instance);

    [Fact]
    public void Sequential_history_that_follows_the_register_is_linearizable() =>
        Assert.Equal(LinearizabilityOutcome.Linearizable, Check(Put(1, 5, 1, 2), Get(2, 5, 3, 4), Put(1, 7, 5, 6), Get(2, 7, 7, 8)));

    [Fact]
    public void Read_of_a_value_overwritten_before_the_read_began_is_not_linearizable() =>
        Assert.Equal(LinearizabilityOutcome.NotLinearizable, Check(Put(1, 5, 1, 2), Put(1, 7, 3, 4), Get(2, 5, 5, 6)));

    [Fact]
    public void Read_concurrent_with_a_write_may_see_old_or_new_value()
    {
        Assert.Equal(LinearizabilityOutcome.Linearizable, Check(Put(1, 5, 1, 2), Put(1, 7, 3, 6), Get(2, 5, 4, 5)));
        Assert.Equal(LinearizabilityOutcome.Linearizable, Check(Put(1, 5, 1, 2), Put(1, 7, 3, 6), Get(2, 7, 4, 5)));
    }

    [Fact]
    public void Value_never_written_cannot_be_read() =>
        Assert.Equal(LinearizabilityOutcome.NotLinearizable, Check(Put(1, 5, 1, 4), Get(2, 9, 2, 3)));

    [Fact]
    public void Two_readers_that_see_new_then_old_value_after_each_other_are_not_linearizable() =>
        // Reader 2 sees the new value, and only after it returns does reader 3 start and see the old one.
        Assert.Equal(LinearizabilityOutcome.NotLinearizable, Check(Put(1, 1, 1, 2), Put(1, 2, 3, 10), Get(2, 2, 4, 5), Get(3, 1, 6, 7)));

    [Fact]
    public void Pending_write_may_take_effect_later_or_never()
    {
        const long pending = Operation<KvInput, long>.Pending;
        Assert.Equal(LinearizabilityOutcome.Linearizable, Check(Put(1, 5, 1, pending), Get(2, 5, 2, 3), Get(2, 5, 4, 5)));
        Assert.Equal(LinearizabilityOutcome.Linearizable, Check(Put(1, 5, 1, pending), Get(2, 0, 2, 3), Get(2, 0, 4, 5)));
        Assert.Equal(LinearizabilityOutcome.NotLinearizable, Check(Put(1, 5, 1, pending), Get(2, 5, 2, 3), Get(2, 0, 4, 5)));
    }

    [Fact]
    public void Counter_adds_must_each_count_once() =>
        Assert.Equal(LinearizabilityOutcome.NotLinearizable, Check(Add(1, 1, 1, 1, 2), Add(2, 1, 1, 3, 4)));

    [Fact]
    public void Concurrent_adds_may_be_ordered_either_way()
    {
        Assert.Equal(LinearizabilityOutcome.Linearizable, Check(Add(1, 1, 2, 1, 4), Add(2, 1, 1, 2, 3)));
        Assert.Equal(LinearizabilityOutcome.Linearizable, Check(Add(1, 1, 1, 1, 4), Add(2, 1, 2, 2, 3)));
    }

    [Fact]
    public void Checker_partitions_by_key_and_names_the_bad_key()
    {
        var history = new[]
        {
            new Operation<KvInput, long>(1, new KvInput(KvOperationKind.Put, 1, 5), 0, 1, 2),
            new Operation<KvInput, long>(1, new KvInput(KvOperationKind.Put, 2, 6), 0, 3, 4),
            new Operation<KvInput, long>(2, new KvInput(KvOperationKind.Get, 1, 0), 5, 5, 6),
            new Operation<KvInput, long>(2, new KvInput(KvOperationKind.Get, 2, 0), 5, 7, 8),
        };
        var violation = KvLinearizability.FindViolation(history);
        Assert.NotNull(violation);
        Assert.Equal(2, violation.Value.Key);
        Assert.Null(KvLinearizability.FindViolation(history[..3]));
    }

    [Fact]
    public void Large_random_history_from_a_real_register_is_linearizable_and_a_corrupted_read_is_not()
    {
        // Simulate a true atomic register with 6 concurrent clients: each operation takes effect at one
        // random instant between its call and its return, so the history is linearizable by construction.
        var random = new SimRandom(42);
        var withPending = GenerateAtomicHistory(random, clients: 6, operations: 400, pendingProbability: 0.05);
        Assert.Equal(LinearizabilityOutcome.Linearizable, LinearizabilityChecker.Check(withPending, RegisterModel.Instance));

        // Proving a negative is a full search, so the corrupted history has no pending puts to multiply it.
        var history = GenerateAtomicHistory(random, clients: 6, operations: 400, pendingProbability: 0);
        Assert.Equal(LinearizabilityOutcome.Linearizable, LinearizabilityChecker.Check(history, RegisterModel.Instance));

        // Corrupt one completed read to return a value no put ever wrote.
        var index = history.FindLastIndex(o => o.Input.Kind == KvOperationKind.Get && !o.IsPending);
        history[index] = history[index] with { Output = -1 };
        Assert.Equal(LinearizabilityOutcome.NotLinearizable, LinearizabilityChecker.Check(history, RegisterModel.Instance));
    }

    [Fact]
    public void Search_reports_unknown_instead_of_running_forever()
    {
        var random = new SimRandom(7);
        var history = GenerateAtomicHistory(random, clients: 6, operations: 200, pendingProbability: 0.05);
        Assert.Equal(LinearizabilityOutcome.Unknown, LinearizabilityChecker.Check(history, RegisterModel.Instance, stepsMax: 10));
    }

    private static List<Operation<KvInput, long>> GenerateAtomicHistory(SimRandom random, int clients, int operations, double pendingProbability)
    {
        // Events on a timeline: each client alternates call -> effect -> return. Time is a global counter.
        var history = new List<Operation<KvInput, long>>();
        var open = new (int Handle, int Stage)[clients];
        for (var c = 0; c < clients; c++)
        {
            open[c] = (-1, 0);
        }

        long value = 0, clock = 0, nextValue = 1;
        var started = 0;
        while (started < operations || Array.Exists(open, o => o.Handle >= 0))
        {
            var c = random.Next(clients);
            var (handle, stage) = open[c];
            if (handle < 0)
            {
                if (started == operations)
                {
                    continue;
                }

                var input = random.Chance(0.5)
                    ? new KvInput(KvOperationKind.Put, 1, nextValue++)
                    : new KvInput(KvOperationKind.Get, 1, 0);
                history.Add(new Operation<KvInput, long>(c, input, 0, ++clock, Operation<KvInput, long>.Pending));
                open[c] = (history.Count - 1, 1);
                started++;
            }
            else if (stage == 1)
            {
                var op = history[handle];
                value = op.Input.Kind == KvOperationKind.Put ? op.Input.Value : value;
                history[handle] = op with { Output = value };
                open[c] = (handle, 2);
            }
            else
            {
                // Some operations never return (the client gave up); their effect already happened.
                if (!random.Chance(pendingProbability))
                {
                    history[handle] = history[handle] with { ReturnTime = ++clock };
                }

                open[c] = (-1, 0);
            }
        }

        return history;
    }
}
