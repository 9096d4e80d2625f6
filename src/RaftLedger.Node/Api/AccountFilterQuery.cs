using System.Globalization;
using Microsoft.AspNetCore.Http;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Api;

/// <summary>
/// The query string of <c>/v1/accounts/{id}/transfers</c> and <c>/balances</c>:
/// <c>limit</c> (1..8189, default 100), <c>timestamp_min</c>/<c>timestamp_max</c> (u64, 0 = unbounded),
/// <c>debits</c>/<c>credits</c> (true/false; both default to true when neither is given),
/// <c>reversed</c> (true/false). Unknown parameters are refused.
/// </summary>
public static class AccountFilterQuery
{
    private static readonly string[] Allowed = ["limit", "timestamp_min", "timestamp_max", "debits", "credits", "reversed"];

    public static bool TryParse(IQueryCollection query, UInt128 accountId, out AccountFilter filter, out ApiError error)
    {
        filter = new AccountFilter { AccountId = accountId, Limit = ApiLimits.QueryRowsDefault };
        foreach (var (key, values) in query)
        {
            if (Array.IndexOf(Allowed, key) < 0)
            {
                error = ApiError.BadRequest(
                    $"Unknown query parameter '{JsonRequestReader.Truncate(key)}'. Allowed: {string.Join(", ", Allowed)}.");
                return false;
            }

            if (values.Count != 1)
            {
                error = ApiError.BadRequest($"Query parameter '{key}' appears {values.Count} times; give it once.");
                return false;
            }
        }

        if (!TryLimit(query, ref filter, out error) ||
            !TryTimestamp(query, "timestamp_min", out filter.TimestampMin, out error) ||
            !TryTimestamp(query, "timestamp_max", out filter.TimestampMax, out error) ||
            !TryDirections(query, ref filter, out error))
        {
            return false;
        }

        if (filter.TimestampMax != 0 && filter.TimestampMin > filter.TimestampMax)
        {
            error = ApiError.BadRequest(
                $"timestamp_min ({filter.TimestampMin}) is after timestamp_max ({filter.TimestampMax}); swap them or leave one out.");
            return false;
        }

        return true;
    }

    private static bool TryLimit(IQueryCollection query, ref AccountFilter filter, out ApiError error)
    {
        error = default;
        if (!query.TryGetValue("limit", out var text))
        {
            return true;
        }

        if (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) &&
            limit >= 1 && limit <= ApiLimits.QueryRowsMax)
        {
            filter.Limit = limit;
            return true;
        }

        error = ApiError.BadRequest(
            $"limit must be a whole number from 1 to {ApiLimits.QueryRowsMax}, got '{JsonRequestReader.Truncate(text.ToString())}'.");
        return false;
    }

    private static bool TryTimestamp(IQueryCollection query, string name, out ulong value, out ApiError error)
    {
        error = default;
        value = 0;
        if (!query.TryGetValue(name, out var text) ||
            ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value))
        {
            return true;
        }

        error = ApiError.BadRequest(
            $"{name} must be a decimal number from 0 to {ulong.MaxValue} (cluster nanoseconds; 0 = no bound), " +
            $"got '{JsonRequestReader.Truncate(text.ToString())}'.");
        return false;
    }

    private static bool TryDirections(IQueryCollection query, ref AccountFilter filter, out ApiError error)
    {
        var givenDebits = query.ContainsKey("debits");
        var givenCredits = query.ContainsKey("credits");
        if (!TryBool(query, "debits", !givenCredits, out var debits, out error) ||
            !TryBool(query, "credits", !givenDebits, out var credits, out error) ||
            !TryBool(query, "reversed", false, out var reversed, out error))
        {
            return false;
        }

        if (!debits && !credits)
        {
            error = ApiError.BadRequest("debits and credits are both false, so nothing can match; set at least one to true.");
            return false;
        }

        filter.Flags = (debits ? AccountFilterFlags.Debits : 0) |
            (credits ? AccountFilterFlags.Credits : 0) |
            (reversed ? AccountFilterFlags.Reversed : 0);
        return true;
    }

    private static bool TryBool(IQueryCollection query, string name, bool absent, out bool value, out ApiError error)
    {
        error = default;
        value = absent;
        if (!query.TryGetValue(name, out var text))
        {
            return true;
        }

        if (text == "true" || text == "false")
        {
            value = text == "true";
            return true;
        }

        error = ApiError.BadRequest($"{name} must be true or false, got '{JsonRequestReader.Truncate(text.ToString())}'.");
        return false;
    }
}
