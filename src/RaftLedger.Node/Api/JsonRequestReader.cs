using System.Globalization;
using System.Text;
using System.Text.Json;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Api;

/// <summary>
/// Reads request bodies strictly with <see cref="Utf8JsonReader"/>: unknown or repeated fields,
/// nulls, numbers where decimal strings belong (and the reverse), out-of-range values and
/// unknown flag names are refused with a message naming the JSON path and what to send instead.
/// Nothing is applied unless the whole body is valid.
/// </summary>
public static class JsonRequestReader
{
    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        // Requests are at most: object → array → object → flags array.
        MaxDepth = 8,
    };

    public static bool TryReadAccounts(ReadOnlySpan<byte> body, List<Account> accounts, out ApiError error) =>
        TryReadBatch<Account, AccountFields>(body, "accounts"u8, "accounts", accounts, out error);

    public static bool TryReadTransfers(ReadOnlySpan<byte> body, List<Transfer> transfers, out ApiError error) =>
        TryReadBatch<Transfer, TransferFields>(body, "transfers"u8, "transfers", transfers, out error);

    public static bool TryReadIds(ReadOnlySpan<byte> body, List<UInt128> ids, out ApiError error) =>
        TryReadBatch<UInt128, IdElement>(body, "ids"u8, "ids", ids, out error);

    /// <summary>Reads <c>{"name": [element, ...]}</c> and nothing else.</summary>
    private static bool TryReadBatch<T, TElement>(
        ReadOnlySpan<byte> body, ReadOnlySpan<byte> rootName, string rootNameText, List<T> items, out ApiError error)
        where TElement : IElementReader<T>
    {
        items.Clear();
        var reader = new Utf8JsonReader(body, ReaderOptions);
        try
        {
            if (!TryReadBatchBody<T, TElement>(ref reader, rootName, rootNameText, items, out error))
            {
                items.Clear();
                return false;
            }

            return true;
        }
        catch (JsonException exception)
        {
            items.Clear();
            error = ApiError.BadRequest(
                $"The body is not valid JSON (line {exception.LineNumber + 1}, byte {exception.BytePositionInLine + 1}): " +
                $"{FirstSentence(exception.Message)} Send a JSON object like {{\"{rootNameText}\":[...]}}.");
            return false;
        }
    }

    private static bool TryReadBatchBody<T, TElement>(
        ref Utf8JsonReader reader, ReadOnlySpan<byte> rootName, string rootNameText, List<T> items, out ApiError error)
        where TElement : IElementReader<T>
    {
        var expected = $"Send a JSON object like {{\"{rootNameText}\":[...]}}.";
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            error = ApiError.BadRequest($"The body must be a JSON object. {expected}");
            return false;
        }

        var seenRoot = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (!reader.ValueTextEquals(rootName))
            {
                error = ApiError.BadRequest($"Unknown field '{PropertyName(ref reader)}' at $. {expected}");
                return false;
            }

            if (seenRoot)
            {
                error = ApiError.BadRequest($"Field '{rootNameText}' appears twice; send it once.");
                return false;
            }

            seenRoot = true;
            if (!TryReadArray<T, TElement>(ref reader, rootNameText, items, out error))
            {
                return false;
            }
        }

        if (!seenRoot)
        {
            error = ApiError.BadRequest($"Missing field '{rootNameText}'. {expected}");
            return false;
        }

        // Drain the reader so trailing data after the object is reported as malformed JSON.
        while (reader.Read())
        {
        }

        error = default;
        return true;
    }

    private static bool TryReadArray<T, TElement>(
        ref Utf8JsonReader reader, string rootNameText, List<T> items, out ApiError error)
        where TElement : IElementReader<T>
    {
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
        {
            error = ApiError.BadRequest($"Field '{rootNameText}' must be a JSON array, got {Describe(ref reader)}.");
            return false;
        }

        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (items.Count == ApiLimits.EventsPerBatchMax)
            {
                error = ApiError.BatchTooLarge(rootNameText);
                return false;
            }

            if (!TElement.TryRead(ref reader, new JsonPath(rootNameText, items.Count), out var item, out error))
            {
                return false;
            }

            items.Add(item);
        }

        error = default;
        return true;
    }

    internal static string PropertyName(ref Utf8JsonReader reader) => Truncate(reader.GetString() ?? "");

    /// <summary>The current token, described for an error message.</summary>
    internal static string Describe(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => $"the string \"{Truncate(reader.GetString() ?? "")}\"",
        JsonTokenType.Number => $"the number {Truncate(Encoding.UTF8.GetString(reader.ValueSpan))}",
        JsonTokenType.True => "true",
        JsonTokenType.False => "false",
        JsonTokenType.Null => "null",
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        _ => "nothing",
    };

    internal static string Truncate(string text) =>
        text.Length <= ApiLimits.EchoedValueCharsMax ? text : string.Concat(text.AsSpan(0, ApiLimits.EchoedValueCharsMax), "…");

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message : message[..(end + 1)];
    }

    /// <summary>Parses a u128 written as a decimal string: digits only, no sign, no spaces.</summary>
    internal static bool TryParseDecimal(ReadOnlySpan<byte> utf8, out UInt128 value) =>
        UInt128.TryParse(utf8, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    internal static bool TryParseDecimal(ReadOnlySpan<byte> utf8, out ulong value) =>
        ulong.TryParse(utf8, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}

/// <summary>Reads one array element; the reader is on the element's first token.</summary>
internal interface IElementReader<T>
{
    static abstract bool TryRead(ref Utf8JsonReader reader, JsonPath path, out T value, out ApiError error);
}

/// <summary>An element of <c>"ids"</c>: a u128 decimal string.</summary>
internal readonly struct IdElement : IElementReader<UInt128>
{
    public static bool TryRead(ref Utf8JsonReader reader, JsonPath path, out UInt128 value, out ApiError error) =>
        JsonFieldReader.TryReadU128(ref reader, path, out value, out error);
}
