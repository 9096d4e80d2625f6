using System.Net;
using System.Net.Sockets;
using RaftLedger.Cli.Client;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Tests.Cluster;

/// <summary>One create_transfers call through the harness: the answer (the last attempt's) and every attempt.</summary>
internal sealed record CreateCall(CreateResult[] Results, IReadOnlyList<CreateAttempt> Attempts)
{
    /// <summary>True when an attempt may have applied the transfers before the one that answered.</summary>
    public bool PossiblyApplied => Attempts.Any(a => a.PossiblyApplied);

    /// <summary>
    /// The answer judged against <paramref name="expected"/> (<see cref="RetriedAnswers.Judge"/>), and for messages what
    /// was sent, expected and answered, whether an earlier attempt may have applied, and the attempts.
    /// </summary>
    public (AnswerVerdict Verdict, string Story) Judge(Transfer[] transfers, IReadOnlyList<string> expected)
    {
        var actual = Results.Select(r => r.Status).ToArray();
        var verdict = RetriedAnswers.Judge(transfers, expected, actual, PossiblyApplied);
        var story = $"create_transfers of [{string.Join(", ", transfers.Select(t => t.Id))}]: expected [{string.Join(", ", expected)}], " +
            $"answered [{string.Join(", ", actual)}]; an earlier attempt {(PossiblyApplied ? "may have applied" : "applied nothing")}; " +
            $"attempts: {CreateAttempt.Describe(Attempts)}";
        return (verdict, story);
    }
}

/// <summary>
/// One attempt of a create call: the node it went to, what came back, and whether it may have applied anything.
/// Only a definite refusal applied nothing: 503 (ILedgerService: no leader, no quorum, unavailable), a 4xx (the API
/// refused the request before the ledger saw it) or a refused connection (nothing was sent). Everything else may have:
/// 504 (outcome unknown), 500, a client timeout, a connection broken after the request may have gone out. (The
/// verify workload's BankWorkload counts 500 as definite; here it is not, to stay on the safe side.)
/// </summary>
internal readonly record struct CreateAttempt(ulong Node, string Outcome, bool PossiblyApplied)
{
    /// <summary>How much of the log failure messages show: the last attempts, where the story ends.</summary>
    public const int ShownMax = 8;

    private const int ProblemCharsMax = 160;

    public static CreateAttempt Of(ulong node, HttpStatusCode status, string problem)
    {
        var code = (int)status;
        var definite = status is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable || code is >= 400 and < 500;
        return new CreateAttempt(node, status == HttpStatusCode.OK ? "200" : $"{code} {Shorten(problem)}", !definite);
    }

    public static CreateAttempt Of(ulong node, HttpRequestException exception)
    {
        var refused = exception.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused };
        return new CreateAttempt(node, $"{(refused ? "connection refused" : "connection error")}: {Shorten(exception.Message)}", !refused);
    }

    /// <summary>"node 2: 504 …; node 3: 200", the last <see cref="ShownMax"/> attempts, each marked when it may have applied.</summary>
    public static string Describe(IReadOnlyList<CreateAttempt> attempts)
    {
        var shown = attempts.Skip(Math.Max(0, attempts.Count - ShownMax)).Select(a => $"node {a.Node}: {a.Outcome}{(a.PossiblyApplied ? " (may have applied)" : "")}");
        var omitted = attempts.Count > ShownMax ? $"{attempts.Count - ShownMax} earlier not shown; " : "";
        return $"{attempts.Count} ({omitted}{string.Join("; ", shown)})";
    }

    private static string Shorten(string text) => text.Length <= ProblemCharsMax ? text : text[..ProblemCharsMax] + "…";
}
