using RaftLedger.Ledger;

namespace RaftLedger.Client.Internal;

/// <summary>What the batching pipeline needs to know about one kind of event (accounts or transfers).</summary>
internal abstract class EventKind<TEvent>
{
    /// <summary>The id that picks the event's shard: the account id, or the transfer id (its home shard).</summary>
    public abstract UInt128 RoutingId(in TEvent item);

    /// <summary>True when the event is linked to the next one (the chain continues).</summary>
    public abstract bool IsLinked(in TEvent item);

    public abstract Task<EventAnswer[]> SendAsync(INodeConnection connection, TEvent[] events, int count, TimeSpan timeout, CancellationToken cancellationToken);
}

internal sealed class TransferKind : EventKind<Transfer>
{
    public static readonly TransferKind Instance = new();

    public override UInt128 RoutingId(in Transfer item) => item.Id;

    public override bool IsLinked(in Transfer item) => (item.Flags & TransferFlags.Linked) != 0;

    public override Task<EventAnswer[]> SendAsync(INodeConnection connection, Transfer[] events, int count, TimeSpan timeout, CancellationToken cancellationToken) =>
        connection.CreateTransfersAsync(events, count, timeout, cancellationToken);
}

internal sealed class AccountKind : EventKind<Account>
{
    public static readonly AccountKind Instance = new();

    public override UInt128 RoutingId(in Account item) => item.Id;

    public override bool IsLinked(in Account item) => (item.Flags & AccountFlags.Linked) != 0;

    public override Task<EventAnswer[]> SendAsync(INodeConnection connection, Account[] events, int count, TimeSpan timeout, CancellationToken cancellationToken) =>
        connection.CreateAccountsAsync(events, count, timeout, cancellationToken);
}
