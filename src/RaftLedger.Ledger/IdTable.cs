using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using RaftLedger.Common;

namespace RaftLedger.Ledger;

/// <summary>
/// A map from u128 id to int for the hot path: open addressing with linear probing over one array
/// of structs, cleared in O(1) by bumping a generation, grown by doubling at half load. Faster than
/// <see cref="Dictionary{TKey, TValue}"/> for ids (no prime modulo, no separate bucket array) and
/// allocation-free once grown. Ids 0 and u128 max are fine as keys (emptiness is the generation).
/// </summary>
internal sealed class IdTable
{
    private Entry[] entries;
    private int mask;
    private uint generation = 1;

    // Invariant: 2 * Count <= entries.Length, so probing always ends at an empty entry.
    public IdTable(int capacity)
    {
        var size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, capacity * 2));
        entries = new Entry[size];
        mask = size - 1;
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(entries.AsSpan());
        for (var offset = 0; offset < bytes.Length; offset += 4096)
        {
            bytes[offset] = 0; // First-touch page faults now, not while applying batches.
        }
    }

    public int Count { get; private set; }

    /// <summary>Forgets every entry in O(1).</summary>
    public void Clear()
    {
        Count = 0;
        generation++;
        if (generation == 0)
        {
            // After 2^32 clears: reset stamps once so that old entries cannot look current.
            Array.Clear(entries);
            generation = 1;
        }
    }

    public bool TryGetValue(UInt128 id, out int value)
    {
        var index = Hash(id) & mask;
        while (true)
        {
            ref readonly var entry = ref entries[index];
            if (entry.Generation != generation)
            {
                value = 0;
                return false;
            }

            if (entry.Id == id)
            {
                value = entry.Value;
                return true;
            }

            index = (index + 1) & mask;
        }
    }

    /// <summary>The value of <paramref name="id"/>, added as 0 (with <paramref name="added"/> true) when absent.</summary>
    public ref int GetOrAdd(UInt128 id, out bool added)
    {
        if (2 * (Count + 1) > entries.Length)
        {
            Grow();
        }

        var index = Hash(id) & mask;
        while (true)
        {
            ref var entry = ref entries[index];
            if (entry.Generation != generation)
            {
                entry.Generation = generation;
                entry.Id = id;
                entry.Value = 0;
                Count++;
                added = true;
                return ref entry.Value;
            }

            if (entry.Id == id)
            {
                added = false;
                return ref entry.Value;
            }

            index = (index + 1) & mask;
        }
    }

    /// <summary>
    /// Asks the CPU to start loading the entry where <paramref name="id"/> would be, without waiting:
    /// the ledger calls this a few events ahead so that a large table's cache misses overlap.
    /// </summary>
    public unsafe void Prefetch(UInt128 id)
    {
        if (Sse.IsSupported)
        {
            // A prefetch never faults, so a stale address (the GC moved the array) is harmless.
            Sse.Prefetch0(Unsafe.AsPointer(ref entries[Hash(id) & mask]));
        }
    }

    /// <summary>Removes <paramref name="id"/> (used to roll back a linked chain), keeping probe chains intact.</summary>
    public void Remove(UInt128 id)
    {
        var index = Hash(id) & mask;
        while (entries[index].Generation == generation && entries[index].Id != id)
        {
            index = (index + 1) & mask;
        }

        Invariant.Check(entries[index].Generation == generation, "only present ids are removed");
        entries[index].Generation = 0;
        Count--;

        // Backward-shift deletion: move later entries of the same cluster into the hole when allowed.
        var hole = index;
        for (var next = (hole + 1) & mask; entries[next].Generation == generation; next = (next + 1) & mask)
        {
            var home = Hash(entries[next].Id) & mask;
            var distanceToHole = (hole - home) & mask;
            var distanceToNext = (next - home) & mask;
            if (distanceToHole < distanceToNext)
            {
                entries[hole] = entries[next];
                entries[next].Generation = 0;
                hole = next;
            }
        }
    }

    private void Grow()
    {
        var old = entries;
        var oldGeneration = generation;
        entries = new Entry[old.Length * 2];
        mask = entries.Length - 1;
        generation = 1;
        Count = 0;
        foreach (ref readonly var entry in old.AsSpan())
        {
            if (entry.Generation == oldGeneration)
            {
                GetOrAdd(entry.Id, out _) = entry.Value;
            }
        }
    }

    // Ids are often sequential: mix both halves so that neighbours spread over the table.
    private static int Hash(UInt128 id)
    {
        var mixed = ((ulong)id ^ ((ulong)(id >> 64) * 0x9E3779B97F4A7C15)) * 0xBF58476D1CE4E5B9;
        return (int)(mixed >> 32);
    }

    private struct Entry
    {
        public UInt128 Id;
        public int Value;
        public uint Generation;
    }
}
