// The status page itself: one HTML document with inline CSS and script, no external assets.
import { STATUS_PAGE_SCRIPT } from "./status_page_script.ts";

/** The page's styles; exported, as the script is, to be named in the Content-Security-Policy by hash. */
export const STATUS_PAGE_STYLE = `
:root { color-scheme: light dark; --fg:#1d2733; --muted:#5b6b7c; --bg:#f5f7fa; --card:#fff; --line:#dde3ea; --accent:#2c7be5; --ok:#2f9e44; --bad:#d6336c; }
@media (prefers-color-scheme: dark) { :root { --fg:#e4e9ef; --muted:#93a3b5; --bg:#10161d; --card:#18212b; --line:#2a3644; } }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; flex-wrap:wrap; gap:12px; align-items:center; justify-content:space-between; padding:12px 20px; background:var(--card); border-bottom:1px solid var(--line); }
h1 { font-size:18px; margin:0; }
h2 { font-size:15px; margin:0 0 10px; }
h2.sub { margin-top:14px; }
main, #content { display:grid; gap:16px; }
main { padding:16px 20px; max-width:1200px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
form { display:flex; gap:8px; align-items:center; margin:0; }
input { font:inherit; padding:5px 8px; border:1px solid var(--line); border-radius:5px; background:var(--bg); color:var(--fg); }
input[name=image] { width:22em; font-family:ui-monospace, monospace; }
button { font:inherit; padding:5px 12px; border:1px solid var(--accent); border-radius:5px; background:var(--accent); color:#fff; cursor:pointer; }
button.quiet { background:transparent; color:var(--accent); }
button.danger { background:transparent; border-color:var(--bad); color:var(--bad); padding:2px 8px; }
dl { display:grid; grid-template-columns:repeat(auto-fit, minmax(170px, 1fr)); gap:10px 20px; margin:0; }
dt { color:var(--muted); font-size:12px; }
dd { margin:0; font-weight:600; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--muted); font-weight:600; font-size:12px; }
th[data-key] { cursor:pointer; user-select:none; }
th[aria-sort=ascending]::after { content:" \\25B2"; }
th[aria-sort=descending]::after { content:" \\25BC"; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
code { font-family:ui-monospace, monospace; font-size:13px; }
.image-name { color:var(--muted); font-size:13px; overflow-wrap:anywhere; }
.bar { position:relative; height:18px; min-width:260px; border-radius:9px; background:var(--line); overflow:hidden; }
.bar > div { height:100%; background:var(--accent); transition:width .3s; }
.bar.done > div { background:var(--ok); }
.bar.failed > div { background:var(--bad); }
.bar > span { position:absolute; inset:0; text-align:center; font-size:12px; line-height:18px; font-weight:600; }
.meter { height:8px; border-radius:4px; background:var(--line); overflow:hidden; margin-top:4px; }
.meter > div { height:100%; background:var(--accent); }
.empty { color:var(--muted); }
#message { min-height:1.4em; color:var(--muted); }
#message.error, p.error { color:var(--bad); }
.status-alive { color:var(--ok); font-weight:600; }
.status-stale, .status-retired { color:var(--bad); font-weight:600; }
[hidden] { display:none !important; }
#activity svg { width:100%; height:auto; display:block; }
#activity text { fill:var(--muted); font-size:11px; }
.act-hit { fill:var(--ok); } .act-miss { fill:var(--accent); } .act-bytes { fill:var(--muted); }
.act-axis { stroke:var(--line); }
`;

/**
 * The whole page: one HTML document with the style and the script inline. In noauth (`tokenBox` false) it comes
 * without its token box, which the script also hides once the status document says noauth.
 */
export const statusPageHtml = (tokenBox: boolean) =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Glance cache node</title>
<style>${STATUS_PAGE_STYLE}</style>
</head>
<body>
<header>
  <h1>Glance cache node</h1>
  <form id="login" autocomplete="off"${tokenBox ? "" : " hidden"}>
    <label for="token">Token</label>
    <input id="token" type="password" placeholder="X-Auth-Token (kept in this tab only)">
    <button type="submit">Use</button>
    <button type="button" id="logout" class="quiet">Forget</button>
  </form>
</header>
<main>
  <div id="message" role="status"></div>
  <div id="content" hidden>
    <section id="node">
      <h2>Node <small id="updated" class="empty"></small></h2>
      <dl>
        <div><dt>Version</dt><dd id="version"></dd></div>
        <div><dt>Uptime</dt><dd id="uptime"></dd></div>
        <div><dt>Source</dt><dd id="source"></dd></div>
        <div><dt>Cache size</dt><dd id="size"></dd><div class="meter"><div id="size-meter"></div></div></div>
        <div><dt>Disk</dt><dd id="disk"></dd></div>
        <div><dt>Images</dt><dd id="counts"></dd></div>
        <div><dt>On disk</dt><dd id="used"></dd></div>
        <div><dt>Bandwidth</dt><dd id="bandwidth"></dd></div>
      </dl>
    </section>
    <section id="activity-section">
      <h2>Last hour <small id="activity-totals" class="empty"></small></h2>
      <div id="activity"></div>
    </section>
    <section>
      <h2>Pinned images</h2>
      <table><thead><tr><th>Image</th><th class="num">Size</th><th>Pinned</th><th>Cached</th></tr></thead>
      <tbody id="pins"></tbody></table>
      <p id="pins-empty" class="empty">No image is pinned.</p>
    </section>
    <section>
      <h2>Fills in progress</h2>
      <form id="queue-form" autocomplete="off">
        <input id="image" name="image" placeholder="image id" aria-label="image id">
        <button type="submit">Queue</button>
      </form>
      <table><thead><tr><th>Image</th><th>Progress</th><th class="num">Bytes</th><th class="num">Rate</th><th class="num">ETA</th><th></th></tr></thead>
      <tbody id="fills"></tbody></table>
      <p id="fills-empty" class="empty">Nothing is being cached.</p>
    </section>
    <section>
      <h2>Queue</h2>
      <table><tbody id="queue"></tbody></table>
      <p id="queue-empty" class="empty">The queue is empty.</p>
    </section>
    <section>
      <h2>Cached images</h2>
      <table id="cached-table"><thead><tr>
        <th data-key="image_id">Image</th><th data-key="size" class="num">Size</th><th data-key="hits" class="num">Hits</th>
        <th data-key="last_accessed">Last access</th><th data-key="last_modified">Cached</th><th></th>
      </tr></thead><tbody id="cached"></tbody></table>
      <p id="cached-empty" class="empty">No image is cached.</p>
    </section>
    <section id="fleet" hidden>
      <h2>Fleet <small id="fleet-self" class="empty"></small></h2>
      <p id="fleet-error" class="error" hidden></p>
      <table id="fleet-nodes-table"><thead><tr>
        <th>Node</th><th>Site</th><th>State</th><th class="num">Cache</th><th class="num">Free</th><th class="num">Images</th><th class="num">Hits</th><th class="num">Heartbeat</th>
      </tr></thead><tbody id="fleet-nodes"></tbody></table>
      <h2 class="sub">Images in the fleet</h2>
      <table id="fleet-images-table"><thead><tr><th>Image</th><th>Cached on</th><th>Queued on</th><th>Filling on</th></tr></thead>
      <tbody id="fleet-images"></tbody></table>
      <p id="fleet-images-empty" class="empty">No node of the fleet holds an image.</p>
      <p id="fleet-more" class="empty" hidden>More images: GET /v2/x-fleet/view pages through them all (glance-cache fleet view).</p>
    </section>
  </div>
</main>
<script>${STATUS_PAGE_SCRIPT}</script>
</body>
</html>
`;
