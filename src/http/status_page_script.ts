// The status page's script: polls the node's status document and renders it (inline, named by hash in the CSP).

/** The page's behaviour; exported so the server can name it in its Content-Security-Policy by hash. */
export const STATUS_PAGE_SCRIPT = `
"use strict";
const KEY = "glance-cache-token";
const $ = (id) => document.getElementById(id);
const state = { sort: { key: "last_accessed", dir: -1 }, cached: [], names: {}, samples: {}, finished: {}, timer: 0 };

function token() { return sessionStorage.getItem(KEY) || ""; }

async function api(method, path) {
  const headers = { Accept: "application/json" };
  if (token()) headers["X-Auth-Token"] = token();
  const res = await fetch(path, { method, headers, cache: "no-store" });
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { msg = (await res.json()).message.replace(/<br \\/>[\\s\\S]*$/, "").trim() || msg; } catch {}
    throw new Error(msg);
  }
  return res.status === 200 ? res.json() : null;
}

function say(text, isError) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

function bytes(n) {
  if (n == null) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function duration(s) {
  if (!isFinite(s)) return "?";
  s = Math.round(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s";
  return s + "s";
}

// ISO 8601 in UTC, to the second, as the logs write dates (the browser's locale and zone play no part).
function when(epoch) { return new Date(epoch * 1000).toISOString().replace(/\\.\\d{3}Z$/, "Z"); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// An image's id, and under it its name as the node knows it: always text (textContent), never markup.
function idCell(id) {
  const cell = el("td", {}, el("code", {}, id));
  const name = state.names[id];
  if (name) {
    const line = el("div", { class: "image-name", "data-name": id });
    line.textContent = name;
    cell.append(line);
  }
  return cell;
}

function bar(fraction, label, kind) {
  const pct = Math.max(0, Math.min(1, fraction)) * 100;
  const inner = el("div");
  inner.style.width = pct.toFixed(1) + "%";
  return el("div", { class: "bar " + (kind || ""), role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": pct.toFixed(1) }, inner, el("span", {}, label));
}

function deleteButton(id) {
  return el("button", { class: "danger", "data-delete": id, onclick: () => act("DELETE", id, "removed " + id) }, "Delete");
}

async function act(method, id, done) {
  try {
    await api(method, "/v2/cache/" + encodeURIComponent(id));
    say(done);
  } catch (err) {
    say(method === "PUT" ? "queue " + id + ": " + err.message : "delete " + id + ": " + err.message, true);
  }
  refresh();
}

function renderNode(node) {
  // No token to give in noauth: no token box.
  $("login").hidden = node.auth === "noauth";
  $("version").textContent = node.version;
  $("uptime").textContent = duration(node.uptime);
  $("source").textContent = node.source.type === "upstream" ? "Glance at " + node.source.url + link(node.source.link) : "embedded store";
  $("size").textContent = bytes(node.cache.size) + " of " + bytes(node.cache.max_size);
  $("size-meter").style.width = Math.min(100, (100 * node.cache.size) / node.cache.max_size).toFixed(1) + "%";
  $("disk").textContent = bytes(node.disk.free) + " free of " + bytes(node.disk.total);
  $("counts").textContent = node.cache.cached + " cached, " + node.cache.queued + " queued, " + node.cache.caching + " filling";
  renderActivity(node.activity || []);
  $("bandwidth").textContent = node.bandwidth ? "upstream " + limit(node.bandwidth.upstream) + ", to peers " + limit(node.bandwidth.peer) : "";
  $("used").textContent = bytes(node.cache.used) + " (committed, filling, still read), " + node.cache.readers + " open readers";
  $("pins").replaceChildren(...node.cache.pins.map((p) => el("tr", { "data-pin": p.image_id },
    el("td", {}, el("code", {}, p.image_id)),
    el("td", { class: "num" }, bytes(p.size)),
    el("td", { title: when(p.pinned_at) }, when(p.pinned_at)),
    el("td", {}, p.cached ? "yes" : "not yet"))));
  $("pins-empty").hidden = node.cache.pins.length > 0;
  $("fleet").hidden = !node.fleet;
  if (node.fleet) renderFleet(node.fleet);
}

function limit(b) {
  return (b.limit > 0 ? bytes(b.limit) + "/s at most" : "not limited") + " (" + bytes(b.bytes) + " so far)";
}

function link(l) {
  if (!l) return "";
  if (l.state === "up") return " (answering; " + l.kept_records + " kept records)";
  return " (UNREACHABLE for " + duration(l.last_answer_seconds) + ": " +
    (l.serving_cached ? l.kept_answers + " downloads served from kept records" : "downloads refused") + ")";
}

// The last hour per minute as inline SVG: downloads (hits and misses stacked) above, bytes served below.
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderActivity(minutes) {
  const W = 1000, H = 56, GAP = 22, left = 90, slot = (W - left) / Math.max(1, minutes.length);
  const maxDownloads = Math.max(1, ...minutes.map((m) => m.hits + m.misses));
  const maxBytes = Math.max(1, ...minutes.map((m) => m.bytes));
  const chart = svg("svg", { viewBox: "0 0 " + W + " " + (2 * H + GAP + 16), role: "img", "aria-label": "downloads and bytes served per minute, last hour" });
  chart.append(svg("text", { x: 0, y: 12 }, maxDownloads + " /min"), svg("text", { x: 0, y: H + GAP + 12 }, bytes(maxBytes) + "/min"));
  chart.append(svg("line", { class: "act-axis", x1: left, y1: H, x2: W, y2: H }), svg("line", { class: "act-axis", x1: left, y1: 2 * H + GAP, x2: W, y2: 2 * H + GAP }));
  let hits = 0, misses = 0, served = 0;
  minutes.forEach((m, i) => {
    hits += m.hits; misses += m.misses; served += m.bytes;
    const x = left + i * slot, w = Math.max(1, slot - 2);
    const label = new Date(m.at * 1000).toLocaleTimeString() + ": " + m.hits + " hits, " + m.misses + " misses, " + bytes(m.bytes);
    const group = svg("g", { "data-minute": m.at, "data-hits": m.hits, "data-misses": m.misses, "data-bytes": m.bytes });
    group.append(svg("title", {}, label));
    const hh = (H * m.hits) / maxDownloads, mh = (H * m.misses) / maxDownloads, bh = (H * m.bytes) / maxBytes;
    if (m.hits) group.append(svg("rect", { class: "act-hit", x, y: H - hh, width: w, height: hh }));
    if (m.misses) group.append(svg("rect", { class: "act-miss", x, y: H - hh - mh, width: w, height: mh }));
    if (m.bytes) group.append(svg("rect", { class: "act-bytes", x, y: 2 * H + GAP - bh, width: w, height: bh }));
    chart.append(group);
  });
  chart.append(svg("text", { x: left, y: 2 * H + GAP + 14 }, "60 min ago"), svg("text", { x: W - 30, y: 2 * H + GAP + 14 }, "now"));
  $("activity").replaceChildren(chart);
  $("activity-totals").textContent = hits + " hits (green), " + misses + " misses (blue), " + bytes(served) + " served";
}

function renderFleet(f) {
  $("fleet-self").textContent = f.self + (f.site ? " (site " + f.site + ")" : "");
  $("fleet-error").textContent = f.error || "";
  $("fleet-error").hidden = !f.error;
  $("fleet-nodes").replaceChildren(...f.nodes.map((n) => el("tr", { "data-node": n.url, "data-status": n.status },
    el("td", {}, el("code", {}, n.url), n.url === f.self ? " (this node)" : ""),
    el("td", {}, n.site || "–"),
    el("td", { class: "status-" + n.status }, n.status),
    el("td", { class: "num" }, bytes(n.cache_size) + " of " + bytes(n.max_size)),
    el("td", { class: "num" }, n.free_bytes == null ? "?" : bytes(n.free_bytes)),
    el("td", { class: "num" }, n.cached_images),
    el("td", { class: "num" }, n.hits),
    el("td", { class: "num", title: when(n.heartbeat_at) }, duration(n.heartbeat_age) + " ago"))));
  const images = Object.entries(f.images);
  const list = (urls) => urls.length ? urls.join(", ") : "–";
  $("fleet-images").replaceChildren(...images.map(([id, v]) => el("tr", { "data-fleet-image": id },
    idCell(id),
    el("td", {}, list(v.cached)),
    el("td", {}, list(v.queued)),
    el("td", {}, list(v.filling.map((x) => x.node + " " + (x.total ? Math.floor((100 * x.bytes) / x.total) + "%" : bytes(x.bytes))))))));
  $("fleet-images-empty").hidden = images.length > 0;
  $("fleet-more").hidden = !f.more;
}

function renderFills(caching, cachedIds) {
  const now = Date.now() / 1000;
  const rows = [];
  for (const [id, p] of Object.entries(caching)) {
    const prev = state.samples[id];
    let rate = prev ? prev.rate : 0;
    if (prev && now > prev.at) {
      const instant = (p.bytes_written - prev.bytes) / (now - prev.at);
      rate = prev.rate ? 0.7 * prev.rate + 0.3 * instant : instant;
    }
    state.samples[id] = { bytes: p.bytes_written, at: now, rate, expected: p.expected_size };
    const frac = p.expected_size ? p.bytes_written / p.expected_size : 0;
    const eta = rate > 0 && p.expected_size ? (p.expected_size - p.bytes_written) / rate : Infinity;
    rows.push(el("tr", { "data-fill": id, "data-state": "filling" },
      idCell(id),
      el("td", {}, bar(frac, (frac * 100).toFixed(0) + "%")),
      el("td", { class: "num" }, bytes(p.bytes_written) + " / " + bytes(p.expected_size)),
      el("td", { class: "num" }, rate > 0 ? bytes(rate) + "/s" : "–"),
      el("td", { class: "num" }, rate > 0 ? duration(eta) : "–"),
      el("td", {}, deleteButton(id))));
  }
  // A fill that just ended stays a minute with its outcome, so its bar visibly reaches the end.
  for (const id of Object.keys(state.samples)) {
    if (caching[id]) continue;
    const s = state.samples[id];
    delete state.samples[id];
    state.finished[id] = { ok: cachedIds.has(id), at: now, expected: s.expected };
  }
  for (const [id, f] of Object.entries(state.finished)) {
    if (now - f.at > 60 || caching[id]) { delete state.finished[id]; continue; }
    rows.push(el("tr", { "data-fill": id, "data-state": f.ok ? "done" : "failed" },
      idCell(id),
      el("td", {}, bar(f.ok ? 1 : 0, f.ok ? "done" : "failed", f.ok ? "done" : "failed")),
      el("td", { class: "num" }, f.ok ? bytes(f.expected) : ""),
      el("td", {}, ""), el("td", {}, ""), el("td", {}, "")));
  }
  $("fills").replaceChildren(...rows);
  $("fills-empty").hidden = rows.length > 0;
}

function renderQueue(queued) {
  $("queue").replaceChildren(...queued.map((id, i) => el("tr", { "data-queued": id },
    el("td", { class: "num" }, i + 1), idCell(id), el("td", {}, deleteButton(id)))));
  $("queue-empty").hidden = queued.length > 0;
}

function renderCached() {
  const { key, dir } = state.sort;
  const rows = [...state.cached].sort((a, b) => (a[key] < b[key] ? -dir : a[key] > b[key] ? dir : 0));
  $("cached").replaceChildren(...rows.map((c) => el("tr", { "data-cached": c.image_id },
    idCell(c.image_id),
    el("td", { class: "num", title: c.size + " bytes" }, bytes(c.size)),
    el("td", { class: "num" }, c.hits),
    el("td", {}, when(c.last_accessed)),
    el("td", {}, when(c.last_modified)),
    el("td", {}, deleteButton(c.image_id)))));
  $("cached-empty").hidden = rows.length > 0;
  for (const th of document.querySelectorAll("#cached-table th[data-key]")) {
    th.setAttribute("aria-sort", th.dataset.key === key ? (dir > 0 ? "ascending" : "descending") : "none");
  }
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    const [node, list] = await Promise.all([api("GET", "/v2/x-cache-node/status"), api("GET", "/v2/cache")]);
    state.names = node.names || {};
    renderNode(node);
    state.cached = list.cached_images;
    renderFills(list.caching_images || {}, new Set(list.cached_images.map((c) => c.image_id)));
    renderQueue(list.queued_images);
    renderCached();
    $("updated").textContent = "updated " + when(Date.now() / 1000);
    $("content").hidden = false;
    if ($("message").className === "error" && /^(401|403)|authenticat|not authorized/i.test($("message").textContent)) say("");
  } catch (err) {
    say(err.message, true);
  }
  const busy = Object.keys(state.samples).length > 0;
  state.timer = setTimeout(refresh, busy ? 500 : 2000);
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $("token").value.trim());
  $("token").value = "";
  say("token set for this tab");
  refresh();
});
$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  $("content").hidden = true;
  say("token forgotten");
});
$("queue-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("image").value.trim();
  if (!id) return;
  $("image").value = "";
  act("PUT", id, "queued " + id);
});
for (const th of document.querySelectorAll("#cached-table th[data-key]")) {
  th.addEventListener("click", () => {
    const key = th.dataset.key;
    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : key === "image_id" ? 1 : -1 };
    renderCached();
  });
}
refresh();
`;
