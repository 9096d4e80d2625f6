using RaftLedger.Common;

namespace RaftLedger.Raft;

/// <summary>
/// Read-index requests a leader has registered (in arrival order) and the heartbeat acknowledgements each has
/// collected (thesis §6.4). A request is answered once a quorum acknowledged it or any later request.
/// </summary>
internal sealed class ReadIndexQueue
{
    private readonly Dictionary<string, PendingRead> _byContext = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    public int Count => _order.Count;

    public static string Key(ReadOnlyMemory<byte> context) => Convert.ToBase64String(context.Span);

    /// <summary>Registers a request at <paramref name="index"/>; false if its context is already waiting.</summary>
    public bool Add(ulong index, ulong from, ReadOnlyMemory<byte> context)
    {
        var key = Key(context);
        if (!_byContext.TryAdd(key, new PendingRead(index, from, context, [])))
        {
            return false;
        }

        _order.Add(key);
        return true;
    }

    /// <summary>Records an acknowledgement; returns the request's acknowledgers, or null for an unknown context.</summary>
    public HashSet<ulong>? Ack(ulong from, ReadOnlyMemory<byte> context)
    {
        if (!_byContext.TryGetValue(Key(context), out var read))
        {
            return null;
        }

        read.Acks.Add(from);
        return read.Acks;
    }

    /// <summary>Removes and returns the requests up to and including <paramref name="context"/>, oldest first.</summary>
    public List<PendingRead> ReleaseThrough(ReadOnlyMemory<byte> context)
    {
        var key = Key(context);
        var released = new List<PendingRead>();
        var position = _order.IndexOf(key);
        Invariant.Check(position >= 0);
        for (var i = 0; i <= position; i++)
        {
            released.Add(_byContext[_order[i]]);
            _byContext.Remove(_order[i]);
        }

        _order.RemoveRange(0, position + 1);
        return released;
    }

    public void Clear()
    {
        _byContext.Clear();
        _order.Clear();
    }

    internal sealed record PendingRead(ulong Index, ulong From, ReadOnlyMemory<byte> Context, HashSet<ulong> Acks);
}
