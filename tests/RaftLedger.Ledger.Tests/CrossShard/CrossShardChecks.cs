using RaftLedger.Ledger.CrossShard;

namespace RaftLedger.Ledger.Tests.CrossShard;

/// <summary>The checks of a quiet cluster (issue 6 §3), over every shard's ledger.</summary>
internal static class CrossShardChecks
{
    public static void AssertConsistent(CrossShardCluster cluster)
    {
        var records = AuthoritativeRecords(cluster);
        AssertNothingUnfinished(cluster);
        AssertAnswersMatchRecords(cluster, records);
        AssertCopiesMatchRecords(cluster, records);
        AssertBalancesMatchRecords(cluster, records);
    }

    /// <summary>Every transfer stored on its home shard (the authoritative record), by id.</summary>
    public static Dictionary<UInt128, Transfer> AuthoritativeRecords(CrossShardCluster cluster)
    {
        var records = new Dictionary<UInt128, Transfer>();
        foreach (var node in cluster.Shards)
        {
            foreach (var t in node.Store.EnumerateTransfers())
            {
                if (cluster.ShardOf(t.Id) == node.Shard)
                {
                    records.Add(t.Id, t);
                }
            }
        }

        return records;
    }

    public static void AssertNothingUnfinished(CrossShardCluster cluster)
    {
        foreach (var node in cluster.Shards)
        {
            node.Ledger.CheckCrossShardExpiryOrder(); // the time-ordered copy of the Expiry entries below
            foreach (var record in node.Store.EnumerateSideRecords())
            {
                if (record.Table == CrossShardTables.ExpiryOrder)
                {
                    continue;
                }

                if (record.Table == CrossShardTables.Expiry)
                {
                    // A pending transfer to expire later: still pending at its home, and not due yet.
                    Assert.True(node.Ledger.TryGetCrossShardExpiry(record.Key, out var expiresAtNs));
                    Assert.True(node.Store.GetPendingStatus(record.Key) == PendingStatus.Pending, $"shard {node.Shard} keeps the expiry of {record.Key}, which is no longer pending");
                    Assert.True(expiresAtNs > cluster.NowNs, $"shard {node.Shard} did not expire {record.Key}, due at {expiresAtNs} (now {cluster.NowNs})");
                    continue;
                }

                Assert.True(record.Table == CrossShardTables.Tombstone,
                    $"shard {node.Shard} still holds a {(record.Table == CrossShardTables.Prepared ? "prepared leg" : "coordinator record")} of transaction {record.Key:X32}");
            }
        }
    }

    private static void AssertAnswersMatchRecords(CrossShardCluster cluster, Dictionary<UInt128, Transfer> records)
    {
        var attempts = new Dictionary<UInt128, List<(bool Known, CreateTransferResult Result)>>();
        foreach (var request in cluster.Requests)
        {
            Assert.True(request.Done, "every request was answered");
            for (var i = 0; i < request.Events.Length; i++)
            {
                var id = request.Events[i].Id;
                if (!attempts.TryGetValue(id, out var list))
                {
                    attempts[id] = list = [];
                }

                list.Add((request.Known[i], request.Results[i]));
            }
        }

        foreach (var (id, list) in attempts)
        {
            var exists = records.ContainsKey(id);
            var claimsCreated = list.Exists(a => a.Known && a.Result is CreateTransferResult.Created or CreateTransferResult.Exists);
            if (claimsCreated)
            {
                Assert.True(exists, $"transfer {id} was acknowledged created but its home shard has no record");
            }

            if (exists)
            {
                var explained = list.Exists(a => !a.Known || a.Result is CreateTransferResult.Created or CreateTransferResult.Exists ||
                    (list.Count > 1 && a.Result == CreateTransferResult.LinkedEventFailed));
                Assert.True(explained, $"transfer {id} exists though every answer said it failed ({string.Join(", ", list)})");
            }
        }
    }

    // No leg is applied for a transfer that was not committed, and both legs of a committed one are.
    private static void AssertCopiesMatchRecords(CrossShardCluster cluster, Dictionary<UInt128, Transfer> records)
    {
        var copies = new HashSet<(int Shard, UInt128 Id)>();
        foreach (var node in cluster.Shards)
        {
            foreach (var copy in node.Store.EnumerateTransfers())
            {
                if (cluster.ShardOf(copy.Id) == node.Shard)
                {
                    continue;
                }

                Assert.True(records.TryGetValue(copy.Id, out var record), $"shard {node.Shard} applied a leg of {copy.Id}, which was never committed");
                Assert.Equal(record.Amount, copy.Amount);
                Assert.Equal(record.DebitAccountId, copy.DebitAccountId);
                Assert.Equal(record.CreditAccountId, copy.CreditAccountId);
                Assert.True(copies.Add((node.Shard, copy.Id)));
            }
        }

        foreach (var record in records.Values)
        {
            var home = cluster.ShardOf(record.Id);
            foreach (var accountShard in new[] { cluster.ShardOf(record.DebitAccountId), cluster.ShardOf(record.CreditAccountId) })
            {
                Assert.True(accountShard == home || copies.Contains((accountShard, record.Id)),
                    $"transfer {record.Id} is committed but its leg on shard {accountShard} was never finished");
            }
        }
    }

    // Every account's balances are exactly the sum of the committed transfers that name it: each leg
    // applied once, none for aborted transfers, nothing left reserved. And per ledger, debits == credits.
    private static void AssertBalancesMatchRecords(CrossShardCluster cluster, Dictionary<UInt128, Transfer> records)
    {
        var debits = new Dictionary<UInt128, UInt128>();
        var credits = new Dictionary<UInt128, UInt128>();
        var debitsPending = new Dictionary<UInt128, UInt128>();
        var creditsPending = new Dictionary<UInt128, UInt128>();
        foreach (var t in records.Values)
        {
            if ((t.Flags & TransferFlags.VoidPendingTransfer) != 0)
            {
                continue; // A void posts nothing; its pending transfer is no longer pending (below).
            }

            if ((t.Flags & TransferFlags.Pending) != 0)
            {
                // Still reserved on both legs while its home says pending; posted through its post's record.
                if (cluster.Shards[cluster.ShardOf(t.Id)].Store.GetPendingStatus(t.Id) == PendingStatus.Pending)
                {
                    debitsPending[t.DebitAccountId] = debitsPending.GetValueOrDefault(t.DebitAccountId) + t.Amount;
                    creditsPending[t.CreditAccountId] = creditsPending.GetValueOrDefault(t.CreditAccountId) + t.Amount;
                }

                continue;
            }

            debits[t.DebitAccountId] = debits.GetValueOrDefault(t.DebitAccountId) + t.Amount;
            credits[t.CreditAccountId] = credits.GetValueOrDefault(t.CreditAccountId) + t.Amount;
        }

        var perLedger = new Dictionary<uint, (UInt128 Debits, UInt128 Credits, UInt128 DebitsPending, UInt128 CreditsPending)>();
        foreach (var node in cluster.Shards)
        {
            foreach (var account in node.Store.EnumerateAccounts())
            {
                Assert.Equal(node.Shard, cluster.ShardOf(account.Id));
                Assert.True(debits.GetValueOrDefault(account.Id) == account.DebitsPosted, $"account {account.Id} debits_posted {account.DebitsPosted}, committed transfers say {debits.GetValueOrDefault(account.Id)}");
                Assert.True(credits.GetValueOrDefault(account.Id) == account.CreditsPosted, $"account {account.Id} credits_posted {account.CreditsPosted}, committed transfers say {credits.GetValueOrDefault(account.Id)}");
                Assert.True(debitsPending.GetValueOrDefault(account.Id) == account.DebitsPending && creditsPending.GetValueOrDefault(account.Id) == account.CreditsPending,
                    $"account {account.Id} pending {account.DebitsPending}/{account.CreditsPending}, pending transfers say {debitsPending.GetValueOrDefault(account.Id)}/{creditsPending.GetValueOrDefault(account.Id)} (a reservation left, or one missing)");
                var sums = perLedger.GetValueOrDefault(account.Ledger);
                perLedger[account.Ledger] = (sums.Debits + account.DebitsPosted, sums.Credits + account.CreditsPosted,
                    sums.DebitsPending + account.DebitsPending, sums.CreditsPending + account.CreditsPending);
            }
        }

        foreach (var (ledgerId, sums) in perLedger)
        {
            Assert.True(sums.Debits == sums.Credits, $"ledger {ledgerId}: debits {sums.Debits} != credits {sums.Credits}");
            Assert.True(sums.DebitsPending == sums.CreditsPending, $"ledger {ledgerId}: pending debits != pending credits");
        }
    }
}
