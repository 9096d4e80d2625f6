using Microsoft.AspNetCore.Http;

namespace RaftLedger.Node.Api;

/// <summary>
/// GET /dashboard: one self-contained page (no external scripts, styles or fonts, so it works on an isolated
/// network) that polls this node's <c>/v1/cluster</c> once a second and shows the nodes, every shard's leader,
/// term and indexes, how far each replica lags its leader, and the cluster's committed Raft entries per second.
/// It only reads what /v1/cluster already serves. Replica progress is known only to a shard's leader, so the page
/// shows it for the shards this node leads and, for the others, links to the leader's own dashboard. It does not fetch
/// the leaders' views itself (as <c>raftledger status</c> does): a browser may not read another node's origin unless the
/// nodes allowed cross-origin reads, and having the node ask the others would add node-to-node REST calls for every
/// poll of every open page. One click, or <c>raftledger status</c>, gives the rest.
/// </summary>
internal static class Dashboard
{
    public static Task WriteAsync(HttpContext context)
    {
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsync(Page);
    }

    private const string Page = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>RaftLedger dashboard</title>
        <style>
        body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
        h1{font-size:1.3em} h2{font-size:1.05em;margin-top:1.4em}
        table{border-collapse:collapse} td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}
        th{background:#f4f4f4} td.l,th.l{text-align:left}
        .down{color:#b00;font-weight:600} .lag{color:#b60;font-weight:600} .ok{color:#080}
        #err{color:#b00} svg{border:1px solid #ddd;background:#fafafa}
        </style></head><body>
        <h1>RaftLedger cluster</h1>
        <div id="err"></div>
        <div>Committed Raft entries per second (all shards, last 2 minutes): <b id="rate">–</b></div>
        <svg id="chart" width="600" height="80" viewBox="0 0 600 80" preserveAspectRatio="none"><polyline id="line" fill="none" stroke="#36c" stroke-width="1.5" points=""/></svg>
        <h2>Nodes</h2><table id="nodes"></table>
        <h2>Shards</h2>
        <p>Only a shard's leader knows how far its replicas are behind: this node shows that for the shards it leads; for
        the others, follow the link to the leader's dashboard, or run <code>raftledger status</code>, which shows every
        shard as its leader reports it.</p>
        <table id="shards"></table>
        <p>Raw data: <a href="/v1/cluster">/v1/cluster</a>, <a href="/v1/node">/v1/node</a>, <a href="/metrics">/metrics</a>. Refreshes every second.</p>
        <script>
        "use strict";
        const rates = []; let last = null;
        const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
        const row = (cells, head) => "<tr>" + cells.map(([v, cls]) => `<${head ? "th" : "td"} class="${cls || ""}">${v}</${head ? "th" : "td"}>`).join("") + "</tr>";
        const dashboard = api => esc(/^https?:/.test(api) ? api : "http://" + api) + "/dashboard";
        function nodes(list) {
          return row([["node", "l"], ["client API", "l"], ["state", "l"]], true) + list.map(n => row([
            [n.id, "l"], [n.api ? `<a href="${dashboard(n.api)}">${esc(n.api)}</a>` : "–", "l"],
            [n.up ? "up" : "down", n.up ? "l ok" : "l down"]])).join("");
        }
        // A shard this node does not lead: its replicas' progress is on the leader's page.
        function elsewhere(s, apis) {
          const api = apis.get(String(s.leader));
          return s.leader && api ? `– (<a href="${dashboard(api)}">on leader ${esc(s.leader)}'s dashboard</a>)` : "–";
        }
        function shards(list, nodeList) {
          const apis = new Map(nodeList.filter(n => n.api).map(n => [String(n.id), n.api]));
          return row([["shard", "l"], ["leader", "l"], ["term"], ["commit"], ["applied"], ["replicas: match index (behind)", "l"]], true) + list.map(s => {
            const commit = Number(s.commit_index);
            const reps = (s.progress || []).map(p => {
              const behind = commit - Number(p.match_index);
              return `${p.node}: ${esc(p.match_index)}` + (behind > 0 ? ` <span class="lag">(${behind})</span>` : "");
            }).join(", ");
            return row([[s.id, "l"], [s.leader || "<span class=\"down\">none</span>", "l"], [esc(s.term)], [esc(s.commit_index)], [esc(s.applied_index)], [reps || elsewhere(s, apis), "l"]]);
          }).join("");
        }
        function chart() {
          const max = Math.max(1, ...rates);
          document.getElementById("line").setAttribute("points", rates.map((r, i) => `${(i * 600 / 119).toFixed(1)},${(78 - r * 76 / max).toFixed(1)}`).join(" "));
        }
        async function refresh() {
          try {
            const response = await fetch("/v1/cluster", { cache: "no-store" });
            if (!response.ok) throw new Error(`/v1/cluster answered ${response.status}`);
            const cluster = await response.json();
            document.getElementById("nodes").innerHTML = nodes(cluster.nodes || []);
            document.getElementById("shards").innerHTML = shards(cluster.shards || [], cluster.nodes || []);
            const total = (cluster.shards || []).reduce((sum, s) => sum + Number(s.commit_index), 0);
            const now = performance.now();
            if (last) {
              const rate = Math.max(0, (total - last.total) * 1000 / (now - last.at));
              rates.push(rate); if (rates.length > 120) rates.shift();
              document.getElementById("rate").textContent = rate.toFixed(0);
              chart();
            }
            last = { total, at: now };
            document.getElementById("err").textContent = "";
          } catch (e) {
            document.getElementById("err").textContent = `Cannot read the cluster state: ${e.message}. Retrying.`;
          }
        }
        refresh(); setInterval(refresh, 1000);
        </script></body></html>
        """;
}
