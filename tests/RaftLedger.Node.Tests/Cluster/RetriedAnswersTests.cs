using System.Net;
using System.Net.Sockets;
using RaftLedger.Cli.Client;
using RaftLedger.Ledger;

namespace RaftLedger.Node.Tests.Cluster;

/// <summary>
/// Which answers a process test accepts after the harness retried a create call: exact ones always; after an attempt
/// that may have applied, only what the ledger answers to a duplicate of what was applied (see RetriedAnswers).
/// </summary>
public sealed class RetriedAnswersTests
{
    private static Transfer Single(ulong id) => new() { Id = id, DebitAccountId = 1, CreditAccountId = 2, Amount = 1, Ledger = 1, Code = 1 };

    private static Transfer Linked(ulong id) => Single(id) with { Flags = TransferFlags.Linked };

    private static AnswerVerdict Judge(Transfer[] transfers, string[] expected, string[] actual, bool possiblyApplied = true) =>
        RetriedAnswers.Judge(transfers, expected, actual, possiblyApplied);

    [Fact]
    public void An_exact_answer_is_accepted_with_or_without_an_earlier_attempt()
    {
        Transfer[] batch = [Single(1), Linked(2), Single(3)];
        string[] expected = ["exceeds_credits", "linked_event_failed", "accounts_must_be_different"];
        Assert.Equal(AnswerVerdict.Exact, Judge(batch, expected, expected, possiblyApplied: false));
        Assert.Equal(AnswerVerdict.Exact, Judge(batch, expected, expected, possiblyApplied: true));
    }

    [Fact]
    public void After_an_attempt_that_may_have_applied_created_may_be_exists()
    {
        Assert.Equal(AnswerVerdict.Excused, Judge([Single(1)], ["created"], ["exists"]));
        Assert.Equal(AnswerVerdict.Excused, Judge([Single(1), Single(2)], ["created", "created"], ["exists", "created"]));
    }

    [Fact]
    public void Exists_without_an_attempt_that_may_have_applied_is_wrong()
    {
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], ["created"], ["exists"], possiblyApplied: false));
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], ["exceeds_credits"], ["id_already_failed"], possiblyApplied: false));
    }

    [Theory]
    [InlineData("exceeds_credits")]
    [InlineData("exceeds_debits")]
    [InlineData("debit_account_not_found")]
    [InlineData("credit_account_not_found")]
    [InlineData("pending_transfer_not_found")]
    [InlineData("debit_account_already_closed")]
    [InlineData("credit_account_already_closed")]
    public void After_an_attempt_that_may_have_applied_a_status_that_burns_the_id_may_be_id_already_failed(string transient) =>
        Assert.Equal(AnswerVerdict.Excused, Judge([Single(1)], [transient], ["id_already_failed"]));

    [Theory]
    [InlineData("pending_transfer_already_posted")]
    [InlineData("pending_transfer_already_voided")]
    [InlineData("pending_transfer_expired")]
    [InlineData("accounts_must_be_different")]
    [InlineData("exists")]
    [InlineData("linked_event_chain_open")]
    public void A_status_that_burns_no_id_is_never_excused_as_id_already_failed(string durable) =>
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], [durable], ["id_already_failed"]));

    [Fact]
    public void Another_status_than_the_duplicates_answer_is_wrong()
    {
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], ["created"], ["exceeds_credits"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], ["created"], ["exists_with_different_amount"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], ["created"], ["id_already_failed"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], ["exceeds_credits"], ["exists"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], ["exceeds_credits"], ["created"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1), Single(2)], ["created", "created"], ["exists"]));
    }

    [Fact]
    public void A_deliberate_duplicate_expects_exists_exactly()
    {
        Assert.Equal(AnswerVerdict.Exact, Judge([Single(1)], ["exists"], ["exists"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], ["exists"], ["created"]));
    }

    [Fact]
    public void A_created_chain_retried_answers_exists_first_and_linked_event_failed_after_it()
    {
        Transfer[] chain = [Linked(1), Linked(2), Single(3)];
        string[] created = ["created", "created", "created"];
        Assert.Equal(AnswerVerdict.Excused, Judge(chain, created, ["exists", "linked_event_failed", "linked_event_failed"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge(chain, created, ["exists", "linked_event_failed", "linked_event_failed"], possiblyApplied: false));
    }

    [Fact]
    public void A_chain_is_all_or_nothing_so_mixed_answers_are_wrong()
    {
        Transfer[] chain = [Linked(1), Linked(2), Single(3)];
        string[] created = ["created", "created", "created"];
        Assert.Equal(AnswerVerdict.Wrong, Judge(chain, created, ["exists", "exists", "exists"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge(chain, created, ["exists", "created", "created"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge(chain, created, ["created", "exists", "linked_event_failed"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge(chain, created, ["linked_event_failed", "linked_event_failed", "linked_event_failed"]));
    }

    [Fact]
    public void A_chain_that_burnt_an_id_answers_id_already_failed_there_when_retried()
    {
        Transfer[] chain = [Linked(1), Single(2)];
        string[] refused = ["linked_event_failed", "exceeds_credits"];
        Assert.Equal(AnswerVerdict.Excused, Judge(chain, refused, ["linked_event_failed", "id_already_failed"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge(chain, refused, ["id_already_failed", "linked_event_failed"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge(chain, ["linked_event_failed", "pending_transfer_already_posted"], ["linked_event_failed", "id_already_failed"]));
    }

    [Fact]
    public void Chains_and_single_events_of_one_batch_are_judged_each_on_its_own()
    {
        // A batch split by shard: the first attempt may have applied the chain's part and not the single event's.
        Transfer[] batch = [Linked(1), Single(2), Single(3), Single(4)];
        string[] expected = ["created", "created", "created", "exceeds_credits"];
        Assert.Equal(AnswerVerdict.Excused, Judge(batch, expected, ["exists", "linked_event_failed", "created", "exceeds_credits"]));
        Assert.Equal(AnswerVerdict.Excused, Judge(batch, expected, ["created", "created", "exists", "id_already_failed"]));
        Assert.Equal(AnswerVerdict.Wrong, Judge(batch, expected, ["exists", "linked_event_failed", "linked_event_failed", "exceeds_credits"]));
    }

    [Fact]
    public void An_open_chain_applies_nothing_so_only_its_exact_answer_is_accepted()
    {
        Transfer[] open = [Linked(1), Linked(2)];
        string[] expected = ["linked_event_failed", "linked_event_chain_open"];
        Assert.Equal(AnswerVerdict.Exact, Judge(open, expected, expected));
        Assert.Equal(AnswerVerdict.Wrong, Judge(open, expected, ["exists", "linked_event_failed"]));
    }

    [Fact]
    public void An_answer_of_another_length_is_wrong_and_expectations_must_match_the_transfers()
    {
        Assert.Equal(AnswerVerdict.Wrong, Judge([Single(1)], ["created"], []));
        Assert.Throws<ArgumentException>(() => Judge([Single(1), Single(2)], ["created"], ["created"]));
    }

    [Fact]
    public void A_judged_call_tells_what_was_expected_and_answered_and_how_the_attempts_went()
    {
        var call = new CreateCall([new CreateResult(0, "exists", 0)], [CreateAttempt.Of(1, HttpStatusCode.GatewayTimeout, "outcome unknown"), CreateAttempt.Of(2, HttpStatusCode.OK, "")]);
        var (verdict, story) = call.Judge([Single(7)], ["created"]);
        Assert.Equal(AnswerVerdict.Excused, verdict);
        Assert.Equal(
            "create_transfers of [7]: expected [created], answered [exists]; an earlier attempt may have applied; " +
            "attempts: 2 (node 1: 504 outcome unknown (may have applied); node 2: 200)",
            story);
        var refused = call with { Attempts = [CreateAttempt.Of(3, HttpStatusCode.ServiceUnavailable, "no leader"), call.Attempts[1]] };
        Assert.Equal(AnswerVerdict.Wrong, refused.Judge([Single(7)], ["created"]).Verdict);
        Assert.Contains("an earlier attempt applied nothing", refused.Judge([Single(7)], ["created"]).Story, StringComparison.Ordinal);
    }

    [Fact]
    public void The_attempt_log_shows_the_last_attempts_only()
    {
        var attempts = Enumerable.Range(1, CreateAttempt.ShownMax + 3).Select(i => CreateAttempt.Of((ulong)i, HttpStatusCode.ServiceUnavailable, "no leader")).ToArray();
        var log = CreateAttempt.Describe(attempts);
        Assert.StartsWith($"{CreateAttempt.ShownMax + 3} (3 earlier not shown; node 4: 503 no leader; ", log, StringComparison.Ordinal);
        Assert.DoesNotContain("node 3:", log, StringComparison.Ordinal);
    }

    [Fact]
    public void Only_a_definite_refusal_counts_as_applying_nothing()
    {
        Assert.False(CreateAttempt.Of(1, HttpStatusCode.ServiceUnavailable, "no leader").PossiblyApplied);
        Assert.False(CreateAttempt.Of(1, HttpStatusCode.BadRequest, "bad").PossiblyApplied);
        Assert.False(CreateAttempt.Of(1, new HttpRequestException("refused", new SocketException((int)SocketError.ConnectionRefused))).PossiblyApplied);
        Assert.True(CreateAttempt.Of(1, HttpStatusCode.GatewayTimeout, "outcome unknown").PossiblyApplied);
        Assert.True(CreateAttempt.Of(1, HttpStatusCode.InternalServerError, "bug").PossiblyApplied);
        Assert.True(CreateAttempt.Of(1, new HttpRequestException("reset", new SocketException((int)SocketError.ConnectionReset))).PossiblyApplied);
        Assert.True(CreateAttempt.Of(1, new HttpRequestException("ended")).PossiblyApplied);
        var call = new CreateCall([], [CreateAttempt.Of(2, HttpStatusCode.ServiceUnavailable, ""), CreateAttempt.Of(3, HttpStatusCode.OK, "")]);
        Assert.False(call.PossiblyApplied);
        Assert.True((call with { Attempts = [CreateAttempt.Of(2, HttpStatusCode.GatewayTimeout, ""), .. call.Attempts] }).PossiblyApplied);
    }
}
