using RaftLedger.Simulation.MultiShard;

namespace RaftLedger.Simulation.Tests.MultiShard;

/// <summary>
/// The CI sweep of the multi-shard simulator: <see cref="ChunkCount"/> × <see cref="SeedsPerChunk"/> seeds, each a full
/// chaos run (every seed draws 3–5 nodes, 2–8 shards, 0–100 % cross-shard requests, crash traps on every protocol
/// step) with every Raft and bank check. A failure prints each failing seed's replay command.
/// </summary>
public sealed class MultiShardChaosSeedTests(ITestOutputHelper output)
{
    public const int SeedsPerChunk = 50;

    public const int ChunkCount = 10;

    public static TheoryData<int> Chunks()
    {
        var data = new TheoryData<int>();
        for (var chunk = 0; chunk < ChunkCount; chunk++)
        {
            data.Add(chunk);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Chunks))]
    public void Random_multishard_chaos_seeds_keep_money_and_every_acknowledgement(int chunk)
    {
        var failures = new List<string>();
        var first = (ulong)(chunk * SeedsPerChunk) + 1;
        for (var seed = first; seed < first + SeedsPerChunk; seed++)
        {
            var result = MultiShardChaos.Execute(seed, new MultiShardChaosOptions());
            if (!result.Passed)
            {
                failures.Add(result.ToString());
                output.WriteLine(result.ToString());
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} seeds failed:\n{string.Join("\n", failures)}");
    }

    [Fact]
    public void A_leader_that_reproposes_at_an_index_truncated_from_its_log_fails_the_old_proposal()
    {
        // Seed 763 (outside the sweep): a replica proposed at index 30, lost the lead, had that entry truncated by a
        // leader with a shorter log, led again and proposed at 30 once more; the host then held two proposals for one index.
        var result = MultiShardChaos.Execute(763, new MultiShardChaosOptions());
        Assert.True(result.Passed, result.ToString());
    }
}
