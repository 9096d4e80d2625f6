using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RaftLedger.Ledger;

namespace RaftLedger.Cli.Verify;

/// <summary>What an operation does.</summary>
public enum OpKind
{
    /// <summary>create_transfers with one or more events (plain, two-phase pending with or without timeout/post/void, linked chains).</summary>
    Transfers,

    /// <summary>A lookup of one account.</summary>
    ReadAccount,

    /// <summary>A lookup of every account of the workload in one request.</summary>
    ReadAll,
}

/// <summary>How an operation (after all its attempts) ended.</summary>
public enum OpOutcome
{
    /// <summary>The cluster answered 200 (for transfers, each event's status is in <see cref="OpRecord.Statuses"/>).</summary>
    Ok,

    /// <summary>Definitely nothing applied (503, 4xx) and not retried further.</summary>
    Fail,

    /// <summary>No definite answer before the workload stopped (504, timeout, broken connection): applied or not.</summary>
    Unknown,
}

/// <summary>
/// One logical operation of one client, with all its attempts folded in: every attempt is sent with the same
/// ids, so the operation has one effect at most. Times are microseconds on the run's monotonic clock.
/// </summary>
public sealed class OpRecord
{
    public required long Id { get; init; }

    public required int Client { get; init; }

    public required OpKind Kind { get; init; }

    /// <summary>The events sent (transfers), in request order; empty for reads.</summary>
    public Transfer[] Transfers { get; init; } = [];

    /// <summary>The accounts asked for (reads); empty for transfers.</summary>
    public UInt128[] AccountIds { get; init; } = [];

    /// <summary>When the first attempt was sent: no effect of this operation can be older.</summary>
    public required long InvokeMicros { get; init; }

    public OpOutcome Outcome { get; set; } = OpOutcome.Unknown;

    /// <summary>When the answer that settled the operation arrived (Ok/Fail); its effect is at least this old.</summary>
    public long CompleteMicros { get; set; }

    /// <summary>The node that answered (or was last tried).</summary>
    public ulong Node { get; set; }

    public int Attempts { get; set; }

    /// <summary>Per-event statuses of an Ok transfers operation (snake_case API names).</summary>
    public string[] Statuses { get; set; } = [];

    /// <summary>Accounts returned by an Ok read.</summary>
    public Account[] ReadAccounts { get; set; } = [];
}

/// <summary>
/// The run's history: every attempt's invoke and completion (ok / fail / unknown) and every fault, appended as
/// JSON lines to a file as they happen (so a crashed run still leaves its history), plus the folded
/// <see cref="OpRecord"/>s the checker reads. Thread-safe.
/// </summary>
public sealed class HistoryRecorder : IDisposable
{
    private readonly object gate = new();
    private readonly List<OpRecord> operations = [];
    private readonly List<(long Micros, string Fault)> faults = [];
    private readonly StreamWriter? file;
    private readonly long startTimestamp = Stopwatch.GetTimestamp();
    private long nextOpId;

    public HistoryRecorder(string? path)
    {
        if (path is not null)
        {
            file = new StreamWriter(path, append: false) { AutoFlush = false };
        }
    }

    /// <summary>Microseconds since the run began (monotonic).</summary>
    public long NowMicros => (long)Stopwatch.GetElapsedTime(startTimestamp).TotalMicroseconds;

    public IReadOnlyList<OpRecord> Operations
    {
        get
        {
            lock (gate)
            {
                return operations.ToList();
            }
        }
    }

    public IReadOnlyList<(long Micros, string Fault)> Faults
    {
        get
        {
            lock (gate)
            {
                return faults.ToList();
            }
        }
    }

    /// <summary>Registers a new operation (its first attempt is about to be sent).</summary>
    public OpRecord Begin(int client, OpKind kind, Transfer[]? transfers = null, UInt128[]? accountIds = null)
    {
        lock (gate)
        {
            var op = new OpRecord
            {
                Id = ++nextOpId,
                Client = client,
                Kind = kind,
                Transfers = transfers ?? [],
                AccountIds = accountIds ?? [],
                InvokeMicros = NowMicros,
            };
            operations.Add(op);
            return op;
        }
    }

    /// <summary>Logs an attempt's invoke line.</summary>
    public void Invoke(OpRecord op, ulong node)
    {
        lock (gate)
        {
            op.Attempts++;
            op.Node = node;
            Write(op, "invoke", writer =>
            {
                if (op.Attempts == 1)
                {
                    WriteValue(writer, op);
                }
            });
        }
    }

    /// <summary>An attempt's answer settled the operation (200).</summary>
    public void Ok(OpRecord op, string[] statuses, Account[] accounts)
    {
        lock (gate)
        {
            op.Outcome = OpOutcome.Ok;
            op.CompleteMicros = NowMicros;
            op.Statuses = statuses;
            op.ReadAccounts = accounts;
            Write(op, "ok", writer =>
            {
                if (statuses.Length > 0)
                {
                    writer.WriteStartArray("statuses");
                    Array.ForEach(statuses, writer.WriteStringValue);
                    writer.WriteEndArray();
                }

                if (accounts.Length > 0)
                {
                    WriteAccounts(writer, accounts);
                }
            });
        }
    }

    /// <summary>An attempt ended without a settled answer: <paramref name="definite"/> = nothing applied (fail), else unknown.</summary>
    public void NotAnswered(OpRecord op, bool definite, string error, bool final)
    {
        lock (gate)
        {
            if (final)
            {
                op.Outcome = definite ? OpOutcome.Fail : OpOutcome.Unknown;
                op.CompleteMicros = NowMicros;
            }

            Write(op, definite ? "fail" : "unknown", writer => writer.WriteString("error", error));
        }
    }

    /// <summary>A fault injected or healed by the nemesis.</summary>
    public void Fault(string description)
    {
        lock (gate)
        {
            var micros = NowMicros;
            faults.Add((micros, description));
            WriteLine(writer =>
            {
                writer.WriteNumber("t_us", micros);
                writer.WriteString("time", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
                writer.WriteString("type", "nemesis");
                writer.WriteString("fault", description);
            });
        }
    }

    private void Write(OpRecord op, string type, Action<Utf8JsonWriter> body) => WriteLine(writer =>
    {
        writer.WriteNumber("t_us", NowMicros);
        writer.WriteString("time", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
        writer.WriteString("type", type);
        writer.WriteNumber("op", op.Id);
        writer.WriteNumber("client", op.Client);
        writer.WriteString("f", op.Kind switch { OpKind.Transfers => "transfers", OpKind.ReadAccount => "read", _ => "read_all" });
        writer.WriteNumber("attempt", op.Attempts);
        writer.WriteNumber("node", op.Node);
        body(writer);
    });

    private void WriteLine(Action<Utf8JsonWriter> body)
    {
        if (file is null)
        {
            return;
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        file.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void WriteValue(Utf8JsonWriter writer, OpRecord op)
    {
        if (op.Transfers.Length > 0)
        {
            writer.WriteStartArray("transfers");
            foreach (var t in op.Transfers)
            {
                writer.WriteStartObject();
                writer.WriteString("id", Text(t.Id));
                writer.WriteString("debit", Text(t.DebitAccountId));
                writer.WriteString("credit", Text(t.CreditAccountId));
                writer.WriteString("amount", Text(t.Amount));
                writer.WriteString("pending_id", Text(t.PendingId));
                writer.WriteNumber("flags", (int)t.Flags);
                if (t.TimeoutSeconds != 0)
                {
                    writer.WriteNumber("timeout", t.TimeoutSeconds);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        if (op.AccountIds.Length > 0)
        {
            writer.WriteStartArray("accounts");
            Array.ForEach(op.AccountIds, id => writer.WriteStringValue(Text(id)));
            writer.WriteEndArray();
        }
    }

    private static void WriteAccounts(Utf8JsonWriter writer, Account[] accounts)
    {
        writer.WriteStartArray("balances");
        foreach (var a in accounts)
        {
            writer.WriteStartObject();
            writer.WriteString("id", Text(a.Id));
            writer.WriteString("debits_pending", Text(a.DebitsPending));
            writer.WriteString("debits_posted", Text(a.DebitsPosted));
            writer.WriteString("credits_pending", Text(a.CreditsPending));
            writer.WriteString("credits_posted", Text(a.CreditsPosted));
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    private static string Text(UInt128 value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Writes what is buffered to the history file.</summary>
    public void Flush()
    {
        lock (gate)
        {
            file?.Flush();
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            file?.Dispose();
        }
    }
}
