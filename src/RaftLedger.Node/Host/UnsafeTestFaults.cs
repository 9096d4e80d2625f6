using System.Globalization;
using RaftLedger.Ledger;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Node.Host;

/// <summary>
/// TEST ONLY — a deliberately broken node, so that <c>raftledger verify</c> is shown to catch real bugs. Off unless
/// the process has the environment variable <see cref="Variable"/>, which only <c>raftledger verify
/// --unsafe-test-faults</c> (a hidden flag) sets. Never set it on a real cluster: it loses data.
/// <c>skip-apply:N</c> (node 1): this node's replicas skip applying every committed create_transfers entry whose index
/// is a multiple of N, yet answer its clients as if every event was created (acknowledged, never applied here).
/// <c>synced-mark-lag:N</c> (every node): the WAL's synced mark (<see cref="SyncedMarkVariable"/>) lags N updates
/// (about N flushes) behind what is durable, so verify's power-cut fault drops flushes the node already acted on: the
/// effect of a build that acknowledges before its fdatasync.
/// Also the test instrument <see cref="SyncedMarkVariable"/>, which is not a fault.
/// </summary>
internal static class UnsafeTestFaults
{
    public const string Variable = "RAFTLEDGER_UNSAFE_TEST_FAULT";

    /// <summary>
    /// TEST INSTRUMENT: <c>on</c> makes the node's WAL record in <c>&lt;data&gt;/synced-wal.mark</c> how much of it is
    /// durable (<see cref="WalOptions.SyncedMarkPath"/>), for verify's power-cut fault, which sets it.
    /// </summary>
    public const string SyncedMarkVariable = "RAFTLEDGER_TEST_SYNCED_MARK";

    private const string SkipApplyPrefix = "skip-apply:";
    private const string SyncedMarkLagPrefix = "synced-mark-lag:";

    private static readonly (ulong SkipApplyEvery, int SyncedMarkLagMarks) Fault = Parse(Environment.GetEnvironmentVariable(Variable));

    /// <summary>0 = off; otherwise entries whose index is a multiple of it are skipped.</summary>
    private static readonly ulong SkipApplyEvery = Fault.SkipApplyEvery;

    private static readonly bool SyncedMarkOn = ParseSyncedMark(Environment.GetEnvironmentVariable(SyncedMarkVariable)) || Fault.SyncedMarkLagMarks > 0;

    private static (ulong SkipApplyEvery, int SyncedMarkLagMarks) Parse(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return (0, 0);
        }

        (ulong, int) fault = default;
        if (value.StartsWith(SkipApplyPrefix, StringComparison.Ordinal) &&
            ulong.TryParse(value.AsSpan(SkipApplyPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var every) && every > 0)
        {
            fault = (every, 0);
        }
        else if (value.StartsWith(SyncedMarkLagPrefix, StringComparison.Ordinal) &&
            int.TryParse(value.AsSpan(SyncedMarkLagPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var lag) && lag > 0)
        {
            fault = (0, lag);
        }
        else
        {
            throw new InvalidOperationException($"{Variable}='{value}' is not a known test fault; unset it (it exists only for raftledger verify's own tests).");
        }

        Console.Error.WriteLine($"WARNING: {Variable}={value}: this node is DELIBERATELY BROKEN for a test and will lose acknowledged data.");
        return fault;
    }

    private static bool ParseSyncedMark(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }

        if (value != "on")
        {
            throw new InvalidOperationException($"{SyncedMarkVariable}='{value}' is not 'on'; unset it (it exists only for raftledger verify's power-cut fault).");
        }

        Console.Error.WriteLine($"WARNING: {SyncedMarkVariable}=on: TEST INSTRUMENT, this node's WAL writes a synced mark after every fdatasync " +
            "for raftledger verify's power-cut fault; never set it on a real cluster.");
        return true;
    }

    /// <summary>
    /// <paramref name="options"/> with the synced mark at <paramref name="markPath"/> when <see cref="SyncedMarkVariable"/>
    /// or a <c>synced-mark-lag</c> fault is set; otherwise unchanged (the mark is off).
    /// </summary>
    public static WalOptions WithSyncedMark(WalOptions options, string markPath) =>
        SyncedMarkOn ? options with { SyncedMarkPath = markPath, SyncedMarkLagMarks = Fault.SyncedMarkLagMarks } : options;

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
