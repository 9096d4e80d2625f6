using Grpc.Core;
using RaftLedger.Node.Transport.Protos;
using RaftLedger.Raft;

namespace RaftLedger.Node.Host;

/// <summary>
/// Reads one snapshot stream into a file: every chunk must belong to the same group, index and term, follow the
/// previous one without gap, and stay within <see cref="HostOptions.SnapshotBytesMax"/>; the last chunk carries
/// the leader's Snapshot message. The file is deleted on dispose unless <see cref="Keep"/> was called.
/// </summary>
internal sealed class SnapshotReceiver(string directory, ulong fromNode) : IDisposable
{
    private FileStream? file;
    private bool keep;

    public ulong GroupId { get; private set; }

    public string? Path { get; private set; }

    public Message? Message { get; private set; }

    /// <summary>Reads chunks until the last one; returns null when the snapshot is complete, else what was wrong.</summary>
    public async Task<string?> ReceiveAsync(IAsyncStreamReader<SnapshotChunk> chunks, Func<ulong, bool> hostsGroup, CancellationToken cancel)
    {
        long bytes = 0;
        (ulong Index, ulong Term) id = default;
        while (await chunks.MoveNext(cancel).ConfigureAwait(false))
        {
            var chunk = chunks.Current;
            if (file is null)
            {
                if (!hostsGroup(chunk.GroupId))
                {
                    return $"{Placement.ClusterMap.DescribeGroup(chunk.GroupId)}: this node hosts no replica";
                }

                (GroupId, id) = (chunk.GroupId, (chunk.Index, chunk.Term));
                Path = System.IO.Path.Combine(directory, $"in-g{GroupId}-n{fromNode}-{chunk.Index}-{Guid.NewGuid():N}.snap");
                file = new FileStream(Path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            }

            if (chunk.GroupId != GroupId || (chunk.Index, chunk.Term) != id || chunk.Offset != (ulong)bytes)
            {
                return $"{Placement.ClusterMap.DescribeGroup(GroupId)}: chunk at offset {chunk.Offset} does not continue snapshot {id.Index} at {bytes}";
            }

            bytes += chunk.Data.Length;
            if (bytes > HostOptions.SnapshotBytesMax)
            {
                return $"{Placement.ClusterMap.DescribeGroup(GroupId)}: snapshot exceeds {HostOptions.SnapshotBytesMax} bytes";
            }

            await file.WriteAsync(chunk.Data.Memory, cancel).ConfigureAwait(false);
            if (chunk.Last)
            {
                return Finish(chunk, id);
            }
        }

        return "the stream ended before the last chunk";
    }

    private string? Finish(SnapshotChunk last, (ulong Index, ulong Term) id)
    {
        file!.Dispose();
        file = null;
        if (!MessageCodec.TryDecode(last.Raft.Memory, out var message, out var error) || message is null)
        {
            return $"the snapshot's Raft message does not decode: {error}";
        }

        if (message.Type != MessageType.Snapshot || message.From != fromNode || message.Snapshot is null ||
            message.Snapshot.Index != id.Index || message.Snapshot.Term != id.Term)
        {
            return $"{Placement.ClusterMap.DescribeGroup(GroupId)}: the snapshot's Raft message ({message.Type} from {message.From}) does not describe snapshot {id.Index}";
        }

        Message = message;
        return null;
    }

    /// <summary>The host took the file: it deletes it once installed.</summary>
    public void Keep() => keep = true;

    public void Dispose()
    {
        file?.Dispose();
        if (!keep && Path is not null)
        {
            File.Delete(Path);
        }
    }
}
