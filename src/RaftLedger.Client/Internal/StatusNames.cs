using System.Collections.Frozen;
using System.Text;

namespace RaftLedger.Client.Internal;

/// <summary>
/// The cluster's snake_case status names (<c>exceeds_credits</c>) to the ledger's result enums
/// (<c>ExceedsCredits</c>), built from the enum member names with the node's rule, so a status the
/// ledger adds is known here without a table to edit.
/// </summary>
internal static class StatusNames<TEnum>
    where TEnum : struct, Enum
{
    private static readonly FrozenDictionary<string, (TEnum Value, string Name)> ValuesByName = Build();

    /// <summary>The enum value named <paramref name="name"/>, and the one shared string for that name.</summary>
    public static bool TryParse(string name, out TEnum value, out string canonicalName)
    {
        if (ValuesByName.TryGetValue(name, out var entry))
        {
            value = entry.Value;
            canonicalName = entry.Name;
            return true;
        }

        value = default;
        canonicalName = name;
        return false;
    }

    private static FrozenDictionary<string, (TEnum, string)> Build()
    {
        var names = new Dictionary<string, (TEnum, string)>(StringComparer.Ordinal);
        foreach (var value in Enum.GetValues<TEnum>())
        {
            var name = SnakeCase(Enum.GetName(value)!);
            names.TryAdd(name, (value, name));
        }

        return names.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>
    /// The node's rule (Api/SnakeCase.cs): a word starts at an upper-case letter and at a digit run
    /// after a letter (UserData128 → user_data_128). A test pins it against every status.
    /// </summary>
    internal static string SnakeCase(string name)
    {
        var builder = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
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
