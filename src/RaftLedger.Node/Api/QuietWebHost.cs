using Microsoft.AspNetCore.Builder;

namespace RaftLedger.Node.Api;

/// <summary>
/// Options for the node's two web hosts (API and peer transport). ASP.NET Core's defaults watch the content root
/// (the working directory) recursively to reload appsettings.json, so a node whose data folder is under the working
/// directory (`cluster up` uses ./data) handled an inotify event for every WAL and RocksDB write: the watcher thread
/// took ~9 % of the nodes' CPU in a one-client profile while files were written there (docs/PERFORMANCE.md, sixth
/// session). The node reads no settings files, so nothing is watched.
/// </summary>
internal static class QuietWebHost
{
    public static WebApplicationOptions Options() => new()
    {
        Args = ["--hostBuilder:reloadConfigOnChange=false"],
        ContentRootPath = AppContext.BaseDirectory,
    };
}
