using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using RaftLedger.Common;
using RaftLedger.Node.Placement;
using RaftLedger.Node.Transport.Protos;

namespace RaftLedger.Node.Transport;

/// <summary>Streams shard snapshots to other nodes.</summary>
public interface ISnapshotSender
{
    /// <summary>
    /// Streams the snapshot file at <paramref name="path"/> to <paramref name="nodeId"/> in chunks of at most
    /// <see cref="TransportOptions.SnapshotChunkBytesMax"/>; HTTP/2 flow control paces the sender to the receiver.
    /// <paramref name="raft"/> (the Raft Snapshot message) travels with the last chunk. True when the receiver took it;
    /// false when it refused or could not be reached (the leader retries later).
    /// </summary>
    Task<bool> SendSnapshotAsync(ulong nodeId, ulong groupId, ulong index, ulong term, string path, ReadOnlyMemory<byte> raft, CancellationToken cancel);
}

public sealed partial class PeerTransport : ISnapshotSender
{
    public async Task<bool> SendSnapshotAsync(ulong nodeId, ulong groupId, ulong index, ulong term, string path, ReadOnlyMemory<byte> raft, CancellationToken cancel)
    {
        if (!addresses.TryGetValue(nodeId, out var address))
        {
            return false;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token, cancel);
        var channel = forwardChannels.GetOrAdd(nodeId, _ => new Lazy<GrpcChannel>(() => CreateChannel(address))).Value;
        var client = new Peer.PeerClient(channel);
        try
        {
            using var call = client.InstallSnapshot(Headers(), cancellationToken: linked.Token);
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
            await WriteChunksAsync(call.RequestStream, file, groupId, index, term, raft, linked.Token).ConfigureAwait(false);
            var ack = await call.ResponseAsync.ConfigureAwait(false);
            if (!ack.Installed)
            {
                logger.LogWarning("{Group}: node {Node} refused the snapshot at {Index}: {Error}", ClusterMap.DescribeGroup(groupId), nodeId, index, ack.Error);
            }

            return ack.Installed;
        }
        catch (Exception e) when (e is RpcException or IOException or OperationCanceledException or HttpRequestException)
        {
            logger.LogWarning("{Group}: snapshot at {Index} to node {Node} failed: {Error}", ClusterMap.DescribeGroup(groupId), index, nodeId, e.Message);
            return false;
        }
    }

    private static async Task WriteChunksAsync(IClientStreamWriter<SnapshotChunk> writer, FileStream file, ulong groupId, ulong index, ulong term, ReadOnlyMemory<byte> raft, CancellationToken cancel)
    {
        var length = file.Length;
        Invariant.Check(length > 0, "a snapshot file holds at least its begin and end chunks");
        var buffer = new byte[TransportOptions.SnapshotChunkBytesMax];
        long offset = 0;
        while (offset < length)
        {
            var read = await file.ReadAsync(buffer, cancel).ConfigureAwait(false);
            if (read == 0)
            {
                throw new IOException($"snapshot file {file.Name} ended at {offset} of {length} bytes");
            }

            var last = offset + read == length;
            var chunk = new SnapshotChunk { GroupId = groupId, Index = index, Term = term, Offset = (ulong)offset, Data = ByteString.CopyFrom(buffer, 0, read), Last = last };
            if (last)
            {
                chunk.Raft = ByteString.CopyFrom(raft.Span);
            }

            // Waits while the receiver's HTTP/2 window is full: that is the flow control.
            await writer.WriteAsync(chunk, cancel).ConfigureAwait(false);
            offset += read;
        }

        await writer.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>Server side of a snapshot stream: checks the secret, then lets the sink read the chunks.</summary>
    internal Task<SnapshotAck> ServeInstallSnapshotAsync(IAsyncStreamReader<SnapshotChunk> chunks, ServerCallContext context)
    {
        var fromNode = Authenticate(context);
        return sink.OnSnapshotAsync(fromNode, chunks, context.CancellationToken);
    }
}
