using RaftLedger.Ledger;
using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>
/// Linked chains far longer than the old 64-event bound across shards, in the multi-shard simulator: each is one
/// atomic transaction (every event created, or every event refused with TigerBeetle's statuses, never
/// needs_cross_shard_path), and the bank checks find every leg applied exactly once and money conserved, also while
/// a leader crashes after each protocol step.
/// </summary>
public sealed class CrossShardLongChainScenarioTests
{
    private static MultiShardCluster SetUpBank(ulong seed, int eventsMax) =>
        BankScenario.SetUp(seed, twoPhaseFraction: 0, workload =>
        {
            workload.LongChainShare = 0.25;
            workload.LongChainEventsMax = eventsMax;
        });

    private static List<ClientRequestFates> LongChains(MultiShardCluster cluster)
    {
        // A long chain's events are consecutive fates with the Linked flag on all but the last.
        var chains = new List<ClientRequestFates>();
        var current = new List<TransferFate>();
        foreach (var fate in cluster.Workload.Fates)
        {
            current.Add(fate);
            if ((fate.Submitted.Flags & TransferFlags.Linked) == 0)
            {
                if (current.Count > 64)
                {
                    chains.Add(new ClientRequestFates([.. current]));
                }

                current.Clear();
            }
        }

        return chains;
    }

    private static bool IsStored(MultiShardCluster cluster, UInt128 id) =>
        Enumerable.Range(0, cluster.Options.ShardCount).Any(shard => cluster.Leader(shard)?.Ledger?.TryLookupTransfer(id, out _) == true);

    private static void AssertAtomic(MultiShardCluster cluster, int createdMin)
    {
        var chains = LongChains(cluster);
        var created = 0;
        foreach (var chain in chains)
        {
            Assert.DoesNotContain(chain.Fates, f => f.Status == CreateTransferResult.NeedsCrossShardPath);
            if (chain.Fates[0].Status == CreateTransferResult.Exists)
            {
                // A retry after the chain committed: exists for the first event, linked_event_failed (no outcome) for the rest.
                Assert.All(chain.Fates, f => Assert.True(IsStored(cluster, f.Submitted.Id), $"transfer {f.Submitted.Id} of a chain answered exists is stored"));
                created++;
                continue;
            }

            var outcomes = chain.Fates.Select(f => f.Outcome).Distinct().ToList();
            Assert.True(outcomes.Count == 1, $"a chain of {chain.Fates.Length} events is all or nothing: {string.Join(", ", outcomes)}");
            created += outcomes[0] == TransferOutcome.Created ? 1 : 0;
        }

        Assert.True(created >= createdMin, $"only {created} of {chains.Count} long chains were created");
    }

    [Fact]
    public void Long_chains_across_shards_are_created_atomically()
    {
        var cluster = SetUpBank(seed: 1101, eventsMax: 600);
        cluster.RunTicks(400);
        BankScenario.HealAndCheck(cluster);
        AssertAtomic(cluster, createdMin: 3);
    }

    [Fact]
    public void A_chain_of_a_full_request_across_shards_is_created_atomically()
    {
        var cluster = SetUpBank(seed: 1110, eventsMax: LedgerLimits.BatchEventsMax);
        cluster.Workload.LongChainEventsMin = LedgerLimits.BatchEventsMax;
        cluster.Workload.LongChainShare = 0.02;
        cluster.RunTicks(200);
        BankScenario.HealAndCheck(cluster);
        AssertAtomic(cluster, createdMin: 1);
    }

    [Theory]
    [MemberData(nameof(BankScenario.ProtocolSteps), MemberType = typeof(BankScenario))]
    public void Crashing_the_leader_after_a_protocol_step_of_long_chains_loses_nothing(LedgerOperation step)
    {
        var cluster = SetUpBank(seed: 1120 + (ulong)step, eventsMax: 300);
        BankScenario.CrashLeadersAfter(cluster, step);
        BankScenario.HealAndCheck(cluster);
        AssertAtomic(cluster, createdMin: 1);
    }

    private sealed record ClientRequestFates(TransferFate[] Fates);
}
