using System.Text.Json;

namespace RaftLedger.Node.Api;

/// <summary>
/// Where a value sits in the request (<c>$.transfers[3].amount</c>); built into a string only
/// when an error needs it, so valid requests allocate no paths.
/// </summary>
public readonly record struct JsonPath(string Root, int Index, string? Field = null)
{
    public JsonPath WithField(string field) => this with { Field = field };

    public override string ToString() =>
        Field is null ? $"$.{Root}[{Index}]" : $"$.{Root}[{Index}].{Field}";
}

/// <summary>Reads one typed value at the reader's current token, or explains what to send.</summary>
internal static class JsonFieldReader
{
    // The longest decimal u128 has 39 digits; longer strings are refused before copying.
    private const int DecimalCharsMax = 39;

    public static bool TryReadU128(ref Utf8JsonReader reader, JsonPath path, out UInt128 value, out ApiError error)
    {
        Span<byte> buffer = stackalloc byte[DecimalCharsMax];
        if (TryDecimalText(ref reader, buffer, out var length) &&
            JsonRequestReader.TryParseDecimal(buffer[..length], out value))
        {
            error = default;
            return true;
        }

        value = default;
        error = ApiError.BadRequest(
            $"{path} must be a decimal string from \"0\" to \"{UInt128.MaxValue}\" (u128), got {JsonRequestReader.Describe(ref reader)}. " +
            "Write 128-bit and 64-bit values as strings of digits, e.g. \"100\", so no JSON parser rounds them.");
        return false;
    }

    public static bool TryReadU64(ref Utf8JsonReader reader, JsonPath path, out ulong value, out ApiError error)
    {
        Span<byte> buffer = stackalloc byte[DecimalCharsMax];
        if (TryDecimalText(ref reader, buffer, out var length) &&
            JsonRequestReader.TryParseDecimal(buffer[..length], out value))
        {
            error = default;
            return true;
        }

        value = default;
        error = ApiError.BadRequest(
            $"{path} must be a decimal string from \"0\" to \"{ulong.MaxValue}\" (u64), got {JsonRequestReader.Describe(ref reader)}. " +
            "Write 64-bit values as strings of digits, e.g. \"42\", so no JSON parser rounds them.");
        return false;
    }

    public static bool TryReadU32(ref Utf8JsonReader reader, JsonPath path, out uint value, out ApiError error)
    {
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetUInt32(out value))
        {
            error = default;
            return true;
        }

        value = default;
        error = ApiError.BadRequest(
            $"{path} must be a whole JSON number from 0 to {uint.MaxValue} (u32), got {JsonRequestReader.Describe(ref reader)}.");
        return false;
    }

    public static bool TryReadU16(ref Utf8JsonReader reader, JsonPath path, out ushort value, out ApiError error)
    {
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetUInt16(out value))
        {
            error = default;
            return true;
        }

        value = default;
        error = ApiError.BadRequest(
            $"{path} must be a whole JSON number from 0 to {ushort.MaxValue} (u16), got {JsonRequestReader.Describe(ref reader)}.");
        return false;
    }

    /// <summary>Reads an array of flag names into the flag bits; repeated names are harmless.</summary>
    public static bool TryReadFlags<TEnum>(ref Utf8JsonReader reader, JsonPath path, out ulong bits, out ApiError error)
        where TEnum : struct, Enum
    {
        bits = 0;
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            error = ApiError.BadRequest(
                $"{path} must be an array of flag names (from: {FlagNames<TEnum>.AllowedList}), got {JsonRequestReader.Describe(ref reader)}.");
            return false;
        }

        for (var i = 0; reader.Read() && reader.TokenType != JsonTokenType.EndArray; i++)
        {
            if (reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped ||
                !FlagNames<TEnum>.TryParse(reader.ValueSpan, out var bit))
            {
                error = ApiError.BadRequest(
                    $"{path}[{i}] is not a flag: got {JsonRequestReader.Describe(ref reader)}. Allowed flags: {FlagNames<TEnum>.AllowedList}.");
                return false;
            }

            bits |= bit;
        }

        error = default;
        return true;
    }

    /// <summary>Unescapes a short JSON string into <paramref name="buffer"/>; false for anything else.</summary>
    private static bool TryDecimalText(ref Utf8JsonReader reader, scoped Span<byte> buffer, out int length)
    {
        length = 0;
        if (reader.TokenType != JsonTokenType.String)
        {
            return false;
        }

        if (!reader.ValueIsEscaped)
        {
            if (reader.ValueSpan.Length > buffer.Length)
            {
                return false;
            }

            reader.ValueSpan.CopyTo(buffer);
            length = reader.ValueSpan.Length;
            return true;
        }

        // An escaped value is never shorter once unescaped, so a long raw value cannot fit.
        return reader.ValueSpan.Length <= buffer.Length * 6 && TryCopyUnescaped(ref reader, buffer, out length);
    }

    private static bool TryCopyUnescaped(ref Utf8JsonReader reader, scoped Span<byte> buffer, out int length)
    {
        Span<byte> scratch = stackalloc byte[DecimalCharsMax * 6];
        length = reader.CopyString(scratch);
        if (length > buffer.Length)
        {
            return false;
        }

        scratch[..length].CopyTo(buffer);
        return true;
    }
}
