using System.Net.Sockets;
using Grpc.Core;

namespace RaftLedger.Client.Internal;

/// <summary>What a failed request means for its events.</summary>
internal enum FailureKind
{
    /// <summary>Refused before anything was proposed (503 from the node, connection refused): retry; nothing applied.</summary>
    NotApplied,

    /// <summary>The request may have been applied (timeout, 504, connection lost mid-request): retry with the same ids.</summary>
    MaybeApplied,

    /// <summary>Retrying cannot help (malformed or too large, or a bug): give the error to the caller.</summary>
    Fatal,
}

/// <summary>The pure parts of the retry policy: which failures are retried and how long to wait.</summary>
internal static class RetryPolicy
{
    /// <summary>The node's 503 answers carry this trailer; a transport-level UNAVAILABLE does not.</summary>
    public const string RetryAfterTrailer = "retry-after";

    /// <summary>The node's 504 answers (outcome unknown) carry this trailer; a deadline the client's own timer raised does not.</summary>
    public const string OutcomeUnknownTrailer = "outcome-unknown";

    /// <summary>Shifts above this would overflow the tick count; the cap applies long before.</summary>
    private const int DoublingsMax = 30;

    public static FailureKind Classify(RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        switch (exception.StatusCode)
        {
            case StatusCode.Unavailable:
                // The node's own 503 (no leader, no quorum) promises nothing was applied; so does a
                // connection that was never made. Any other UNAVAILABLE may have lost a sent request.
                if (exception.Trailers.Get(RetryAfterTrailer) is not null || NeverConnected(exception.Status.DebugException))
                {
                    return FailureKind.NotApplied;
                }

                return FailureKind.MaybeApplied;
            case StatusCode.DeadlineExceeded:
            case StatusCode.Cancelled:
                return FailureKind.MaybeApplied;
            case StatusCode.Internal:
            case StatusCode.Unknown:
                // A connection torn down mid-call surfaces as INTERNAL/UNKNOWN with an IO error inside.
                return IsConnectionFailure(exception.Status.DebugException) ? FailureKind.MaybeApplied : FailureKind.Fatal;
            default:
                return FailureKind.Fatal;
        }
    }

    /// <summary>
    /// Whether the failure is an answer from a live node (its own 503 or 504) rather than a node that could not be
    /// reached or did not answer in time: only the latter makes the client avoid the node for a while. With
    /// per-node batching, avoiding a live node would push every shard it leads onto forwarding fallback nodes.
    /// </summary>
    public static bool NodeAnswered(RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception.Trailers.Get(RetryAfterTrailer) is not null || exception.Trailers.Get(OutcomeUnknownTrailer) is not null;
    }

    /// <summary>
    /// Exponential backoff with equal jitter: attempt n waits between half and all of
    /// min(max, initial × 2^n), so retries spread out but never come back to back.
    /// <paramref name="unitRandom"/> is in [0, 1).
    /// </summary>
    public static TimeSpan Backoff(int attempt, TimeSpan initial, TimeSpan max, double unitRandom)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(attempt);
        ArgumentOutOfRangeException.ThrowIfLessThan(unitRandom, 0.0);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(unitRandom, 1.0);
        var doublings = Math.Min(attempt, DoublingsMax);
        var capTicks = initial.Ticks > (max.Ticks >> doublings) ? max.Ticks : Math.Min(max.Ticks, initial.Ticks << doublings);
        var half = capTicks / 2;
        var delay = TimeSpan.FromTicks(half + (long)(unitRandom * (capTicks - half)));
        RaftLedger.Common.Invariant.Check(delay <= max);
        return delay;
    }

    private static bool NeverConnected(Exception? exception)
    {
        for (var inner = exception; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.AddressNotAvailable })
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsConnectionFailure(Exception? exception)
    {
        for (var inner = exception; inner is not null; inner = inner.InnerException)
        {
            if (inner is HttpRequestException or IOException or SocketException)
            {
                return true;
            }
        }

        return false;
    }
}
