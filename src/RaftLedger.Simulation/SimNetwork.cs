using RaftLedger.Common;

namespace RaftLedger.Simulation;

/// <summary>How unreliable the fake network is. Probabilities are per message; delays are in ticks.</summary>
public sealed record NetworkFaults
{
    /// <summary>A network that delivers everything, once, one tick later, in order.</summary>
    public static NetworkFaults Reliable { get; } = new();

    public double DropProbability { get; init; }
    public double DuplicateProbability { get; init; }

    /// <summary>Delivery delay is uniform in [DelayTicksMin, DelayTicksMax]; a spread reorders messages.</summary>
    public int DelayTicksMin { get; init; } = 1;
    public int DelayTicksMax { get; init; } = 1;

    /// <summary>Throws with a clear message when the settings make no sense.</summary>
    public void Validate()
    {
        if (DropProbability is < 0 or > 1 || DuplicateProbability is < 0 or > 1)
        {
            throw new ArgumentException($"drop ({DropProbability}) and duplicate ({DuplicateProbability}) probabilities must be in [0, 1]");
        }

        if (DelayTicksMin < 0 || DelayTicksMax < DelayTicksMin)
        {
            throw new ArgumentException($"delay range [{DelayTicksMin}, {DelayTicksMax}] ticks must satisfy 0 <= min <= max");
        }
    }
}

/// <summary>
/// A fake network between nodes 1..N carrying messages of any type. It drops, duplicates, delays and
/// (through random delays) reorders messages, and cuts links: symmetric partitions, one-way blocks,
/// isolation of one node. A cut link drops messages both when they are sent and when they would arrive,
/// so a partition also loses what was in flight. Deterministic for a given <see cref="SimRandom"/>.
/// </summary>
public sealed class SimNetwork<TMessage>
{
    private readonly SimRandom _random;
    private readonly SimScheduler<Delivery> _inFlight = new();

    // Invariant: _blocked[from, to] is true exactly when messages from -> to are currently cut.
    private readonly bool[,] _blocked;

    public SimNetwork(int nodeCount, SimRandom random)
    {
        Invariant.Check(nodeCount is > 0 and <= SimLimits.NodesMax);
        NodeCount = nodeCount;
        _random = random;
        _blocked = new bool[nodeCount + 1, nodeCount + 1];
    }

    public int NodeCount { get; }

    public NetworkFaults Faults { get; set; } = NetworkFaults.Reliable;

    public long SentCount { get; private set; }
    public long DeliveredCount { get; private set; }
    public long DroppedCount { get; private set; }
    public long DuplicatedCount { get; private set; }

    public int InFlightCount => _inFlight.PendingCount;

    /// <summary>Raised for every message the network loses (when sent or when it would have arrived).</summary>
    public event Action<int, int, TMessage>? Dropped;

    /// <summary>Hands a message to the network at logical time <paramref name="nowTicks"/>.</summary>
    public void Send(int from, int to, TMessage message, long nowTicks)
    {
        CheckNode(from);
        CheckNode(to);
        SentCount++;
        _inFlight.AdvanceTo(Math.Max(_inFlight.NowTicks, nowTicks));
        if (_blocked[from, to] || _random.Chance(Faults.DropProbability))
        {
            DroppedCount++;
            Dropped?.Invoke(from, to, message);
            return;
        }

        Enqueue(from, to, message);
        if (_random.Chance(Faults.DuplicateProbability))
        {
            DuplicatedCount++;
            Enqueue(from, to, message);
        }
    }

    /// <summary>
    /// Delivers, in arrival order, every message due at or before <paramref name="nowTicks"/> whose link is
    /// still up. <paramref name="deliver"/> may send more messages; those arrive at a later tick.
    /// </summary>
    public void DeliverDue(long nowTicks, Action<int, int, TMessage> deliver)
    {
        _inFlight.AdvanceTo(nowTicks);
        while (_inFlight.TryDequeueDue(out var delivery))
        {
            if (_blocked[delivery.From, delivery.To])
            {
                DroppedCount++;
                Dropped?.Invoke(delivery.From, delivery.To, delivery.Message);
                continue;
            }

            DeliveredCount++;
            deliver(delivery.From, delivery.To, delivery.Message);
        }
    }

    /// <summary>Drops every message in flight to <paramref name="node"/> (it crashed: its sockets are gone).</summary>
    public void DropInFlightTo(int node)
    {
        CheckNode(node);
        _inFlight.RemoveWhere(d => d.To == node);
    }

    /// <summary>Cuts both directions between every node of <paramref name="side"/> and every node outside it.</summary>
    public void Partition(IReadOnlyCollection<int> side)
    {
        for (var a = 1; a <= NodeCount; a++)
        {
            for (var b = 1; b <= NodeCount; b++)
            {
                if (side.Contains(a) != side.Contains(b))
                {
                    _blocked[a, b] = true;
                }
            }
        }
    }

    /// <summary>Cuts messages from <paramref name="from"/> to <paramref name="to"/> only; the other direction still works.</summary>
    public void BlockOneWay(int from, int to)
    {
        CheckNode(from);
        CheckNode(to);
        Invariant.Check(from != to);
        _blocked[from, to] = true;
    }

    /// <summary>Cuts every link to and from <paramref name="node"/>.</summary>
    public void Isolate(int node) => Partition([node]);

    /// <summary>Restores every link to and from <paramref name="node"/> (links between other nodes stay as they are).</summary>
    public void Reconnect(int node)
    {
        CheckNode(node);
        for (var other = 1; other <= NodeCount; other++)
        {
            _blocked[node, other] = false;
            _blocked[other, node] = false;
        }
    }

    /// <summary>Restores every link. In-flight messages keep their delivery times.</summary>
    public void Heal() => Array.Clear(_blocked);

    public bool IsBlocked(int from, int to) => _blocked[from, to];

    /// <summary>True when no link is cut.</summary>
    public bool IsHealed
    {
        get
        {
            foreach (var blocked in _blocked)
            {
                if (blocked)
                {
                    return false;
                }
            }

            return true;
        }
    }

    private void Enqueue(int from, int to, TMessage message)
    {
        var delay = _random.Between(Faults.DelayTicksMin, Faults.DelayTicksMax + 1);
        _inFlight.Schedule(_inFlight.NowTicks + Math.Max(delay, 1), new Delivery(from, to, message));
    }

    private void CheckNode(int node) => Invariant.Check(node >= 1 && node <= NodeCount, "node ids are 1..NodeCount");

    private readonly record struct Delivery(int From, int To, TMessage Message);
}
