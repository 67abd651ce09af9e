// GET /metrics: hit ratio, bytes by origin, latency histograms, queue, disk, runtime; and the Grafana dashboard shows each of our metrics and only those.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { suite } from "uvu";
import { bytes, createImage, type Running, start, waitCached, waitFor } from "../helpers/helpers.ts";

const t = suite("metrics");
const DASHBOARD = new URL("../../contrib/grafana/glance-cache-node.json", import.meta.url);
/** Where the metrics are declared, including those a plain node does not expose (fleet, Keystone, upstream outage). */
const METRIC_SOURCES = ["../../src/http/metrics.ts", "../../src/http/fleet_metrics.ts"].map((p) =>
  new URL(p, import.meta.url)
);

/** As Prometheus with a role allowed by cache_list (public_metrics is off by default). */
async function scrape(node: Running): Promise<string> {
  const res = await node.req("/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** The value of one sample, e.g. sample(text, 'glance_cache_served_bytes_total{from="cache"}'). */
function sample(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no sample ${name}`);
  return Number(line.slice(name.length + 1));
}

function sampleNames(text: string): Set<string> {
  return new Set(
    text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]),
  );
}

t(
  "a miss then a hit move the hit and miss counters, bytes by origin and the time-to-first-byte and fill histograms",
  async () => {
    const node = await start();
    try {
      const before = await scrape(node);
      assert.equal(sample(before, "glance_cache_hits_total"), 0);
      assert.equal(sample(before, 'glance_cache_served_bytes_total{from="source"}'), 0);

      const data = bytes(200_000);
      const image = await createImage(node, data);
      await (await node.req(`/v2/images/${image}/file`)).arrayBuffer(); // a miss: fills the cache
      await waitCached(node, image);
      await (await node.req(`/v2/images/${image}/file`)).arrayBuffer(); // a hit
      const ranged = await node.req(`/v2/images/${image}/file`, { headers: { Range: "bytes=0-99" } });
      assert.equal(ranged.status, 206);
      await ranged.arrayBuffer(); // a range cut from the cached file: a hit too

      const text = await waitFor("the last body counted", async () => {
        const t = await scrape(node);
        return sample(t, 'glance_cache_served_bytes_total{from="cache"}') === data.length + 100 && t;
      });
      assert.equal(sample(text, "glance_cache_hits_total"), 2);
      assert.equal(sample(text, "glance_cache_misses_total"), 1);
      assert.equal(sample(text, 'glance_cache_served_bytes_total{from="source"}'), data.length);
      assert.equal(sample(text, 'glance_cache_download_ttfb_seconds_count{cache="miss"}'), 1);
      assert.equal(sample(text, 'glance_cache_download_ttfb_seconds_count{cache="hit"}'), 2);
      assert.equal(sample(text, 'glance_cache_fill_duration_seconds_count{outcome="cached"}'), 1);
      assert.equal(sample(text, 'glance_cache_fill_duration_seconds_bucket{le="+Inf",outcome="cached"}'), 1);
      assert.equal(sample(text, "glance_cache_fill_bytes_total"), data.length);
      assert.equal(sample(text, "glance_cache_size_bytes"), data.length);
      assert.equal(sample(text, "glance_cache_queued_images"), 0);
      assert.equal(sample(text, "glance_cache_filling_images"), 0);
      assert.ok(sample(text, "glance_cache_fs_free_bytes") > 0);
      assert.ok(sample(text, "glance_cache_fs_size_bytes") >= sample(text, "glance_cache_fs_free_bytes"));
      assert.ok(sample(text, 'glance_cache_http_requests_total{method="GET",code="200"}') >= 2);
      // the runtime's own metrics (prom-client's defaults), on Node and on Deno
      assert.ok(sample(text, "process_resident_memory_bytes") > 0);
      assert.ok(sampleNames(text).has("nodejs_eventloop_lag_p99_seconds"));
      assert.ok(sampleNames(text).has("process_cpu_seconds_total"));
    } finally {
      await node.close();
    }
  },
);

t("queue depth counts queued images not yet being filled", async () => {
  // No worker: what is queued stays queued.
  const node = await start({ cacheConcurrency: 0 });
  try {
    for (let i = 0; i < 3; i++) await node.req(`/v2/cache/${await createImage(node, bytes(10))}`, { method: "PUT" });
    assert.equal(sample(await scrape(node), "glance_cache_queued_images"), 3);
  } finally {
    await node.close();
  }
});

t("the Grafana dashboard queries every metric of ours, and only metrics that exist", async () => {
  const dashboard = JSON.parse(await readFile(DASHBOARD, "utf8")) as {
    panels: { title: string; targets: { expr: string }[] }[];
    templating: { list: { query?: unknown }[] };
  };
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((x) => x.expr));
  for (const v of dashboard.templating.list) {
    if (typeof v.query === "object" && v.query) exprs.push((v.query as { query: string }).query);
  }
  assert.ok(exprs.length >= 10);
  const node = await start();
  try {
    const exposed = sampleNames(await scrape(node));
    const queried = new Set<string>();
    for (const expr of exprs) {
      // Metric names are the identifiers followed by a selector, or label_values' first argument.
      for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)) queried.add(m[1]);
      for (const m of expr.matchAll(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/g)) queried.add(m[1]);
      // and nothing that looks like one of ours is written without a selector
      for (const m of expr.matchAll(/\b((?:glance_cache|process|nodejs)_[a-zA-Z0-9_]*)\b(?!\s*\{)/g)) {
        assert.ok(expr.includes(`label_values(${m[1]}`), `${m[1]} without a selector in ${expr}`);
      }
    }
    assert.ok(queried.size >= 15, [...queried].join());
    // A histogram's family is its name without the sample suffix.
    const families = new Set([...exposed].map((name) => name.replace(/_(bucket|sum|count)$/, "")));
    const declared = new Set<string>();
    for (const file of METRIC_SOURCES) {
      for (const m of (await readFile(file, "utf8")).matchAll(/"(glance_cache_[a-z0-9_]+)"/g)) declared.add(m[1]);
    }
    const known = (name: string) => exposed.has(name) || declared.has(name.replace(/_(bucket|sum|count)$/, ""));
    const missing = [...queried].filter((name) => !known(name));
    assert.deepEqual(missing, [], `queried by the dashboard but not a metric: ${missing.join(", ")}`);
    const queriedFamilies = new Set([...queried].map((name) => name.replace(/_(bucket|sum|count)$/, "")));
    const ours = [...families, ...declared].filter((name) => name.startsWith("glance_cache_"));
    const unshown = [...new Set(ours)].filter((name) => !queriedFamilies.has(name));
    assert.deepEqual(unshown, [], `metrics without a panel on the dashboard: ${unshown.join(", ")}`);
  } finally {
    await node.close();
  }
});

t("made-up methods share one label value: no series grows per client string", async () => {
  const node = await start();
  try {
    for (let i = 0; i < 50; i++) {
      const method = `X${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
      // node:http's parser (our adapter on both runtimes) refuses unknown methods itself; an embedder's server
      // (Deno.serve) may hand them to the handler.
      const res = await node.req("/v2/cache", { method }).catch(() => undefined);
      await res?.body?.cancel();
    }
    const text = await scrape(node);
    const series = text.split("\n").filter((l) => l.startsWith("glance_cache_http_requests_total{"));
    const methods = new Set(series.map((l) => /method="([^"]*)"/.exec(l)![1]));
    assert.ok([...methods].every((m) => ["GET", "OTHER"].includes(m)), [...methods].join(", "));
    assert.ok(series.length <= 4, series.join("\n"));
  } finally {
    await node.stop();
  }
});

t.run();
