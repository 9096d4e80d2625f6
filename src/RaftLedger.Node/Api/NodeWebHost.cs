using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using RaftLedger.Node.Host;

namespace RaftLedger.Node.Api;

/// <summary>How the node's two web hosts (client API and peer transport) are built.</summary>
internal static class NodeWebHost
{
    /// <summary>
    /// A slim builder that watches no files, with Kestrel's inline scheduling when socket completions are inline.
    /// <para>ASP.NET Core's defaults watch the content root (the working directory) recursively to reload
    /// appsettings.json, so a node whose data folder is under the working directory (`cluster up` uses ./data)
    /// handled an inotify event for every WAL and RocksDB write: the watcher thread took ~9 % of the nodes' CPU in a
    /// one-client profile while a file was being written under the working directory. The node reads no settings files.</para>
    /// <para>Inline scheduling (<see cref="InlineSocketCompletions"/>): Kestrel then parses a connection's HTTP/2 frames
    /// and sends its output on the thread that completed the socket operation, instead of one thread-pool hop each way.
    /// Application code still starts on the thread pool for HTTP/2 (peer streams, gRPC API); a REST request's synchronous
    /// part (parsing, queueing to the scheduler) runs on the socket thread, and nothing in it blocks.</para>
    /// </summary>
    public static WebApplicationBuilder CreateBuilder()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        var inline = InlineSocketCompletions.Enabled;
        builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = inline);
        return builder;
    }
}
