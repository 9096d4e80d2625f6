namespace RaftLedger.Cli.Verify;

/// <summary>The nemesis's fault kinds (issue 8 §2).</summary>
public enum FaultKind
{
    /// <summary>SIGKILL a random node, restart it later.</summary>
    Kill,

    /// <summary>SIGKILL the node leading a random shard, restart it later.</summary>
    KillLeader,

    /// <summary>SIGKILL every node at once (power loss), restart them all.</summary>
    KillAll,

    /// <summary>SIGSTOP a random node for longer than the election timeout, then SIGCONT.</summary>
    Pause,

    /// <summary>SIGSTOP the node leading a random shard, then SIGCONT: it must not act on its stale leadership.</summary>
    PauseLeader,

    /// <summary>Split the nodes into a minority and a majority, both ways.</summary>
    Partition,

    /// <summary>Cut a random shard's leader off from every other node.</summary>
    IsolateLeader,

    /// <summary>Two halves that cannot talk to each other, and one node that talks to both.</summary>
    Bridge,

    /// <summary>One node's outgoing (or incoming) traffic dropped, the other direction delivered.</summary>
    OneWay,

    /// <summary>SIGKILL the node leading the meta group (group 0, the cluster map), restart it later.</summary>
    KillMetaLeader,

    /// <summary>
    /// A power cut: SIGKILL every node at once and drop every WAL byte its last fdatasync did not cover, then restart
    /// them all (nodes run with the WAL's synced mark on; see Nemesis).
    /// </summary>
    PowerCut,
}

/// <summary>One planned fault: what, for how long, the quiet time after it, and the seeded choice of victims.</summary>
public readonly record struct PlannedFault(FaultKind Kind, TimeSpan Duration, TimeSpan Quiet, int Pick);

/// <summary>
/// The seeded fault schedule, pure: the same seed gives the same list. The first three faults are one kill, one
/// pause and one partition (in a seeded order), so even a short run covers each family; the rest are drawn from
/// the enabled kinds. The runner takes faults from the list while time remains.
/// </summary>
public static class FaultSchedule
{
    /// <summary>Faults planned at most; a run uses those that fit its duration.</summary>
    public const int FaultsMax = 1000;

    /// <summary>Pauses last longer than the longest randomized election timeout (2 × 10 ticks × 100 ms).</summary>
    public static readonly TimeSpan PauseMin = TimeSpan.FromSeconds(2.5);

    /// <summary>Every fault kind: the default mix (<c>--faults all</c>) and what <c>--faults</c> accepts by name.</summary>
    public static readonly IReadOnlySet<FaultKind> AllKinds = Enum.GetValues<FaultKind>().ToHashSet();

    private static readonly FaultKind[] Kills = [FaultKind.Kill, FaultKind.KillLeader, FaultKind.KillAll, FaultKind.KillMetaLeader, FaultKind.PowerCut];
    private static readonly FaultKind[] Pauses = [FaultKind.Pause, FaultKind.PauseLeader];
    private static readonly FaultKind[] Partitions = [FaultKind.Partition, FaultKind.IsolateLeader, FaultKind.Bridge, FaultKind.OneWay];

    public static string Name(FaultKind kind) => kind switch
    {
        FaultKind.Kill => "kill",
        FaultKind.KillLeader => "kill-leader",
        FaultKind.KillAll => "kill-all",
        FaultKind.Pause => "pause",
        FaultKind.PauseLeader => "pause-leader",
        FaultKind.Partition => "partition",
        FaultKind.IsolateLeader => "isolate-leader",
        FaultKind.Bridge => "bridge",
        FaultKind.KillMetaLeader => "kill-meta-leader",
        FaultKind.PowerCut => "power-cut",
        _ => "one-way",
    };

    /// <summary>Parses "kill,pause,..." or "none"/"all"; the error names the unknown kind.</summary>
    public static bool TryParse(string text, out IReadOnlySet<FaultKind> kinds, out string error)
    {
        error = "";
        kinds = AllKinds;
        if (text.Trim() is "all" or "")
        {
            return true;
        }

        var set = new HashSet<FaultKind>();
        kinds = set;
        if (text.Trim() == "none")
        {
            return true;
        }

        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var match = AllKinds.Where(k => Name(k) == item).ToList();
            if (match.Count == 0)
            {
                error = $"--faults: unknown fault '{item}'; use none, all, or a list of {string.Join(", ", AllKinds.Select(Name))}.";
                return false;
            }

            set.Add(match[0]);
        }

        return true;
    }

    /// <summary>How many leading faults of a plan are one per family (run even when the duration is short).</summary>
    public static int Mandatory(IReadOnlySet<FaultKind> enabled) =>
        new[] { Kills, Pauses, Partitions }.Count(family => family.Any(enabled.Contains));

    public static List<PlannedFault> Plan(int seed, IReadOnlySet<FaultKind> enabled)
    {
        ArgumentNullException.ThrowIfNull(enabled);
        var random = new Random(seed);
        var plan = new List<PlannedFault>();
        if (enabled.Count == 0)
        {
            return plan;
        }

        var families = new[] { Kills, Pauses, Partitions }.OrderBy(_ => random.Next()).ToList();
        foreach (var family in families)
        {
            var choices = family.Where(enabled.Contains).ToArray();
            if (choices.Length > 0)
            {
                plan.Add(Fault(choices[random.Next(choices.Length)], random));
            }
        }

        var all = AllKinds.Where(enabled.Contains).Order().ToArray();
        while (plan.Count < FaultsMax)
        {
            plan.Add(Fault(all[random.Next(all.Length)], random));
        }

        return plan;
    }

    private static PlannedFault Fault(FaultKind kind, Random random)
    {
        var seconds = kind switch
        {
            FaultKind.KillAll or FaultKind.PowerCut => 1 + (2 * random.NextDouble()),
            FaultKind.Kill or FaultKind.KillLeader or FaultKind.KillMetaLeader => 1 + (3 * random.NextDouble()),
            FaultKind.Pause or FaultKind.PauseLeader => PauseMin.TotalSeconds + (2 * random.NextDouble()),
            _ => 3 + (5 * random.NextDouble()),
        };
        var quiet = 2 + (3 * random.NextDouble());
        return new PlannedFault(kind, TimeSpan.FromSeconds(Math.Round(seconds, 1)), TimeSpan.FromSeconds(Math.Round(quiet, 1)), random.Next());
    }
}
