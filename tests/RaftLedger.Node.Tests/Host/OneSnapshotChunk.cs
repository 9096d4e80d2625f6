using Grpc.Core;
using RaftLedger.Node.Transport.Protos;

namespace RaftLedger.Node.Tests.Host;

/// <summary>A snapshot stream of one chunk, as a leader's <c>InstallSnapshot</c> call would deliver it.</summary>
internal sealed class OneSnapshotChunk(SnapshotChunk chunk) : IAsyncStreamReader<SnapshotChunk>
{
    private bool read;

    public SnapshotChunk Current => chunk;

    public Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        var next = !read;
        read = true;
        return Task.FromResult(next);
    }
}
