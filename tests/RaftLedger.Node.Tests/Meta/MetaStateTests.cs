using RaftLedger.Common;
using RaftLedger.Node.Host;
using RaftLedger.Node.Meta;
using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport;

namespace RaftLedger.Node.Tests.Meta;

/// <summary>The meta group's state machine and encodings: pure, no cluster.</summary>
public sealed class MetaStateTests
{
    private static ClusterMap Map(int nodes = 3, int shards = 4, int replication = 3) =>
        ClusterMap.Bootstrap(
            Enumerable.Range(1, nodes).Select(i => new ClusterNode((ulong)i, $"127.0.0.1:{7100 + i}", $"127.0.0.1:{8100 + i}", "")).ToList(),
            shards, replication);

    private static byte[] Bootstrap(ClusterMap map) => MetaCodec.Encode(MetaCommand.Bootstrap(map));

    private static byte[] SetAddresses(ulong id, string peer, string api = "", string grpc = "") =>
        MetaCodec.Encode(MetaCommand.SetNodeAddresses(new ClusterNode(id, peer, api, grpc)));

    [Fact]
    public void Bootstrap_sets_the_map_once_and_a_repeated_bootstrap_of_the_same_cluster_changes_nothing()
    {
        var state = new MetaState(null, 0, 0);
        Assert.Equal(MetaApplyStatus.Unchanged, state.Apply(1, 1, default).Status); // The leader's no-op.
        Assert.Null(state.Map);
        Assert.Equal(MetaApplyStatus.Applied, state.Apply(2, 1, Bootstrap(Map())).Status);
        Assert.True(state.Map!.SameAs(Map()));
        Assert.Equal(MetaApplyStatus.Unchanged, state.Apply(3, 2, Bootstrap(Map())).Status);
        Assert.Equal((3UL, 2UL), (state.AppliedIndex, state.AppliedTerm));
    }

    [Fact]
    public void Bootstrap_with_another_placement_is_ignored_as_a_conflict()
    {
        var state = new MetaState(null, 0, 0);
        state.Apply(1, 1, Bootstrap(Map()));
        var result = state.Apply(2, 1, Bootstrap(Map(shards: 8)));
        Assert.Equal(MetaApplyStatus.BootstrapConflict, result.Status);
        Assert.Contains("--shards", result.Detail);
        Assert.Equal(4, state.Map!.ShardCount);
        Assert.Equal(2UL, state.AppliedIndex);
    }

    [Fact]
    public void Set_node_addresses_changes_only_that_node_and_repeating_it_changes_nothing()
    {
        var state = new MetaState(Map(), 5, 2);
        Assert.Equal(MetaApplyStatus.Applied, state.Apply(6, 2, SetAddresses(2, "10.0.0.2:7000", "10.0.0.2:8000", "10.0.0.2:9000")).Status);
        Assert.Equal(new ClusterNode(2, "10.0.0.2:7000", "10.0.0.2:8000", "10.0.0.2:9000"), state.Map!.Node(2));
        Assert.Equal(Map().Node(1), state.Map.Node(1));
        Assert.Equal(Map().Node(3), state.Map.Node(3));
        Assert.Equal(MetaApplyStatus.Unchanged, state.Apply(7, 2, SetAddresses(2, "10.0.0.2:7000", "10.0.0.2:8000", "10.0.0.2:9000")).Status);
        Assert.True(MetaState.SamePlacement(Map(), state.Map));
    }

    [Fact]
    public void Set_node_addresses_is_refused_before_bootstrap_and_for_a_node_outside_the_map()
    {
        var empty = new MetaState(null, 0, 0);
        Assert.Equal(MetaApplyStatus.Refused, empty.Apply(1, 1, SetAddresses(1, "a:1")).Status);
        Assert.Null(empty.Map);
        var state = new MetaState(Map(), 1, 1);
        Assert.Equal(MetaApplyStatus.Refused, state.Apply(2, 1, SetAddresses(9, "a:1")).Status);
        Assert.True(state.Map!.SameAs(Map()));
    }

    [Fact]
    public void Entries_apply_in_order_each_once()
    {
        var state = new MetaState(Map(), 4, 2);
        Assert.Throws<InvariantViolationException>(() => state.Apply(4, 2, default));
        Assert.Throws<InvariantViolationException>(() => state.Apply(6, 2, default));
        Assert.Throws<InvariantViolationException>(() => state.Apply(5, 1, default)); // A term below the last one.
        Assert.Equal(4UL, state.AppliedIndex);
    }

    [Fact]
    public void Commands_and_states_round_trip_through_their_encodings()
    {
        var map = Map(nodes: 5, shards: 16, replication: 3);
        Assert.True(MetaCodec.TryDecode(Bootstrap(map), out var command, out var error), error);
        Assert.Equal(MetaCommandKind.Bootstrap, command!.Kind);
        Assert.True(command.Map!.SameAs(map));

        Assert.True(MetaCodec.TryDecode(SetAddresses(3, "p:1", "ä:2", "g:3"), out command, out error), error);
        Assert.Equal(new ClusterNode(3, "p:1", "ä:2", "g:3"), command!.Node);

        var state = new MetaState(map, 42, 7);
        Assert.True(MetaState.TryDecode(state.Encode(), out var decoded, out error), error);
        Assert.Equal((42UL, 7UL), (decoded!.AppliedIndex, decoded.AppliedTerm));
        Assert.True(decoded.Map!.SameAs(map));

        Assert.True(MetaState.TryDecode(new MetaState(null, 3, 1).Encode(), out decoded, out error), error);
        Assert.Null(decoded!.Map);
    }

    [Fact]
    public void Every_truncation_of_a_command_or_state_is_refused()
    {
        var command = Bootstrap(Map());
        for (var length = 0; length < command.Length; length++)
        {
            Assert.False(MetaCodec.TryDecode(command.AsSpan(0, length), out var decoded, out var error), $"prefix of {length} bytes");
            Assert.Null(decoded);
            Assert.NotEmpty(error);
        }

        var state = new MetaState(Map(), 9, 2).Encode();
        for (var length = 0; length < state.Length; length++)
        {
            Assert.False(MetaState.TryDecode(state.AsSpan(0, length), out _, out _), $"prefix of {length} bytes");
        }
    }

    [Fact]
    public void Malformed_commands_are_refused_with_a_reason()
    {
        Assert.False(MetaCodec.TryDecode([9, 0, 0], out _, out var error));
        Assert.Contains("unknown", error);
        Assert.False(MetaCodec.TryDecode([.. SetAddresses(1, "a:1"), 0], out _, out error)); // Trailing bytes.
        Assert.Contains("after", error);

        // An address length over the limit.
        var tooLong = SetAddresses(1, "a:1");
        tooLong[9] = 0xFF;
        tooLong[10] = 0xFF;
        Assert.False(MetaCodec.TryDecode(tooLong, out _, out _));

        // Invalid UTF-8 in an address.
        var badText = SetAddresses(1, "ab");
        badText[11] = 0xC3;
        badText[12] = 0x28;
        Assert.False(MetaCodec.TryDecode(badText, out _, out _));
    }

    [Fact]
    public void A_committed_malformed_or_invalid_command_is_ignored_and_the_index_still_advances()
    {
        var state = new MetaState(Map(), 1, 1);
        Assert.Equal(MetaApplyStatus.Malformed, state.Apply(2, 1, [2, 1]).Status);
        var invalid = Map() with { Shards = [new ShardPlacement(0, [1, 1, 2]), .. Map().Shards.Skip(1)] }; // A replica twice.
        Assert.Equal(MetaApplyStatus.Refused, new MetaState(null, 0, 0).Apply(1, 1, Bootstrap(invalid)).Status);
        Assert.Equal(2UL, state.AppliedIndex);
        Assert.True(state.Map!.SameAs(Map()));
    }

    [Fact]
    public void A_state_with_an_invalid_map_is_refused()
    {
        var map = Map();
        var duplicateReplica = map with { Shards = [new ShardPlacement(0, [1, 1, 2]), .. map.Shards.Skip(1)] };
        Assert.NotNull(MetaState.Validate(duplicateReplica));
        var bytes = new MetaState(map, 3, 1).Encode();
        bytes[^1] ^= 0x7F; // The last replica id of the last shard now names no member.
        Assert.False(MetaState.TryDecode(bytes, out _, out var error));
        Assert.Contains("invalid map", error);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 3)]
    [InlineData(5, 5)]
    [InlineData(6, 5)]
    [InlineData(20, 5)]
    public void The_meta_group_has_min_of_n_and_5_voters_chosen_the_same_way_on_every_node(int nodes, int voters)
    {
        var ids = Enumerable.Range(1, nodes).Select(i => (ulong)i).ToArray();
        var chosen = MetaState.Voters(ids);
        Assert.Equal(voters, chosen.Length);
        Assert.Equal(voters, chosen.Distinct().Count());
        Assert.All(chosen, id => Assert.Contains(id, ids));
        Assert.Equal(chosen, MetaState.Voters(ids.Reverse())); // Independent of the order nodes are listed in.
    }

    [Fact]
    public void Meta_limits_fit_a_whole_state_in_one_snapshot_chunk_and_a_bootstrap_in_one_raft_message()
    {
        Assert.True(MetaLimits.StateBytesMax <= TransportOptions.SnapshotChunkBytesMax);
        Assert.True(MetaLimits.CommandBytesMax <= HostOptions.RaftMessageBytesMax);
        Assert.True(MetaLimits.CommandBytesMax <= HostOptions.EntryBytesMax);
        Assert.True(MetaLimits.VotersMax <= MetaLimits.NodesMax);

        // The largest map the limits allow encodes within them.
        var address = new string('a', MetaLimits.AddressBytesMax);
        var nodes = Enumerable.Range(1, MetaLimits.NodesMax).Select(i => new ClusterNode((ulong)i, address, address, address)).ToList();
        var map = new ClusterMap(nodes, MetaLimits.ShardsMax, MetaLimits.ReplicationMax,
            Enumerable.Range(0, MetaLimits.ShardsMax).Select(s => new ShardPlacement(s, [.. Enumerable.Range(1, MetaLimits.ReplicationMax).Select(r => (ulong)(((s + r) % MetaLimits.NodesMax) + 1))])).ToList());
        Assert.Null(MetaState.Validate(map));
        Assert.Equal(MetaLimits.StateBytesMax, new MetaState(map, 1, 1).Encode().Length);
        Assert.Equal(MetaLimits.CommandBytesMax, Bootstrap(map).Length);
    }
}
