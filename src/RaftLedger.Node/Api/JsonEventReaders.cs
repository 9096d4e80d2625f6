using System.Text;
using System.Text.Json;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Api;

/// <summary>
/// Field tables of the event objects: the order of <see cref="Names"/> is the field number used
/// in the readers below. Only <c>id</c> is required; every other field defaults to 0 / empty,
/// so the ledger (not the parser) judges values such as a zero ledger or a non-zero timestamp.
/// </summary>
internal static class EventFieldNames
{
    public static readonly string[] Account =
    [
        "id", "debits_pending", "debits_posted", "credits_pending", "credits_posted", "user_data_128",
        "user_data_64", "user_data_32", "ledger", "code", "flags", "timestamp",
    ];

    public static readonly string[] Transfer =
    [
        "id", "debit_account_id", "credit_account_id", "amount", "pending_id", "user_data_128",
        "user_data_64", "user_data_32", "timeout", "ledger", "code", "flags", "timestamp",
    ];

    public static readonly byte[][] AccountUtf8 = Array.ConvertAll(Account, Encoding.UTF8.GetBytes);
    public static readonly byte[][] TransferUtf8 = Array.ConvertAll(Transfer, Encoding.UTF8.GetBytes);
    public static readonly string AccountList = string.Join(", ", Account);
    public static readonly string TransferList = string.Join(", ", Transfer);

    /// <summary>The field number of the current property name, or -1.</summary>
    public static int IndexOf(ref Utf8JsonReader reader, byte[][] names)
    {
        for (var i = 0; i < names.Length; i++)
        {
            if (reader.ValueTextEquals(names[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// Walks an event object, checking unknown, repeated and missing fields, and hands each
    /// field's value token to <paramref name="readField"/>-style code via the returned number.
    /// </summary>
    public static bool TryNextField(
        ref Utf8JsonReader reader, JsonPath path, string[] names, byte[][] namesUtf8, string allowed,
        ref uint seen, out int field, out ApiError error)
    {
        field = -1;
        if (!reader.Read() || reader.TokenType == JsonTokenType.EndObject)
        {
            // Field 0 is "id", the only required field.
            error = (seen & 1) == 0
                ? ApiError.BadRequest($"{path} is missing the required field 'id'.")
                : default;
            return false;
        }

        field = IndexOf(ref reader, namesUtf8);
        if (field < 0)
        {
            error = ApiError.BadRequest(
                $"{path} has an unknown field '{JsonRequestReader.PropertyName(ref reader)}'. Allowed fields: {allowed}.");
            return false;
        }

        if ((seen & (1u << field)) != 0)
        {
            error = ApiError.BadRequest($"{path.WithField(names[field])} appears twice; send each field once.");
            return false;
        }

        seen |= 1u << field;
        reader.Read();
        if (reader.TokenType == JsonTokenType.Null)
        {
            error = ApiError.BadRequest($"{path.WithField(names[field])} is null; leave the field out to use its default.");
            return false;
        }

        error = default;
        return true;
    }

    public static bool ExpectObject(ref Utf8JsonReader reader, JsonPath path, string kind, out ApiError error)
    {
        if (reader.TokenType == JsonTokenType.StartObject)
        {
            error = default;
            return true;
        }

        error = ApiError.BadRequest($"{path} must be {kind} object, got {JsonRequestReader.Describe(ref reader)}.");
        return false;
    }
}

internal readonly struct AccountFields : IElementReader<Account>
{
    public static bool TryRead(ref Utf8JsonReader reader, JsonPath path, out Account value, out ApiError error)
    {
        value = default;
        if (!EventFieldNames.ExpectObject(ref reader, path, "an account", out error))
        {
            return false;
        }

        uint seen = 0;
        while (EventFieldNames.TryNextField(
            ref reader, path, EventFieldNames.Account, EventFieldNames.AccountUtf8, EventFieldNames.AccountList,
            ref seen, out var field, out error))
        {
            if (!TryReadField(ref reader, path.WithField(EventFieldNames.Account[field]), field, ref value, out error))
            {
                return false;
            }
        }

        return error.StatusCode == 0;
    }

    private static bool TryReadField(ref Utf8JsonReader reader, JsonPath path, int field, ref Account account, out ApiError error)
    {
        switch (field)
        {
            case 0: return JsonFieldReader.TryReadU128(ref reader, path, out account.Id, out error);
            case 1: return JsonFieldReader.TryReadU128(ref reader, path, out account.DebitsPending, out error);
            case 2: return JsonFieldReader.TryReadU128(ref reader, path, out account.DebitsPosted, out error);
            case 3: return JsonFieldReader.TryReadU128(ref reader, path, out account.CreditsPending, out error);
            case 4: return JsonFieldReader.TryReadU128(ref reader, path, out account.CreditsPosted, out error);
            case 5: return JsonFieldReader.TryReadU128(ref reader, path, out account.UserData128, out error);
            case 6: return JsonFieldReader.TryReadU64(ref reader, path, out account.UserData64, out error);
            case 7: return JsonFieldReader.TryReadU32(ref reader, path, out account.UserData32, out error);
            case 8: return JsonFieldReader.TryReadU32(ref reader, path, out account.Ledger, out error);
            case 9: return JsonFieldReader.TryReadU16(ref reader, path, out account.Code, out error);
            case 10:
                var ok = JsonFieldReader.TryReadFlags<AccountFlags>(ref reader, path, out var bits, out error);
                account.Flags = (AccountFlags)bits;
                return ok;
            default: return JsonFieldReader.TryReadU64(ref reader, path, out account.Timestamp, out error);
        }
    }
}

internal readonly struct TransferFields : IElementReader<Transfer>
{
    public static bool TryRead(ref Utf8JsonReader reader, JsonPath path, out Transfer value, out ApiError error)
    {
        value = default;
        if (!EventFieldNames.ExpectObject(ref reader, path, "a transfer", out error))
        {
            return false;
        }

        uint seen = 0;
        while (EventFieldNames.TryNextField(
            ref reader, path, EventFieldNames.Transfer, EventFieldNames.TransferUtf8, EventFieldNames.TransferList,
            ref seen, out var field, out error))
        {
            if (!TryReadField(ref reader, path.WithField(EventFieldNames.Transfer[field]), field, ref value, out error))
            {
                return false;
            }
        }

        return error.StatusCode == 0;
    }

    private static bool TryReadField(ref Utf8JsonReader reader, JsonPath path, int field, ref Transfer transfer, out ApiError error)
    {
        switch (field)
        {
            case 0: return JsonFieldReader.TryReadU128(ref reader, path, out transfer.Id, out error);
            case 1: return JsonFieldReader.TryReadU128(ref reader, path, out transfer.DebitAccountId, out error);
            case 2: return JsonFieldReader.TryReadU128(ref reader, path, out transfer.CreditAccountId, out error);
            case 3: return JsonFieldReader.TryReadU128(ref reader, path, out transfer.Amount, out error);
            case 4: return JsonFieldReader.TryReadU128(ref reader, path, out transfer.PendingId, out error);
            case 5: return JsonFieldReader.TryReadU128(ref reader, path, out transfer.UserData128, out error);
            case 6: return JsonFieldReader.TryReadU64(ref reader, path, out transfer.UserData64, out error);
            case 7: return JsonFieldReader.TryReadU32(ref reader, path, out transfer.UserData32, out error);
            case 8: return JsonFieldReader.TryReadU32(ref reader, path, out transfer.TimeoutSeconds, out error);
            case 9: return JsonFieldReader.TryReadU32(ref reader, path, out transfer.Ledger, out error);
            case 10: return JsonFieldReader.TryReadU16(ref reader, path, out transfer.Code, out error);
            case 11:
                var ok = JsonFieldReader.TryReadFlags<TransferFlags>(ref reader, path, out var bits, out error);
                transfer.Flags = (TransferFlags)bits;
                return ok;
            default: return JsonFieldReader.TryReadU64(ref reader, path, out transfer.Timestamp, out error);
        }
    }
}
