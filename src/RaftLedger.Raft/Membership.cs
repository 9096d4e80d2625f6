using RaftLedger.Common;

namespace RaftLedger.Raft;

/// <summary>
/// An immutable group configuration: incoming voters, outgoing voters (non-empty only while joint),
/// learners, and learners-to-be when the joint configuration is left. Sets are kept sorted.
/// </summary>
internal sealed class Membership
{
    // Invariant: a node is in at most one of Incoming and Learners; LearnersNext is disjoint from Learners
    // and only non-empty while joint, and every LearnersNext node is an outgoing voter.
    public Membership(ulong[] incoming, ulong[] outgoing, ulong[] learners, ulong[] learnersNext, bool autoLeave)
    {
        Incoming = incoming;
        Outgoing = outgoing;
        Learners = learners;
        LearnersNext = learnersNext;
        AutoLeave = autoLeave;
        Invariant.Check(outgoing.Length > 0 || (learnersNext.Length == 0 && !autoLeave));
        Invariant.Check(!Array.Exists(learners, l => Array.IndexOf(incoming, l) >= 0), "voter and learner at once");
    }

    public static Membership Empty { get; } = new([], [], [], [], false);

    public ulong[] Incoming { get; }

    public ulong[] Outgoing { get; }

    public ulong[] Learners { get; }

    public ulong[] LearnersNext { get; }

    public bool AutoLeave { get; }

    public bool IsJoint => Outgoing.Length > 0;

    public static Membership From(ConfState state) => new(
        Sorted(state.Voters), Sorted(state.VotersOutgoing), Sorted(state.Learners), Sorted(state.LearnersNext), state.AutoLeave);

    public ConfState ToConfState() => new(Incoming, Learners, Outgoing, LearnersNext, AutoLeave);

    public bool IsVoter(ulong id) => Array.BinarySearch(Incoming, id) >= 0 || Array.BinarySearch(Outgoing, id) >= 0;

    public bool IsLearner(ulong id) => Array.BinarySearch(Learners, id) >= 0 || Array.BinarySearch(LearnersNext, id) >= 0;

    public bool Contains(ulong id) => IsVoter(id) || IsLearner(id);

    /// <summary>Every node of the configuration, each once, ascending.</summary>
    public ulong[] AllNodes()
    {
        var all = new SortedSet<ulong>(Incoming);
        all.UnionWith(Outgoing);
        all.UnionWith(Learners);
        all.UnionWith(LearnersNext);
        return [.. all];
    }

    /// <summary>
    /// The configuration after <paramref name="change"/>, or an error saying why it cannot apply. Follows the
    /// joint-consensus rules of the Raft thesis §4.3: at most one voter changes without a joint configuration.
    /// </summary>
    public bool TryApply(ConfChange change, out Membership next, out string error)
    {
        next = this;
        if (change.IsLeaveJoint)
        {
            return TryLeaveJoint(out next, out error);
        }

        if (IsJoint)
        {
            error = "the group is in a joint configuration; leave it first (an empty conf change)";
            return false;
        }

        var incoming = new SortedSet<ulong>(Incoming);
        var learners = new SortedSet<ulong>(Learners);
        var learnersNext = new SortedSet<ulong>();
        var joint = change.UsesJoint(CountVoterChanges(change));
        var outgoing = joint ? Incoming : [];
        foreach (var single in change.Changes)
        {
            ApplyOne(single, incoming, learners, learnersNext, outgoing);
        }

        if (incoming.Count == 0)
        {
            error = "the change would leave the group without voters; add a voter first";
            return false;
        }

        next = new Membership([.. incoming], outgoing, [.. learners], [.. learnersNext], joint && change.AutoLeave);
        error = "";
        return true;
    }

    private bool TryLeaveJoint(out Membership next, out string error)
    {
        next = this;
        if (!IsJoint)
        {
            error = "the group is not in a joint configuration, so there is nothing to leave";
            return false;
        }

        var learners = new SortedSet<ulong>(Learners);
        learners.UnionWith(LearnersNext);
        next = new Membership(Incoming, [], [.. learners], [], false);
        error = "";
        return true;
    }

    private int CountVoterChanges(ConfChange change)
    {
        var count = 0;
        foreach (var single in change.Changes)
        {
            var isVoter = Array.BinarySearch(Incoming, single.NodeId) >= 0;
            if ((single.Kind == ConfChangeKind.AddVoter) != isVoter)
            {
                count++;
            }
        }

        return count;
    }

    private static void ApplyOne(
        ConfChangeSingle single, SortedSet<ulong> incoming, SortedSet<ulong> learners, SortedSet<ulong> learnersNext, ulong[] outgoing)
    {
        var id = single.NodeId;
        Invariant.Check(id != 0);
        switch (single.Kind)
        {
            case ConfChangeKind.AddVoter:
                learners.Remove(id);
                learnersNext.Remove(id);
                incoming.Add(id);
                break;
            case ConfChangeKind.AddLearner:
                incoming.Remove(id);
                // A voter of the outgoing configuration must keep voting there until the joint configuration
                // is left; it becomes a learner only then.
                if (Array.BinarySearch(outgoing, id) >= 0)
                {
                    learnersNext.Add(id);
                }
                else
                {
                    learners.Add(id);
                }

                break;
            case ConfChangeKind.RemoveNode:
                incoming.Remove(id);
                learners.Remove(id);
                learnersNext.Remove(id);
                break;
            default:
                Invariant.Check(false, $"unknown conf change kind {single.Kind}");
                break;
        }
    }

    private static ulong[] Sorted(IReadOnlyList<ulong> ids)
    {
        var array = ids.ToArray();
        Array.Sort(array);
        return array;
    }
}
