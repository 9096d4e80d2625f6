namespace RaftLedger.Node.Host;

/// <summary>
/// Whether the runtime's socket engine runs socket continuations on its own epoll threads instead of handing each one
/// to the thread pool. The runtime reads <see cref="Variable"/> once, when the process opens its first socket; there is
/// no runtimeconfig or AppContext switch for it. A node sets it for itself at start (<see cref="ApplyToThisProcess"/>),
/// unless the operator set it, so a bare <c>raftledger node</c> gets it as well as the nodes the CLI starts.
/// <para>Why a node may: nothing that blocks runs on an epoll thread. Kestrel starts every HTTP/2 request (the peer
/// streams, the gRPC client API) on the thread pool, and the request pipes of HTTP/2 streams and the HTTP client's
/// response streams complete their readers on the thread pool; the scheduler's inbox, the peer queues and the request
/// completions never continue a waiter on a socket thread. What does run there: socket reads and writes, HTTP/2 framing,
/// a REST request's synchronous part (parsing, queueing to the scheduler) and a peer pump whose write completed late
/// (it serialises and writes its next batch). So fsyncs and RocksDB calls stay on the scheduler's thread and the thread
/// pool (docs/ARCHITECTURE.md, "Host, placement and transport").</para>
/// </summary>
public static class InlineSocketCompletions
{
    /// <summary>The runtime's environment variable ("1" = inline).</summary>
    public const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>True when this process runs socket continuations inline (the variable is "1").</summary>
    public static bool Enabled => Environment.GetEnvironmentVariable(Variable) == "1";

    /// <summary>The value a node runs with: the operator's when set (any value, e.g. "0" to turn it off), else "1".</summary>
    public static string Choose(string? operatorValue) => string.IsNullOrEmpty(operatorValue) ? "1" : operatorValue;

    /// <summary>
    /// Sets <see cref="Variable"/> for this process to <see cref="Choose"/> of its current value. Call it before the
    /// process opens any socket: the runtime ignores changes after that. Returns whether completions are now inline.
    /// </summary>
    public static bool ApplyToThisProcess()
    {
        Environment.SetEnvironmentVariable(Variable, Choose(Environment.GetEnvironmentVariable(Variable)));
        return Enabled;
    }
}
