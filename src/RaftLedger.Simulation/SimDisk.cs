using RaftLedger.Common;

namespace RaftLedger.Simulation;

/// <summary>What survives on a fake disk: the state rebuilt from every record that reached the platter.</summary>
public interface IDurableImage<TRecord>
{
    /// <summary>Applies one record that is now durable. Records arrive in the order they were written.</summary>
    void Apply(TRecord record);
}

/// <summary>
/// One node's fake disk. Writes are buffered until <see cref="Sync"/>; a crash keeps every synced record,
/// a random prefix of the unsynced ones (a disk may have written some of them before power was lost), and
/// with <see cref="TornWriteProbability"/> the last record of that prefix is torn and discarded on recovery,
/// as a checksummed write-ahead log would. Nothing is ever reordered: what survives is always a prefix of
/// what was written.
/// </summary>
public sealed class SimDisk<TRecord, TImage>
    where TImage : IDurableImage<TRecord>
{
    private readonly List<TRecord> _unsynced = [];

    public SimDisk(TImage image) => Image = image;

    /// <summary>The durable state: every synced record (and, after a crash, the surviving unsynced prefix).</summary>
    public TImage Image { get; }

    /// <summary>Probability that a crash tears the last surviving unsynced record.</summary>
    public double TornWriteProbability { get; set; }

    public int UnsyncedCount => _unsynced.Count;
    public long SyncCount { get; private set; }
    public long WrittenCount { get; private set; }
    public long LostOnCrashCount { get; private set; }

    /// <summary>Buffers a record; it is not durable until the next <see cref="Sync"/>.</summary>
    public void Write(TRecord record)
    {
        WrittenCount++;
        _unsynced.Add(record);
    }

    /// <summary>Makes every buffered record durable, in write order.</summary>
    public void Sync()
    {
        foreach (var record in _unsynced)
        {
            Image.Apply(record);
        }

        _unsynced.Clear();
        SyncCount++;
    }

    /// <summary>
    /// Power loss: a random prefix of the unsynced records survives (minus a torn last one), the rest is lost.
    /// Returns how many records survived.
    /// </summary>
    public int Crash(SimRandom random)
    {
        var surviving = random.Next(_unsynced.Count + 1);
        if (surviving > 0 && random.Chance(TornWriteProbability))
        {
            surviving--;
        }

        Invariant.Check(surviving >= 0 && surviving <= _unsynced.Count);
        for (var i = 0; i < surviving; i++)
        {
            Image.Apply(_unsynced[i]);
        }

        LostOnCrashCount += _unsynced.Count - surviving;
        _unsynced.Clear();
        return surviving;
    }
}
