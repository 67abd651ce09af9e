// GET /metrics: the cache's counters, sizes, latencies and the runtime's own metrics in Prometheus' text format (prom-client).
import { statfs } from "node:fs/promises";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { KeystoneOutage } from "../auth/token_memory.ts";
import type { ImageCache } from "../cache/image_cache.ts";
import type { Fleet } from "../fleet/fleet.ts";
import type { OutageView } from "../images/upstream_outage.ts";
import type { RequestContext } from "../request_context.ts";
import type { AccessRecord, ResponseObserver } from "./access_log.ts";
import { Activity } from "./activity.ts";
import type { Bandwidths } from "../streams/throttle.ts";
import { fleetMetrics } from "./fleet_metrics.ts";

const TTFB_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FILL_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/** process_* and nodejs_* metrics: once per process (their collectors watch the whole runtime, not one app). */
let runtimeRegistry: Registry | undefined;
function runtimeMetrics(): Registry {
  if (!runtimeRegistry) {
    runtimeRegistry = new Registry();
    collectDefaultMetrics({ register: runtimeRegistry });
  }
  return runtimeRegistry;
}

/** The node's metrics: GET /metrics's exposition, fed by accessLogged (as its observer) and the download route. */
export interface Metrics extends ResponseObserver {
  /** The exposition of GET /metrics. */
  text(): Promise<string>;
  /** The exposition's Content-Type. */
  readonly contentType: string;
  /** A download answered from the cache (hit) or not (miss). */
  download(cache: "hit" | "miss"): void;
  /** A request with a temp URL's query: accepted (a valid signature) or refused (401). */
  tempUrl(accepted: boolean): void;
  /** A readiness answer of GET /v2/x-fleet/ready: ready or not. */
  fleetReady(ready: boolean): void;
  /** The last hour of downloads, per minute (the status page's chart). */
  readonly activity: Activity;
}

/**
 * The metrics of one app: the cache's (and the fleet's) counters and sizes read at each scrape, `cacheDir`'s
 * filesystem, the responses' latencies, and the runtime's own (process-wide) metrics.
 */
export function cacheMetrics(
  cache: ImageCache,
  cacheDir: string,
  fleet?: Fleet,
  store?: { unreadable: unknown[] },
  keystone?: { outage: KeystoneOutage },
  outage?: { view(): OutageView },
  activity = new Activity(),
  bandwidth?: Bandwidths,
): Metrics {
  const registry = new Registry();
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const gauge = (name: string, help: string, read: () => number | Promise<number>) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(await read());
      },
    });
  counter(
    "glance_cache_source_reads_total",
    "Reads of image data from the image source",
    () => cache.stats.sourceReads,
  );
  counter("glance_cache_fills_started_total", "Fills started", () => cache.stats.fillsStarted);
  counter(
    "glance_cache_fills_failed_total",
    "Fills that failed (checksum, source or disk error)",
    () => cache.stats.fillsFailed,
  );
  counter(
    "glance_cache_evictions_total",
    "Images evicted to stay within image_cache_max_size",
    () => cache.stats.evictions,
  );
  counter(
    "glance_cache_idle_evictions_total",
    "Images evicted for going unread longer than image_cache_max_idle",
    () => cache.stats.idleEvictions,
  );
  gauge("glance_cache_size_bytes", "Bytes of committed cache entries", () => cache.totals().cachedBytes);
  gauge(
    "glance_cache_used_bytes",
    "Bytes the cache holds on disk as its cap counts them: committed, reserved by fills, removed but still read",
    () => cache.totals().usedBytes,
  );
  gauge("glance_cache_held_bytes", "Bytes of removed cache files still being read", () => cache.totals().heldBytes);
  gauge("glance_cache_open_readers", "Downloads and peer reads open on cache files", () => cache.totals().openReaders);
  gauge("glance_cache_pinned_images", "Pinned images", () => cache.totals().pinnedImages);
  gauge("glance_cache_pinned_bytes", "Bytes of the pinned images", () => cache.totals().pinnedBytes);
  gauge("glance_cache_max_size_bytes", "image_cache_max_size", () => cache.maxSize);
  gauge("glance_cache_images", "Committed cache entries", () => cache.totals().cachedImages);
  gauge("glance_cache_queued_images", "Images waiting in the queue (queue depth)", () => cache.totals().waitingImages);
  gauge("glance_cache_filling_images", "Fills in progress", () => cache.totals().fillingImages);
  gauge(
    "glance_cache_filling_bytes",
    "Bytes written so far by the fills in progress",
    () => cache.totals().fillingBytes,
  );
  // statfs is one cheap system call; a failure (directory gone) shows as NaN rather than breaking the scrape.
  const fs = () => statfs(cacheDir).catch(() => undefined);
  gauge("glance_cache_fs_free_bytes", "Bytes available to the node on the cache directory's filesystem", async () => {
    const s = await fs();
    return s ? s.bavail * s.bsize : NaN;
  });
  gauge("glance_cache_fs_size_bytes", "Size of the cache directory's filesystem", async () => {
    const s = await fs();
    return s ? s.blocks * s.bsize : NaN;
  });

  const hits = new Counter({
    name: "glance_cache_hits_total",
    help: "Downloads answered from the cache",
    registers: [registry],
  });
  const misses = new Counter({
    name: "glance_cache_misses_total",
    help: "Downloads answered from the source (filling the cache or not)",
    registers: [registry],
  });
  const served = new Counter({
    name: "glance_cache_served_bytes_total",
    help: "Image bytes sent to clients, by where they came from: the cache (hits) or the source (misses)",
    labelNames: ["from"],
    registers: [registry],
  });
  const ttfb = new Histogram({
    name: "glance_cache_download_ttfb_seconds",
    help: "Time from a download request to its first byte of image data, by cache hit or miss",
    labelNames: ["cache"],
    buckets: TTFB_BUCKETS,
    registers: [registry],
  });
  const fillSeconds = new Histogram({
    name: "glance_cache_fill_duration_seconds",
    help: "Duration of fills, by outcome (cached, failed, discarded)",
    labelNames: ["outcome"],
    buckets: FILL_BUCKETS,
    registers: [registry],
  });
  const fillBytes = new Counter({
    name: "glance_cache_fill_bytes_total",
    help: "Bytes written to the cache by fills",
    registers: [registry],
  });
  const tempUrls = new Counter({
    name: "glance_cache_temp_url_requests_total",
    help: "Requests with a temp URL's query, by result: accepted (valid signature) or refused (401)",
    labelNames: ["result"],
    registers: [registry],
  });
  const readyChecks = new Counter({
    name: "glance_cache_fleet_ready_checks_total",
    help: "Answers of GET /v2/x-fleet/ready, by result (ready, not_ready)",
    labelNames: ["result"],
    registers: [registry],
  });
  const requests = new Counter({
    name: "glance_cache_http_requests_total",
    help: "HTTP requests answered, by method and status code",
    labelNames: ["method", "code"],
    registers: [registry],
  });
  // Series exist from the first scrape, so dashboards and rate() see a zero rather than nothing.
  requests.inc({ method: "GET", code: "200" }, 0);
  for (const label of ["cache", "source"]) served.inc({ from: label }, 0);
  for (const label of ["accepted", "refused"]) tempUrls.inc({ result: label }, 0);
  for (const label of ["ready", "not_ready"]) readyChecks.inc({ result: label }, 0);
  for (const label of ["hit", "miss"]) ttfb.zero({ cache: label });
  for (const label of ["cached", "failed", "discarded"]) fillSeconds.zero({ outcome: label });

  cache.events.on((e) => {
    if (e.type !== "fill_finished") return;
    fillSeconds.observe({ outcome: e.outcome }, e.seconds);
    fillBytes.inc(e.bytes);
  });

  if (fleet) fleetMetrics(registry, fleet, counter, gauge);
  for (const [link, b] of Object.entries(bandwidth ?? {})) {
    gauge(`glance_cache_${link}_bandwidth_limit_bytes`, `${link}_bandwidth_limit now, bytes/s (0: none)`, () => b.rate);
    counter(
      `glance_cache_${link}_bandwidth_bytes_total`,
      `Bytes through the ${link} bandwidth limit`,
      () => b.totals.bytes,
    );
    counter(
      `glance_cache_${link}_bandwidth_wait_seconds_total`,
      `Seconds reads were held by the ${link} bandwidth limit`,
      () => b.totals.waitSeconds,
    );
  }
  if (store) {
    gauge(
      "glance_cache_store_unreadable_records",
      "Image records the embedded store could not read at start (moved aside)",
      () => store.unreadable.length,
    );
  }

  if (keystone) {
    counter(
      "glance_cache_keystone_tokens_from_memory_total",
      "Requests authenticated from the memory of validated tokens while Keystone could not be reached",
      () => keystone.outage.fromMemory,
    );
    gauge(
      "glance_cache_keystone_up",
      "1 when Keystone answered the node's last request to it",
      () => keystone.outage.reachable ? 1 : 0,
    );
  }
  if (outage) {
    counter(
      "glance_cache_kept_record_answers_total",
      "Downloads answered from kept records while the upstream Glance could not be reached",
      () => outage.view().keptAnswers,
    );
    gauge(
      "glance_cache_upstream_last_answer_seconds",
      "Seconds since the upstream Glance last answered (since start if it has not yet)",
      () => outage.view().secondsSinceAnswer,
    );
    gauge(
      "glance_cache_upstream_up",
      "0 while an outage of the upstream Glance is under way",
      () => outage.view().down ? 0 : 1,
    );
  }

  return {
    contentType: registry.contentType,
    async text() {
      return (await registry.metrics()) + (await runtimeMetrics().metrics());
    },
    activity,
    download(outcome) {
      (outcome === "hit" ? hits : misses).inc();
      activity.download(outcome);
    },
    tempUrl(accepted) {
      tempUrls.inc({ result: accepted ? "accepted" : "refused" });
    },
    fleetReady(ready) {
      readyChecks.inc({ result: ready ? "ready" : "not_ready" });
    },
    chunk(ctx: RequestContext, bytes: number) {
      if (!ctx.cache) return;
      served.inc({ from: ctx.cache === "hit" ? "cache" : "source" }, bytes);
      activity.served(bytes);
    },
    firstByte(ctx: RequestContext, seconds: number) {
      if (ctx.cache) ttfb.observe({ cache: ctx.cache }, seconds);
    },
    done(_ctx: RequestContext, record: AccessRecord) {
      requests.inc({ method: methodLabel(record.method), code: String(record.status) });
    },
  };
}

/** The methods HTTP and WebDAV clients send to an image API; any other is counted as OTHER. */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]);

/** A label value from a fixed set: a client's made-up method must not make a series of its own. */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : "OTHER";
}
