using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace RaftLedger.Common;

/// <summary>
/// Always-on assertions. Unlike <c>Debug.Assert</c> these stay in Release builds: a broken
/// invariant in a ledger or a consensus core must stop the process, not corrupt money.
/// </summary>
public static class Invariant
{
    /// <summary>Throws <see cref="InvariantViolationException"/> when <paramref name="condition"/> is false.</summary>
    public static void Check(
        [DoesNotReturnIf(false)] bool condition,
        [CallerArgumentExpression(nameof(condition))] string? expression = null)
    {
        if (!condition)
        {
            Fail(expression);
        }
    }

    /// <summary>Throws with the failed expression and a caller-supplied detail.</summary>
    public static void Check(
        [DoesNotReturnIf(false)] bool condition,
        string detail,
        [CallerArgumentExpression(nameof(condition))] string? expression = null)
    {
        if (!condition)
        {
            Fail($"{expression} ({detail})");
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Fail(string? expression) =>
        throw new InvariantViolationException($"Invariant violated: {expression}");
}

/// <summary>A bug: an internal invariant did not hold. Never caught to carry on.</summary>
public sealed class InvariantViolationException(string message) : Exception(message);
