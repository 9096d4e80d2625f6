using Microsoft.AspNetCore.Builder;

namespace RaftLedger.Node.Api;

/// <summary>How the node's two web hosts (client API and peer transport) are built.</summary>
internal static class NodeWebHost
{
    /// <summary>
    /// A slim builder that watches no files.
    /// <para>ASP.NET Core's defaults watch the content root (the working directory) recursively to reload
    /// appsettings.json, so a node whose data folder is under the working directory (`cluster up` uses ./data)
    /// handled an inotify event for every WAL and RocksDB write: the watcher thread took ~9 % of the nodes' CPU in a
    /// one-client profile while a file was being written under the working directory. The node reads no settings files.</para>
    /// <para>Tried and left out: Kestrel's inline scheduling with inline socket completions (fewer thread-pool hops).
    /// It cut context switches at one client, but at 64 clients every socket's work then ran on the one socket
    /// thread of a 2-core machine and throughput fell (docs/PERFORMANCE.md, sixth session).</para>
    /// </summary>
    public static WebApplicationBuilder CreateBuilder() => WebApplication.CreateSlimBuilder(new WebApplicationOptions
    {
        Args = ["--hostBuilder:reloadConfigOnChange=false"],
        ContentRootPath = AppContext.BaseDirectory,
    });
}
