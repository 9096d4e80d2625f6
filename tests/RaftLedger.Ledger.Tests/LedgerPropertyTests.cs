using System.Numerics;
using CsCheck;
using RaftLedger.Ledger;

namespace RaftLedger.Ledger.Tests;

/// <summary>
/// Random batches of valid and invalid events, checked after every batch: money is conserved per
/// ledger, guarded accounts stay within their limits, replaying what was created gives `exists`
/// and changes nothing, two instances fed the same batches agree, and snapshot → restore gives the
/// same fingerprint. A failure names its seed and the command that replays it.
/// </summary>
public sealed class LedgerPropertyTests
{
    private const string SeedVariable = "LEDGER_PROPERTY_SEED";
    private const int BatchesPerSeed = 24;
    private const int SeedsPerRun = 60;

    [Fact]
    public void Random_batches_keep_every_ledger_invariant()
    {
        var replay = Environment.GetEnvironmentVariable(SeedVariable);
        if (replay is not null)
        {
            RunSeed(ulong.Parse(replay, System.Globalization.CultureInfo.InvariantCulture));
            return;
        }

        Gen.ULong.Sample(RunSeed, iter: SeedsPerRun, threads: 1);
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(0xDEADBEEFUL)]
    public void Fixed_seeds_keep_every_ledger_invariant(ulong seed) => RunSeed(seed);

    private static void RunSeed(ulong seed)
    {
        try
        {
            RunWorkload(seed);
        }
        catch (Exception exception)
        {
            throw new Xunit.Sdk.XunitException(
                $"Ledger property failed for seed {seed}: {exception.Message}\n" +
                $"Replay: {SeedVariable}={seed} dotnet test tests/RaftLedger.Ledger.Tests -c Release --filter Random_batches_keep_every_ledger_invariant\n{exception}");
        }
    }

    private static void RunWorkload(ulong seed)
    {
        var workload = new RandomWorkload(seed);
        var main = new LedgerFixture();
        var twin = new LedgerFixture();
        for (var batch = 0; batch < BatchesPerSeed; batch++)
        {
            main.AdvanceSeconds((ulong)workload.Random.Below(3));
            twin.ClockNanoseconds = main.ClockNanoseconds;
            if (batch == 0)
            {
                var accounts = workload.InitialAccounts();
                Check(main.CreateAccounts(accounts).AsSpan().SequenceEqual(twin.CreateAccounts(accounts)), "both instances give the same account results");
            }
            else if (batch % 6 == 0)
            {
                var accounts = workload.AccountBatch(1 + workload.Random.Below(40));
                Check(main.CreateAccounts(accounts).AsSpan().SequenceEqual(twin.CreateAccounts(accounts)), "both instances give the same account results");
            }
            else
            {
                var transfers = workload.TransferBatch(1 + workload.Random.Below(300));
                var results = main.CreateTransfers(transfers);
                Check(results.AsSpan().SequenceEqual(twin.CreateTransfers(transfers)), "both instances give the same transfer results");
                CheckReplayChangesNothing(main, twin, transfers, results);
            }

            Check(main.Ledger.Fingerprint() == twin.Ledger.Fingerprint(), "both instances have the same fingerprint");
            CheckConservationAndLimits(main);
            if (batch % 8 == 7)
            {
                CheckSnapshotRoundTrip(main);
            }
        }
    }

    /// <summary>
    /// Replays the events that were created (whole successful chains and single events) on the main
    /// instance while the twin gets as many events that fail without touching state (id 0), at the
    /// same timestamp so both run the same expiry sweep. Both must end with the same fingerprint.
    /// </summary>
    private static void CheckReplayChangesNothing(LedgerFixture main, LedgerFixture twin, Transfer[] transfers, CreateTransferResult[] results)
    {
        var created = new List<Transfer>();
        for (var i = 0; i < transfers.Length; i++)
        {
            if (results[i] == CreateTransferResult.Created)
            {
                created.Add(transfers[i]);
            }
        }

        var replay = main.CreateTransfers([.. created]);
        var inert = new Transfer[created.Count];
        twin.ClockNanoseconds = main.ClockNanoseconds;
        var inertResults = twin.CreateTransfers(inert);
        Check(inertResults.All(r => r == CreateTransferResult.IdMustNotBeZero), "the twin's inert events fail validation");
        var chainBroken = false;
        for (var i = 0; i < created.Count; i++)
        {
            var expected = chainBroken ? CreateTransferResult.LinkedEventFailed : CreateTransferResult.Exists;
            Check(replay[i] == expected, $"replayed event {i} (id {created[i].Id}) gives {expected}, not {replay[i]}");
            var linked = (created[i].Flags & TransferFlags.Linked) != 0;
            chainBroken = linked;
        }

        Check(main.Ledger.Fingerprint() == twin.Ledger.Fingerprint(), "replaying created events changes nothing");
    }

    private static void CheckConservationAndLimits(LedgerFixture f)
    {
        var sums = new Dictionary<uint, (BigInteger DebitsPosted, BigInteger CreditsPosted, BigInteger DebitsPending, BigInteger CreditsPending)>();
        foreach (var a in f.Store.EnumerateAccounts())
        {
            var s = sums.GetValueOrDefault(a.Ledger);
            sums[a.Ledger] = (s.DebitsPosted + (BigInteger)a.DebitsPosted, s.CreditsPosted + (BigInteger)a.CreditsPosted,
                s.DebitsPending + (BigInteger)a.DebitsPending, s.CreditsPending + (BigInteger)a.CreditsPending);
            if ((a.Flags & AccountFlags.DebitsMustNotExceedCredits) != 0)
            {
                Check((BigInteger)a.DebitsPending + a.DebitsPosted <= a.CreditsPosted, $"account {a.Id} debits stay within its credits");
            }

            if ((a.Flags & AccountFlags.CreditsMustNotExceedDebits) != 0)
            {
                Check((BigInteger)a.CreditsPending + a.CreditsPosted <= a.DebitsPosted, $"account {a.Id} credits stay within its debits");
            }
        }

        foreach (var (ledger, s) in sums)
        {
            Check(s.DebitsPosted == s.CreditsPosted, $"ledger {ledger}: posted debits {s.DebitsPosted} == posted credits {s.CreditsPosted}");
            Check(s.DebitsPending == s.CreditsPending, $"ledger {ledger}: pending debits {s.DebitsPending} == pending credits {s.CreditsPending}");
        }
    }

    private static void CheckSnapshotRoundTrip(LedgerFixture f)
    {
        using var stream = new MemoryStream();
        f.Ledger.WriteSnapshot(stream);
        stream.Position = 0;
        var restored = new LedgerFixture();
        restored.Ledger.RestoreSnapshot(stream);
        Check(restored.Ledger.Fingerprint() == f.Ledger.Fingerprint(), "snapshot -> restore keeps the fingerprint");
        Check(restored.Store.TransferCount == f.Store.TransferCount, "snapshot -> restore keeps every transfer");
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"Property broken: {what}.");
        }
    }
}
