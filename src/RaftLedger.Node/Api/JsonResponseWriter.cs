using System.Text.Json;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Api;

/// <summary>
/// Writes response bodies. u128 and u64 values are decimal strings, u32 and u16 are numbers,
/// flags are arrays of snake_case names, statuses are snake_case (see issue 5 §3).
/// </summary>
public static class JsonResponseWriter
{
    private const int DecimalCharsMax = 39;

    public static void WriteAccountResults(Utf8JsonWriter writer, ReadOnlySpan<AccountEventResult> results)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("results"u8);
        for (var i = 0; i < results.Length; i++)
        {
            WriteResult(writer, i, SnakeCaseNames<CreateAccountResult>.Of(results[i].Status), results[i].Timestamp);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    public static void WriteTransferResults(Utf8JsonWriter writer, ReadOnlySpan<TransferEventResult> results)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("results"u8);
        for (var i = 0; i < results.Length; i++)
        {
            WriteResult(writer, i, SnakeCaseNames<CreateTransferResult>.Of(results[i].Status), results[i].Timestamp);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteResult(Utf8JsonWriter writer, int index, string status, ulong timestamp)
    {
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, index);
        writer.WriteString("status"u8, status);
        if (timestamp != 0)
        {
            WriteDecimal(writer, "timestamp"u8, timestamp);
        }

        writer.WriteEndObject();
    }

    public static void WriteAccounts(Utf8JsonWriter writer, ReadOnlySpan<byte> name, ReadOnlySpan<Account> accounts)
    {
        writer.WriteStartObject();
        writer.WriteStartArray(name);
        foreach (ref readonly var account in accounts)
        {
            WriteAccount(writer, account);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    public static void WriteTransfers(Utf8JsonWriter writer, ReadOnlySpan<Transfer> transfers)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("transfers"u8);
        foreach (ref readonly var transfer in transfers)
        {
            WriteTransfer(writer, transfer);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    public static void WriteBalances(Utf8JsonWriter writer, ReadOnlySpan<AccountBalance> balances)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("balances"u8);
        foreach (ref readonly var balance in balances)
        {
            writer.WriteStartObject();
            WriteDecimal(writer, "debits_pending"u8, balance.DebitsPending);
            WriteDecimal(writer, "debits_posted"u8, balance.DebitsPosted);
            WriteDecimal(writer, "credits_pending"u8, balance.CreditsPending);
            WriteDecimal(writer, "credits_posted"u8, balance.CreditsPosted);
            WriteDecimal(writer, "timestamp"u8, balance.Timestamp);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    public static void WriteAccount(Utf8JsonWriter writer, in Account account)
    {
        writer.WriteStartObject();
        WriteDecimal(writer, "id"u8, account.Id);
        WriteDecimal(writer, "debits_pending"u8, account.DebitsPending);
        WriteDecimal(writer, "debits_posted"u8, account.DebitsPosted);
        WriteDecimal(writer, "credits_pending"u8, account.CreditsPending);
        WriteDecimal(writer, "credits_posted"u8, account.CreditsPosted);
        WriteDecimal(writer, "user_data_128"u8, account.UserData128);
        WriteDecimal(writer, "user_data_64"u8, account.UserData64);
        writer.WriteNumber("user_data_32"u8, account.UserData32);
        writer.WriteNumber("ledger"u8, account.Ledger);
        writer.WriteNumber("code"u8, account.Code);
        WriteFlags<AccountFlags>(writer, (ulong)account.Flags);
        WriteDecimal(writer, "timestamp"u8, account.Timestamp);
        writer.WriteEndObject();
    }

    public static void WriteTransfer(Utf8JsonWriter writer, in Transfer transfer)
    {
        writer.WriteStartObject();
        WriteDecimal(writer, "id"u8, transfer.Id);
        WriteDecimal(writer, "debit_account_id"u8, transfer.DebitAccountId);
        WriteDecimal(writer, "credit_account_id"u8, transfer.CreditAccountId);
        WriteDecimal(writer, "amount"u8, transfer.Amount);
        WriteDecimal(writer, "pending_id"u8, transfer.PendingId);
        WriteDecimal(writer, "user_data_128"u8, transfer.UserData128);
        WriteDecimal(writer, "user_data_64"u8, transfer.UserData64);
        writer.WriteNumber("user_data_32"u8, transfer.UserData32);
        writer.WriteNumber("timeout"u8, transfer.TimeoutSeconds);
        writer.WriteNumber("ledger"u8, transfer.Ledger);
        writer.WriteNumber("code"u8, transfer.Code);
        WriteFlags<TransferFlags>(writer, (ulong)transfer.Flags);
        WriteDecimal(writer, "timestamp"u8, transfer.Timestamp);
        writer.WriteEndObject();
    }

    public static void WriteCluster(Utf8JsonWriter writer, ClusterStatus cluster)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("nodes"u8);
        foreach (var node in cluster.Nodes)
        {
            writer.WriteStartObject();
            writer.WriteNumber("id"u8, node.Id);
            writer.WriteString("api"u8, node.ApiAddress);
            writer.WriteString("peer"u8, node.PeerAddress);
            if (node.GrpcAddress is not null)
            {
                writer.WriteString("grpc"u8, node.GrpcAddress);
            }

            writer.WriteBoolean("up"u8, node.Up);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteStartArray("shards"u8);
        foreach (var shard in cluster.Shards)
        {
            WriteShard(writer, shard);
        }

        writer.WriteEndArray();
        if (cluster.Meta is { } meta)
        {
            WriteMeta(writer, meta);
        }

        writer.WriteEndObject();
    }

    /// <summary>"meta": the meta group, shaped like a shard (members in place of replicas).</summary>
    private static void WriteMeta(Utf8JsonWriter writer, MetaGroupInfo meta)
    {
        writer.WriteStartObject("meta"u8);
        writer.WriteStartArray("members"u8);
        foreach (var member in meta.Members)
        {
            writer.WriteNumberValue(member);
        }

        writer.WriteEndArray();
        writer.WriteNumber("leader"u8, meta.Leader);
        WriteDecimal(writer, "term"u8, meta.Term);
        WriteDecimal(writer, "commit_index"u8, meta.CommitIndex);
        WriteDecimal(writer, "applied_index"u8, meta.AppliedIndex);
        writer.WriteEndObject();
    }

    private static void WriteShard(Utf8JsonWriter writer, ShardInfo shard)
    {
        writer.WriteStartObject();
        writer.WriteNumber("id"u8, shard.Id);
        writer.WriteStartArray("replicas"u8);
        foreach (var replica in shard.Replicas)
        {
            writer.WriteNumberValue(replica);
        }

        writer.WriteEndArray();
        writer.WriteNumber("leader"u8, shard.Leader);
        WriteDecimal(writer, "term"u8, shard.Term);
        WriteDecimal(writer, "commit_index"u8, shard.CommitIndex);
        WriteDecimal(writer, "applied_index"u8, shard.AppliedIndex);
        writer.WriteStartArray("progress"u8);
        foreach (var progress in shard.Progress)
        {
            writer.WriteStartObject();
            writer.WriteNumber("node"u8, progress.NodeId);
            WriteDecimal(writer, "match_index"u8, progress.MatchIndex);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <summary>/v1/node without fingerprints (the default: they were not computed).</summary>
    public static void WriteNode(Utf8JsonWriter writer, NodeStatus node) => WriteNode(writer, node, fingerprints: false);

    /// <summary>/v1/node?fingerprints=true.</summary>
    public static void WriteNodeWithFingerprints(Utf8JsonWriter writer, NodeStatus node) => WriteNode(writer, node, fingerprints: true);

    private static void WriteNode(Utf8JsonWriter writer, NodeStatus node, bool fingerprints)
    {
        writer.WriteStartObject();
        writer.WriteNumber("id"u8, node.NodeId);
        writer.WriteStartArray("replicas"u8);
        foreach (var replica in node.Replicas)
        {
            writer.WriteStartObject();
            writer.WriteNumber("shard"u8, replica.ShardId);
            writer.WriteBoolean("leader"u8, replica.IsLeader);
            WriteDecimal(writer, "term"u8, replica.Term);
            WriteDecimal(writer, "commit_index"u8, replica.CommitIndex);
            WriteDecimal(writer, "applied_index"u8, replica.AppliedIndex);
            writer.WriteNumber("cross_shard_unfinished"u8, replica.CrossShardUnfinished);
            if (fingerprints)
            {
                writer.WriteString("fingerprint"u8, replica.Fingerprint.ToString("x32", null));
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <summary>An RFC 9457 problem document; <c>detail</c> says what to fix.</summary>
    public static void WriteProblem(Utf8JsonWriter writer, ApiError error)
    {
        writer.WriteStartObject();
        writer.WriteString("type"u8, "about:blank");
        writer.WriteString("title"u8, error.Title);
        writer.WriteNumber("status"u8, error.StatusCode);
        writer.WriteString("detail"u8, error.Detail);
        writer.WriteEndObject();
    }

    private static void WriteFlags<TEnum>(Utf8JsonWriter writer, ulong bits)
        where TEnum : struct, Enum
    {
        writer.WriteStartArray("flags"u8);
        for (var i = 0; i < FlagNames<TEnum>.Count; i++)
        {
            if ((bits & FlagNames<TEnum>.BitAt(i)) != 0)
            {
                writer.WriteStringValue(FlagNames<TEnum>.NameAt(i));
            }
        }

        writer.WriteEndArray();
    }

    public static void WriteDecimal(Utf8JsonWriter writer, ReadOnlySpan<byte> name, UInt128 value)
    {
        Span<byte> digits = stackalloc byte[DecimalCharsMax];
        var formatted = value.TryFormat(digits, out var length, default, null);
        Common.Invariant.Check(formatted);
        writer.WriteString(name, digits[..length]);
    }

    public static void WriteDecimal(Utf8JsonWriter writer, ReadOnlySpan<byte> name, ulong value)
    {
        Span<byte> digits = stackalloc byte[DecimalCharsMax];
        var formatted = value.TryFormat(digits, out var length, default, null);
        Common.Invariant.Check(formatted);
        writer.WriteString(name, digits[..length]);
    }
}
