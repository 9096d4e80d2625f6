using System.Globalization;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Host;

/// <summary>
/// TEST ONLY — a deliberately broken node, so that <c>raftledger verify</c> is shown to catch real bugs. Off unless
/// the process has the environment variable <see cref="Variable"/>, which only <c>raftledger verify
/// --unsafe-test-faults</c> (a hidden flag) sets, on one node. Never set it on a real cluster: it loses data.
/// <c>skip-apply:N</c>: this node's replicas skip applying every committed create_transfers entry whose index is a
/// multiple of N, yet answer its clients as if every event was created (acknowledged, never applied here).
/// </summary>
internal static class UnsafeTestFaults
{
    public const string Variable = "RAFTLEDGER_UNSAFE_TEST_FAULT";

    private const string SkipApplyPrefix = "skip-apply:";

    /// <summary>0 = off; otherwise entries whose index is a multiple of it are skipped.</summary>
    private static readonly ulong SkipApplyEvery = ParseSkipApply(Environment.GetEnvironmentVariable(Variable));

    private static ulong ParseSkipApply(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return 0;
        }

        if (!value.StartsWith(SkipApplyPrefix, StringComparison.Ordinal) ||
            !ulong.TryParse(value.AsSpan(SkipApplyPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var every) || every == 0)
        {
            throw new InvalidOperationException($"{Variable}='{value}' is not a known test fault; unset it (it exists only for raftledger verify's own tests).");
        }

        Console.Error.WriteLine($"WARNING: {Variable}={value}: this node is DELIBERATELY BROKEN for a test and will lose acknowledged data.");
        return every;
    }

    /// <summary>
    /// When the fault applies to this entry: fills <paramref name="results"/> with `created` for each event without
    /// touching the ledger and returns the event count; otherwise null (apply normally).
    /// </summary>
    public static int? SkipApply(ulong index, ReadOnlySpan<byte> command, Span<byte> results)
    {
        if (SkipApplyEvery == 0 || index % SkipApplyEvery != 0 ||
            !LedgerCommand.TryReadHeader(command, out var operation, out _, out var eventCount) || operation != LedgerOperation.CreateTransfers)
        {
            return null;
        }

        results[..eventCount].Clear();
        return eventCount;
    }
}
