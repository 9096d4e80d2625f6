using RaftLedger.Ledger;

namespace RaftLedger.Storage.Tests.Rocks;

/// <summary>One batch of the replicated log: either accounts or transfers, with its cluster timestamp.</summary>
internal sealed record LedgerBatch(ulong AppliedIndex, ulong Timestamp, Account[]? Accounts, Transfer[]? Transfers)
{
    public int Count => Accounts?.Length ?? Transfers!.Length;

    /// <summary>Applies the batch to a ledger and returns the result bytes.</summary>
    public byte[] ApplyTo(LedgerStateMachine ledger)
    {
        if (Accounts is not null)
        {
            var results = new CreateAccountResult[Accounts.Length];
            ledger.CreateAccounts(Accounts, Timestamp, results, AppliedIndex);
            return results.Select(r => (byte)r).ToArray();
        }

        var transferResults = new CreateTransferResult[Transfers!.Length];
        ledger.CreateTransfers(Transfers, Timestamp, transferResults, AppliedIndex);
        return transferResults.Select(r => (byte)r).ToArray();
    }
}

/// <summary>
/// Random but reproducible ledger traffic: valid and invalid accounts and transfers of every kind (plain,
/// pending with timeouts, post, void, balancing, closing, linked chains, duplicates, overflows), with batch
/// timestamps that let pending transfers expire between batches.
/// </summary>
internal sealed class LedgerScenario(int seed)
{
    private const ulong Second = 1_000_000_000;
    private readonly Random random = new(seed);
    private readonly List<UInt128> pendingIds = [];
    private readonly int accountCount = 4 + new Random(seed).Next(30);
    private ulong lastTimestamp = 1_000 * Second;
    private ulong appliedIndex;

    public int Seed => seed;

    /// <summary>The first batch: the accounts (some invalid) every later transfer picks from.</summary>
    public LedgerBatch Accounts()
    {
        var accounts = new Account[accountCount + 3];
        for (var i = 0; i < accounts.Length; i++)
        {
            accounts[i] = RandomAccount((UInt128)(i + 1));
        }

        return Next(accounts, null);
    }

    public LedgerBatch NextBatch()
    {
        if (random.Next(8) == 0)
        {
            var accounts = new Account[1 + random.Next(6)];
            for (var i = 0; i < accounts.Length; i++)
            {
                accounts[i] = RandomAccount((UInt128)random.Next(1, accountCount + 10));
            }

            return Next(accounts, null);
        }

        var transfers = new Transfer[1 + random.Next(random.Next(4) == 0 ? 300 : 40)];
        for (var i = 0; i < transfers.Length; i++)
        {
            transfers[i] = RandomTransfer();
        }

        return Next(null, transfers);
    }

    private LedgerBatch Next(Account[]? accounts, Transfer[]? transfers)
    {
        var count = (ulong)(accounts?.Length ?? transfers!.Length);

        // Jumps of up to a few seconds let pending timeouts (1..4 s) expire between batches.
        lastTimestamp += count + (random.Next(3) == 0 ? (ulong)random.Next(0, 3) * Second + (ulong)random.Next(1000) : 0);
        appliedIndex++;
        return new LedgerBatch(appliedIndex, lastTimestamp, accounts, transfers);
    }

    private Account RandomAccount(UInt128 id)
    {
        var flags = AccountFlags.None;
        var roll = random.Next(10);
        if (roll == 0)
        {
            flags |= AccountFlags.DebitsMustNotExceedCredits;
        }
        else if (roll == 1)
        {
            flags |= AccountFlags.CreditsMustNotExceedDebits;
        }

        if (random.Next(3) == 0)
        {
            flags |= AccountFlags.History;
        }

        if (random.Next(40) == 0)
        {
            flags |= AccountFlags.Linked;
        }

        return new Account
        {
            Id = random.Next(60) == 0 ? 0 : id,
            Ledger = (uint)(random.Next(12) == 0 ? 2 : 1),
            Code = (ushort)(random.Next(50) == 0 ? 0 : 1 + random.Next(3)),
            Flags = flags,
            UserData64 = (ulong)random.Next(3),
        };
    }

    private Transfer RandomTransfer()
    {
        var transfer = new Transfer
        {
            Id = (UInt128)random.Next(1, 5000),
            DebitAccountId = (UInt128)random.Next(1, accountCount + 3),
            CreditAccountId = (UInt128)random.Next(1, accountCount + 3),
            Amount = RandomAmount(),
            Ledger = (uint)(random.Next(15) == 0 ? 2 : 1),
            Code = (ushort)(random.Next(60) == 0 ? 0 : 1),
            UserData32 = (uint)random.Next(2),
        };
        var kind = random.Next(100);
        if (kind < 18)
        {
            transfer.Flags = TransferFlags.Pending;
            transfer.TimeoutSeconds = (uint)(random.Next(2) == 0 ? 0 : random.Next(1, 5));
            pendingIds.Add(transfer.Id);
        }
        else if (kind < 30 && pendingIds.Count > 0)
        {
            transfer.Flags = random.Next(2) == 0 ? TransferFlags.PostPendingTransfer : TransferFlags.VoidPendingTransfer;
            transfer.PendingId = pendingIds[random.Next(pendingIds.Count)];
            transfer.Amount = random.Next(3) == 0 ? 0 : transfer.Amount;
            if (random.Next(2) == 0)
            {
                transfer.DebitAccountId = 0;
                transfer.CreditAccountId = 0;
                transfer.Ledger = 0;
                transfer.Code = 0;
            }
        }
        else if (kind < 36)
        {
            transfer.Flags = random.Next(2) == 0 ? TransferFlags.BalancingDebit : TransferFlags.BalancingCredit;
        }
        else if (kind < 38 && random.Next(8) == 0)
        {
            // Rare: a closing transfer closes an account for everything after it, until voided.
            transfer.Flags = TransferFlags.Pending | (random.Next(2) == 0 ? TransferFlags.ClosingDebit : TransferFlags.ClosingCredit);
            pendingIds.Add(transfer.Id);
        }
        else if (kind < 41)
        {
            transfer.Flags = (TransferFlags)random.Next(0, 0x400);
        }

        if (random.Next(10) == 0)
        {
            transfer.Flags |= TransferFlags.Linked;
        }

        return transfer;
    }

    private UInt128 RandomAmount() => random.Next(40) switch
    {
        0 => UInt128.MaxValue,
        1 => UInt128.MaxValue / 2 + (UInt128)random.Next(100),
        2 => 0,
        _ => (UInt128)random.Next(1, 1000),
    };
}
