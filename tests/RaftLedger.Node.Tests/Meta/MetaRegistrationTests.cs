using RaftLedger.Node.Host;
using RaftLedger.Node.Placement;

namespace RaftLedger.Node.Tests.Meta;

/// <summary>
/// A node registers its addresses at once, but the same addresses again only after a pause: found by hand, a node
/// restarted on a new --listen (which the other nodes never dial) registered them every tick, ten meta entries a second.
/// </summary>
public sealed class MetaRegistrationTests
{
    private static readonly ClusterNode Moved = new(3, "127.0.0.1:17113", "127.0.0.1:17203", "127.0.0.1:17303");

    [Fact]
    public void The_same_addresses_are_registered_again_only_after_the_retry_pause_and_new_ones_at_once()
    {
        var registration = new MetaRegistration();
        Assert.True(registration.IsDue(Moved, round: 0));
        Assert.False(registration.Succeeded(Moved, round: 0));

        Assert.False(registration.IsDue(Moved, round: 1));
        Assert.False(registration.IsDue(Moved, round: NodeHost.MetaRegisterRetryTicks - 1));
        Assert.True(registration.IsDue(Moved, round: NodeHost.MetaRegisterRetryTicks));
        Assert.True(registration.Succeeded(Moved, round: NodeHost.MetaRegisterRetryTicks), "a second registration of the same addresses is reported as such");

        var apiMovedToo = Moved with { ApiAddress = "127.0.0.1:17213" };
        Assert.True(registration.IsDue(apiMovedToo, round: NodeHost.MetaRegisterRetryTicks + 1));
        Assert.False(registration.Succeeded(apiMovedToo, round: NodeHost.MetaRegisterRetryTicks + 1));
    }
}
