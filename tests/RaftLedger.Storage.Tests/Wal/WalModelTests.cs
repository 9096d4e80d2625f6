using System.Globalization;
using RaftLedger.Raft;
using RaftLedger.Storage.Wal;

namespace RaftLedger.Storage.Tests.Wal;

/// <summary>
/// Random appends, conflict truncations, snapshots and restarts on several groups with tiny segments
/// (so rolling, deletion and copy-forward all happen), checked after every step against a plain model.
/// Replay: <c>WAL_MODEL_SEED=&lt;seed&gt; dotnet test tests/RaftLedger.Storage.Tests -c Release --filter Random_operations</c>.
/// </summary>
public class WalModelTests
{
    private const int GroupCount = 3;
    private const int Steps = 300;

    private sealed class GroupModel
    {
        public ulong SnapshotIndex;
        public ulong SnapshotTerm;
        public List<ulong> Terms = []; // term of entry SnapshotIndex + 1 + i
        public HardState HardState;

        public ulong Last => SnapshotIndex + (ulong)Terms.Count;

        public ulong TermAt(ulong index) => index == SnapshotIndex ? SnapshotTerm : Terms[(int)(index - SnapshotIndex - 1)];
    }

    public static TheoryData<int> Seeds => Environment.GetEnvironmentVariable("WAL_MODEL_SEED") is { } seed
        ? new TheoryData<int> { int.Parse(seed, CultureInfo.InvariantCulture) }
        : new TheoryData<int> { 1, 2, 3 };

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Random_operations_and_restarts_match_a_simple_model(int seed)
    {
        var random = new Random(seed);
        var models = new GroupModel[GroupCount + 1];
        for (var g = 1; g <= GroupCount; g++)
        {
            models[g] = new GroupModel();
        }

        using var dir = new WalDirectory();
        var wal = dir.Open();
        try
        {
            for (var step = 0; step < Steps; step++)
            {
                var g = (ulong)random.Next(1, GroupCount + 1);
                var choice = random.Next(100);
                if (choice < 5)
                {
                    wal.Dispose();
                    wal = dir.Open();
                }
                else if (choice < 15)
                {
                    await Snapshot(wal, g, models[g], random);
                }
                else
                {
                    await Append(wal, g, models[g], random);
                }

                for (ulong check = 1; check <= GroupCount; check++)
                {
                    AssertMatches(wal.GetGroup(check), check, models[check], $"seed {seed} step {step}");
                }
            }
        }
        finally
        {
            wal.Dispose();
        }

        // The run must have exercised compaction (segments retired, deleted or kept for reuse), or it proves little about it.
        Assert.Contains(dir.LogLines, l => l.Contains("no group needs", StringComparison.Ordinal));
    }

    private static async Task Append(WriteAheadLog wal, ulong g, GroupModel model, Random random)
    {
        // Start anywhere after the commit point (a conflicting suffix is replaced) up to the end.
        var lowest = Math.Max(model.HardState.Commit, model.SnapshotIndex) + 1;
        var from = lowest + (ulong)random.Next(0, (int)(model.Last + 2 - lowest));
        var term = Math.Max(model.HardState.Term, 1) + (random.Next(4) == 0 ? 1UL : 0UL);
        var count = random.Next(1, 25);
        var entries = WalTestData.Entries(g, from, from + (ulong)count - 1, term);
        var last = from + (ulong)count - 1;
        var commit = model.HardState.Commit + (ulong)random.Next(0, (int)(last - model.HardState.Commit + 1));
        var state = new HardState(term, 0, commit);
        await wal.Write(new WalGroupWrite(g, entries, state, null));

        model.Terms.RemoveRange((int)(from - model.SnapshotIndex - 1), (int)(model.Last - from + 1));
        model.Terms.AddRange(Enumerable.Repeat(term, count));
        model.HardState = state;
    }

    private static async Task Snapshot(WriteAheadLog wal, ulong g, GroupModel model, Random random)
    {
        if (model.HardState.Commit <= model.SnapshotIndex)
        {
            return;
        }

        var index = model.SnapshotIndex + 1 + (ulong)random.Next(0, (int)(model.HardState.Commit - model.SnapshotIndex));
        var term = model.TermAt(index);
        wal.SetCompactableIndex(g, model.HardState.Commit);
        await wal.Write(new WalGroupWrite(g, [], null, new SnapshotMetadata(index, term, ConfState.OfVoters(1, 2, 3))));
        model.Terms.RemoveRange(0, (int)(index - model.SnapshotIndex));
        model.SnapshotIndex = index;
        model.SnapshotTerm = term;
    }

    private static void AssertMatches(WalGroupStorage storage, ulong g, GroupModel model, string where)
    {
        Assert.True(model.SnapshotIndex + 1 == storage.FirstIndex, $"{where}: group {g} first {storage.FirstIndex}, model {model.SnapshotIndex + 1}");
        Assert.True(model.Last == storage.LastIndex, $"{where}: group {g} last {storage.LastIndex}, model {model.Last}");
        Assert.True(model.HardState == storage.HardState, $"{where}: group {g} hard state {storage.HardState}, model {model.HardState}");
        Assert.True(storage.TryGetTerm(model.SnapshotIndex, out var snapshotTerm) && snapshotTerm == model.SnapshotTerm, $"{where}: snapshot term");
        if (model.Terms.Count == 0)
        {
            return;
        }

        var entries = new List<Entry>();
        storage.GetEntries(storage.FirstIndex, storage.LastIndex + 1, long.MaxValue, entries);
        for (var i = 0; i < entries.Count; i++)
        {
            var index = model.SnapshotIndex + 1 + (ulong)i;
            Assert.True(entries[i].Index == index && entries[i].Term == model.Terms[i], $"{where}: group {g} entry {index} term {entries[i].Term}, model {model.Terms[i]}");
            Assert.True(entries[i].Data.Span.SequenceEqual(WalTestData.Payload(g, index, entries[i].Term)), $"{where}: group {g} entry {index} payload");
        }
    }
}
