using System.Runtime.CompilerServices;

// The host's cross-shard pieces (ShardMessenger, SplitRequest, chunking) are internal; their unit tests live there.
[assembly: InternalsVisibleTo("RaftLedger.Node.Tests")]
