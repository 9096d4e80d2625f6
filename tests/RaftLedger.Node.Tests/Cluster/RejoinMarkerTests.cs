using RaftLedger.Node.Host;

namespace RaftLedger.Node.Tests.Cluster;

/// <summary>The data folder remembers that its node is rejoining until every group has caught up, across restarts.</summary>
public sealed class RejoinMarkerTests
{
    [Fact]
    public void A_restart_without_the_flag_still_rejoins_until_the_marker_is_ended()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"raftledger-rejoin-{Guid.NewGuid():N}");
        try
        {
            Assert.False(RejoinMarker.Begin(folder, requested: false)); // a normal start of a new node
            Assert.True(RejoinMarker.Begin(folder, requested: true));
            Assert.True(File.Exists(Path.Combine(folder, RejoinMarker.FileName)));
            Assert.True(RejoinMarker.Begin(folder, requested: false)); // killed during the catch-up, restarted plainly
            Assert.True(RejoinMarker.Begin(folder, requested: true)); // asked twice: still one marker

            RejoinMarker.End(folder);

            Assert.False(RejoinMarker.Begin(folder, requested: false));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
