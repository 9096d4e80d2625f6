using RaftLedger.Ledger;

namespace RaftLedger.Ledger.Tests;

/// <summary>A small seeded PRNG (SplitMix64): the same seed gives the same workload on any machine.</summary>
internal sealed class Prng(ulong seed)
{
    private ulong state = seed;

    public ulong Next()
    {
        var z = state += 0x9E3779B97F4A7C15;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    public int Below(int bound) => (int)(Next() % (ulong)bound);

    public bool Percent(int percent) => Below(100) < percent;
}

/// <summary>
/// Random batches of valid and invalid events over a small set of accounts, so that collisions,
/// limits, chains, two-phase transfers, expiry and overflows all happen often.
/// </summary>
internal sealed class RandomWorkload(ulong seed)
{
    private const int AccountIdsMax = 48;
    private static readonly UInt128 Half = UInt128.One << 127;

    private readonly Prng random = new(seed);
    private readonly List<Transfer> submitted = [];
    private readonly List<UInt128> pendingIds = [];
    private UInt128 nextTransferId = 1000;

    public Prng Random => random;

    public static uint LedgerOf(UInt128 accountId) => (uint)(accountId % 2) + 1;

    /// <summary>Every account id once, with random flags: the first batch, so that most transfers find their accounts.</summary>
    public Account[] InitialAccounts()
    {
        var batch = new Account[AccountIdsMax];
        for (var i = 0; i < batch.Length; i++)
        {
            var id = (UInt128)(i + 1);
            batch[i] = new Account { Id = id, Ledger = LedgerOf(id), Code = 1, Flags = RandomAccountFlags() };
        }

        return batch;
    }

    private AccountFlags RandomAccountFlags()
    {
        var roll = random.Below(10);
        var flags = roll < 3 ? AccountFlags.DebitsMustNotExceedCredits : roll < 5 ? AccountFlags.CreditsMustNotExceedDebits : AccountFlags.None;
        return flags | (random.Percent(30) ? AccountFlags.History : AccountFlags.None);
    }

    public Account[] AccountBatch(int count)
    {
        var batch = new Account[count];
        for (var i = 0; i < count; i++)
        {
            var id = (UInt128)(1 + random.Below(AccountIdsMax + 8));
            var flags = RandomAccountFlags();
            flags |= random.Percent(8) && i < count - 1 ? AccountFlags.Linked : AccountFlags.None;
            var account = new Account { Id = id, Ledger = LedgerOf(id), Code = 1, Flags = flags };
            BreakAccountSometimes(ref account);
            batch[i] = account;
        }

        return batch;
    }

    private void BreakAccountSometimes(ref Account account)
    {
        switch (random.Percent(10) ? random.Below(5) : -1)
        {
            case 0: account.Id = 0; break;
            case 1: account.Ledger = 0; break;
            case 2: account.Flags |= AccountFlags.DebitsMustNotExceedCredits | AccountFlags.CreditsMustNotExceedDebits; break;
            case 3: account.CreditsPosted = 1; break;
            case 4: account.Flags |= AccountFlags.Imported; break;
            default: break;
        }
    }

    public Transfer[] TransferBatch(int count)
    {
        var batch = new Transfer[count];
        for (var i = 0; i < count; i++)
        {
            var roll = random.Below(100);
            var transfer = roll < 45 ? NewTransfer(pending: false)
                : roll < 65 ? NewTransfer(pending: true)
                : roll < 85 && pendingIds.Count > 0 ? Resolve()
                : submitted.Count > 0 ? submitted[random.Below(submitted.Count)]
                : NewTransfer(pending: false);
            if (random.Percent(8))
            {
                transfer.Flags |= TransferFlags.Linked;
            }

            BreakTransferSometimes(ref transfer);
            batch[i] = transfer;
            submitted.Add(transfer);
        }

        return batch;
    }

    private Transfer NewTransfer(bool pending)
    {
        var debit = AccountId();
        var credit = random.Percent(3) ? debit : AccountId();
        if (LedgerOf(credit) != LedgerOf(debit) && random.Percent(85))
        {
            credit++; // Mostly keep both accounts on one ledger, so that most transfers get past that check.
        }

        var transfer = new Transfer
        {
            Id = nextTransferId++,
            DebitAccountId = debit,
            CreditAccountId = credit,
            Amount = Amount(),
            Ledger = random.Percent(3) ? 3u : LedgerOf(debit),
            Code = 1,
            UserData64 = (ulong)random.Below(3),
        };
        if (pending)
        {
            transfer.Flags |= TransferFlags.Pending;
            transfer.TimeoutSeconds = (uint)random.Below(4);
            transfer.Flags |= random.Percent(4) ? TransferFlags.ClosingDebit : TransferFlags.None;
            transfer.Flags |= random.Percent(4) ? TransferFlags.ClosingCredit : TransferFlags.None;
            pendingIds.Add(transfer.Id);
        }

        transfer.Flags |= random.Percent(8) ? TransferFlags.BalancingDebit : TransferFlags.None;
        transfer.Flags |= random.Percent(8) ? TransferFlags.BalancingCredit : TransferFlags.None;
        return transfer;
    }

    private Transfer Resolve()
    {
        var post = random.Percent(60);
        var amountRoll = random.Below(4);
        return new Transfer
        {
            Id = nextTransferId++,
            PendingId = pendingIds[random.Below(pendingIds.Count)],
            Amount = amountRoll == 0 ? UInt128.Zero : amountRoll == 1 ? UInt128.MaxValue : (UInt128)random.Below(600),
            Flags = post ? TransferFlags.PostPendingTransfer : TransferFlags.VoidPendingTransfer,
        };
    }

    private UInt128 AccountId() => (UInt128)(1 + random.Below(AccountIdsMax + 10));

    private UInt128 Amount()
    {
        var roll = random.Below(100);
        return roll < 80 ? (UInt128)random.Below(1000)
            : roll < 90 ? UInt128.Zero
            : roll < 95 ? Half + (UInt128)random.Below(10)
            : UInt128.MaxValue - (UInt128)random.Below(10);
    }

    private void BreakTransferSometimes(ref Transfer transfer)
    {
        switch (random.Percent(8) ? random.Below(7) : -1)
        {
            case 0: transfer.Id = 0; break;
            case 1: transfer.Timestamp = 1; break;
            case 2: transfer.Flags |= TransferFlags.PostPendingTransfer; break;
            case 3: transfer.Code = 0; break;
            case 4: transfer.TimeoutSeconds = 1; break;
            case 5: transfer.PendingId = transfer.Id; break;
            case 6: transfer.Flags |= (TransferFlags)(1 << 14); break;
            default: break;
        }
    }
}
