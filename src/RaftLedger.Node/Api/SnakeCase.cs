using System.Collections.Frozen;
using System.Text;

namespace RaftLedger.Node.Api;

/// <summary>
/// Converts enum member names to the API's snake_case names (DebitsMustNotExceedCredits →
/// debits_must_not_exceed_credits), generically, so a status the ledger adds appears in the API
/// without anyone editing a table here.
/// </summary>
public static class SnakeCase
{
    public static string FromPascal(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var builder = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            // A new word starts at an upper-case letter, and at a digit run after a letter
            // (UserData128 → user_data_128, as TigerBeetle spells it), except at the start.
            var startsWord = char.IsUpper(c) || (char.IsDigit(c) && i > 0 && !char.IsDigit(name[i - 1]));
            if (startsWord && i > 0)
            {
                builder.Append('_');
            }

            builder.Append(char.ToLowerInvariant(c));
        }

        return builder.ToString();
    }
}

/// <summary>The snake_case name of every member of <typeparamref name="TEnum"/>, computed once.</summary>
public static class SnakeCaseNames<TEnum>
    where TEnum : struct, Enum
{
    private static readonly FrozenDictionary<TEnum, string> NamesByValue = BuildNames();

    /// <summary>The snake_case name, or the number when the value has no name (never expected).</summary>
    public static string Of(TEnum value) =>
        NamesByValue.TryGetValue(value, out var name) ? name : Convert.ToUInt64(value, null).ToString(null, null);

    private static FrozenDictionary<TEnum, string> BuildNames()
    {
        var names = new Dictionary<TEnum, string>();
        foreach (var value in Enum.GetValues<TEnum>())
        {
            // Aliases (two names, one value) keep the first declared name.
            names.TryAdd(value, SnakeCase.FromPascal(Enum.GetName(value)!));
        }

        return names.ToFrozenDictionary();
    }
}

/// <summary>
/// A [Flags] enum as a JSON array of snake_case names: each single-bit member is one name;
/// <c>None</c> (zero) is never written and never accepted.
/// </summary>
public static class FlagNames<TEnum>
    where TEnum : struct, Enum
{
    private static readonly (ulong Bit, string Name, byte[] Utf8)[] Bits = BuildBits();

    /// <summary>Every accepted name, for error messages that say what is allowed.</summary>
    public static readonly string AllowedList = string.Join(", ", Array.ConvertAll(Bits, b => b.Name));

    public static int Count => Bits.Length;

    public static string NameAt(int i) => Bits[i].Name;

    public static ulong BitAt(int i) => Bits[i].Bit;

    /// <summary>Finds the bit for a UTF-8 name; false when the name is not a flag.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8Name, out ulong bit)
    {
        foreach (var entry in Bits)
        {
            if (utf8Name.SequenceEqual(entry.Utf8))
            {
                bit = entry.Bit;
                return true;
            }
        }

        bit = 0;
        return false;
    }

    private static (ulong, string, byte[])[] BuildBits()
    {
        var bits = new List<(ulong, string, byte[])>();
        foreach (var value in Enum.GetValues<TEnum>())
        {
            var raw = Convert.ToUInt64(value, null);
            if (raw != 0 && (raw & (raw - 1)) == 0)
            {
                var name = SnakeCase.FromPascal(Enum.GetName(value)!);
                bits.Add((raw, name, Encoding.UTF8.GetBytes(name)));
            }
        }

        return bits.ToArray();
    }
}
