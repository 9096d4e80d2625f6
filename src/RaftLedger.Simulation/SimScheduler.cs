using RaftLedger.Common;

namespace RaftLedger.Simulation;

/// <summary>
/// Logical time and a queue of future events. Time is an integer tick count that only moves when the
/// driver calls <see cref="AdvanceTo"/>; events due at the same tick come out in the order they were
/// scheduled, so a run never depends on anything but its seed.
/// </summary>
public sealed class SimScheduler<TEvent>
{
    /// <summary>Most events that may wait at once: a run that queues more has a runaway fault model.</summary>
    public const int PendingEventsMax = 1_000_000;

    private readonly PriorityQueue<TEvent, (long Tick, long Sequence)> _queue = new();

    // Invariant: strictly increases with every Schedule call; breaks ties between events of one tick.
    private long _sequence;

    /// <summary>The current logical time in ticks. Never decreases.</summary>
    public long NowTicks { get; private set; }

    public int PendingCount => _queue.Count;

    /// <summary>Queues an event for <paramref name="atTick"/>, which must not be in the past.</summary>
    public void Schedule(long atTick, TEvent item)
    {
        Invariant.Check(atTick >= NowTicks, "events cannot be scheduled in the past");
        Invariant.Check(_queue.Count < PendingEventsMax);
        _queue.Enqueue(item, (atTick, _sequence++));
    }

    /// <summary>Moves logical time forward; events already due stay due.</summary>
    public void AdvanceTo(long tick)
    {
        Invariant.Check(tick >= NowTicks, "logical time never goes backwards");
        NowTicks = tick;
    }

    /// <summary>Takes the next event due at or before now, in (tick, scheduling order).</summary>
    public bool TryDequeueDue(out TEvent item)
    {
        if (_queue.TryPeek(out item!, out var key) && key.Tick <= NowTicks)
        {
            _queue.Dequeue();
            return true;
        }

        item = default!;
        return false;
    }

    /// <summary>Drops every queued event for which <paramref name="remove"/> is true (e.g. messages to a crashed node).</summary>
    public void RemoveWhere(Func<TEvent, bool> remove)
    {
        var kept = new List<(TEvent, (long, long))>(_queue.Count);
        while (_queue.TryDequeue(out var item, out var key))
        {
            if (!remove(item))
            {
                kept.Add((item, key));
            }
        }

        foreach (var (item, key) in kept)
        {
            _queue.Enqueue(item, key);
        }
    }
}
