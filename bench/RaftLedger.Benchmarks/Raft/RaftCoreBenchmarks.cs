using BenchmarkDotNet.Attributes;
using RaftLedger.Raft;

namespace RaftLedger.Benchmarks.Raft;

/// <summary>
/// The Raft core alone: a 3-node group over <see cref="MemoryLogStorage"/>, messages passed in memory (no codec,
/// no IO). One operation = one entry; each invocation proposes a batch on the leader and runs the host loops
/// until the leader has applied it. Reported time and allocations are per committed entry.
/// </summary>
[MemoryDiagnoser]
public class RaftCoreBenchmarks
{
    private const int PayloadBytes = 128;
    private const ulong CompactEveryEntries = 50_000;

    private readonly List<Message> _inFlight = [];
    private readonly List<Message> _delivering = [];
    private RaftNode[] _nodes = [];
    private MemoryLogStorage[] _storages = [];
    private ReadOnlyMemory<byte>[] _batch = [];

    /// <summary>Entries proposed together (one Propose call); the benchmarks below fix it so figures are per entry.</summary>
    public int BatchSize { get; set; } = 1;

    private void Setup()
    {
        _nodes = new RaftNode[3];
        _storages = new MemoryLogStorage[3];
        for (var i = 0; i < 3; i++)
        {
            _storages[i] = new MemoryLogStorage();
            var config = RaftConfig.Recommended((ulong)i + 1);
            _nodes[i] = new RaftNode(config, _storages[i], new DeterministicRandom((ulong)i + 1));
            _nodes[i].Bootstrap([1, 2, 3]);
        }

        RunUntilQuiet();
        _nodes[0].Campaign();
        RunUntilQuiet();
        if (_nodes[0].Role != RaftRole.Leader)
        {
            throw new InvalidOperationException("benchmark setup: node 1 did not become leader");
        }

        var payload = new byte[PayloadBytes];
        _batch = new ReadOnlyMemory<byte>[BatchSize];
        for (var i = 0; i < BatchSize; i++)
        {
            _batch[i] = payload;
        }
    }

    [GlobalSetup(Target = nameof(Batch1))]
    public void Setup1()
    {
        BatchSize = 1;
        Setup();
    }

    [GlobalSetup(Target = nameof(Batch64))]
    public void Setup64()
    {
        BatchSize = 64;
        Setup();
    }

    [GlobalSetup(Target = nameof(Batch512))]
    public void Setup512()
    {
        BatchSize = 512;
        Setup();
    }

    /// <summary>One entry per proposal: the cost of a full replication round per entry.</summary>
    [Benchmark(OperationsPerInvoke = 1, Baseline = true)]
    public ulong Batch1() => ProposeBatch();

    /// <summary>64 entries per proposal.</summary>
    [Benchmark(OperationsPerInvoke = 64)]
    public ulong Batch64() => ProposeBatch();

    /// <summary>512 entries per proposal.</summary>
    [Benchmark(OperationsPerInvoke = 512)]
    public ulong Batch512() => ProposeBatch();

    private ulong ProposeBatch()
    {
        var leader = _nodes[0];
        var result = leader.Propose(_batch);
        if (!result.IsAccepted)
        {
            throw new InvalidOperationException(result.Describe());
        }

        while (leader.AppliedIndex < result.LastIndex)
        {
            RunUntilQuiet();
        }

        if (result.LastIndex % CompactEveryEntries < (ulong)BatchSize)
        {
            CompactAll();
        }

        return leader.AppliedIndex;
    }

    private void RunUntilQuiet()
    {
        do
        {
            for (var i = 0; i < _nodes.Length; i++)
            {
                Drain(i);
            }

            _delivering.Clear();
            _delivering.AddRange(_inFlight);
            _inFlight.Clear();
            for (var i = 0; i < _delivering.Count; i++)
            {
                var message = _delivering[i];
                _nodes[message.To - 1].Step(message);
            }
        }
        while (_delivering.Count > 0);
    }

    private void Drain(int i)
    {
        var node = _nodes[i];
        var storage = _storages[i];
        while (node.HasReady)
        {
            var ready = node.GetReady();
            storage.Append(ready.Entries);
            if (ready.HardState is { } hardState)
            {
                storage.SetHardState(hardState);
            }

            for (var m = 0; m < ready.Messages.Count; m++)
            {
                _inFlight.Add(ready.Messages[m]);
            }

            node.Advance(ready);
        }
    }

    private void CompactAll()
    {
        for (var i = 0; i < _nodes.Length; i++)
        {
            var applied = _nodes[i].AppliedIndex;
            _storages[i].CreateSnapshot(applied, _nodes[i].ConfState);
            _storages[i].Compact(applied);
        }
    }
}
