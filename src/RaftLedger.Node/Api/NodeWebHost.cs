using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace RaftLedger.Node.Api;

/// <summary>How the node's two web hosts (client API and peer transport) are built.</summary>
internal static class NodeWebHost
{
    /// <summary>
    /// A slim builder that watches no files and runs Kestrel's continuations on the socket threads.
    /// <para>ASP.NET Core's defaults watch the content root (the working directory) recursively to reload
    /// appsettings.json, so a node whose data folder is under the working directory (`cluster up` uses ./data)
    /// handled an inotify event for every WAL and RocksDB write: the watcher thread took ~9 % of the nodes' CPU in a
    /// one-client profile while files were written there. The node reads no settings files.</para>
    /// <para>Inline scheduling saves a thread-pool hop per read and write of every request and peer batch; on this
    /// 2-core VM each hop is a futex wake-up and a context switch (docs/PERFORMANCE.md, sixth session). It is safe
    /// here because the node's handlers never block: they queue work for the scheduler loop and await it.</para>
    /// </summary>
    public static WebApplicationBuilder CreateBuilder()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = true);
        return builder;
    }
}
