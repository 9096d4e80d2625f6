namespace RaftLedger.Ledger.CrossShard;

/// <summary>
/// How the coordinator turns the participants' per-side outcomes into TigerBeetle's status, in
/// TigerBeetle's precedence order (the same order <see cref="LedgerStateMachine"/> checks a local
/// transfer in): debit not found, credit not found, ledgers, closed, then the overflows interleaved
/// debit/credit, then the limits.
/// </summary>
public static class CrossShardRules
{
    /// <summary>Leg status of an event whose legs were not prepared (an earlier event of its chain failed first).</summary>
    public const byte NotPrepared = 0xFF;

    /// <summary>The status of a transfer whose debit side reported <paramref name="debit"/> and credit side <paramref name="credit"/>.</summary>
    public static CreateTransferResult Combine(in Transfer t, SideReport debit, SideReport credit)
    {
        if (debit.Outcome == LegOutcome.NotFound)
        {
            return CreateTransferResult.DebitAccountNotFound;
        }

        if (credit.Outcome == LegOutcome.NotFound)
        {
            return CreateTransferResult.CreditAccountNotFound;
        }

        // An Ok side has the transfer's ledger (a different one is reported as LedgerMismatch).
        var debitLedger = debit.Outcome == LegOutcome.LedgerMismatch ? debit.Ledger : t.Ledger;
        var creditLedger = credit.Outcome == LegOutcome.LedgerMismatch ? credit.Ledger : t.Ledger;
        if (debitLedger != creditLedger)
        {
            return CreateTransferResult.AccountsMustHaveTheSameLedger;
        }

        if (debitLedger != t.Ledger)
        {
            return CreateTransferResult.TransferMustHaveTheSameLedgerAsAccounts;
        }

        if (debit.Outcome == LegOutcome.Closed)
        {
            return CreateTransferResult.DebitAccountAlreadyClosed;
        }

        if (credit.Outcome == LegOutcome.Closed)
        {
            return CreateTransferResult.CreditAccountAlreadyClosed;
        }

        return CombineBalances(debit.Outcome, credit.Outcome);
    }

    // Each side reports its first failing balance check; interleaving the two in TigerBeetle's order
    // (debit before credit at each level) and taking the lowest rank gives the first that applies.
    private static CreateTransferResult CombineBalances(LegOutcome debit, LegOutcome credit)
    {
        var debitRank = Rank(debit, isDebit: true);
        var creditRank = Rank(credit, isDebit: false);
        var rank = Math.Min(debitRank, creditRank);
        return rank switch
        {
            0 => CreateTransferResult.OverflowsDebitsPending,
            1 => CreateTransferResult.OverflowsCreditsPending,
            2 => CreateTransferResult.OverflowsDebitsPosted,
            3 => CreateTransferResult.OverflowsCreditsPosted,
            4 => CreateTransferResult.OverflowsDebits,
            5 => CreateTransferResult.OverflowsCredits,
            6 => CreateTransferResult.ExceedsCredits,
            7 => CreateTransferResult.ExceedsDebits,
            8 => CreateTransferResult.Exists, // a late duplicate of a finished transaction: the id exists
            _ => CreateTransferResult.Created,
        };
    }

    private static int Rank(LegOutcome outcome, bool isDebit)
    {
        var side = isDebit ? 0 : 1;
        return outcome switch
        {
            LegOutcome.PendingOverflow => 0 + side,
            LegOutcome.PostedOverflow => 2 + side,
            LegOutcome.TotalOverflow => 4 + side,
            LegOutcome.ExceedsLimit => 6 + side,
            LegOutcome.AlreadyFinished => 8,
            _ => int.MaxValue, // Ok, or NotEvaluated (never the first failure of a chain, see the design doc)
        };
    }
}
