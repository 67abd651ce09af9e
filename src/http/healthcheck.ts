// GET/HEAD /healthcheck as oslo.middleware's healthcheck answers it: 200 "OK" or 503 with the reasons; JSON on request.
import { OPTIONS } from "../config/options.ts";
import { existsSync } from "node:fs";
import { rm, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import type { UnreadableRecord } from "../images/record_files.ts";
import type { Fetch } from "../platform/tls_fetch.ts";
import type { OutageView } from "../images/upstream_outage.ts";

/** One check's verdict, in oslo.middleware's terms. */
export interface CheckResult {
  /** oslo's "class": which check spoke. */
  name: string;
  /** False makes /healthcheck a 503. */
  available: boolean;
  /** What a load balancer sees: "OK", or a short upper-case reason. */
  reason: string;
  /** The longer explanation, shown with ?detailed. */
  details: string;
}

/** One health check; a check that throws counts as failed. */
export type Check = () => Promise<CheckResult>;

/** How the Healthcheck reuses its answers. */
export interface HealthcheckOptions {
  /** How long one round of checks is reused (default 2 s): a load balancer probing often costs nothing. */
  cacheSeconds?: number;
}

/** One round of checks at a time, reused for cacheSeconds; the answer shaped as oslo.middleware shapes it. */
export class Healthcheck {
  private last: { at: number; results: Promise<CheckResult[]> } | undefined;
  private readonly cacheMs: number;

  constructor(private readonly checks: Check[], opts: HealthcheckOptions = {}) {
    this.cacheMs = (opts.cacheSeconds ?? 2) * 1000;
  }

  /** The last round's results, or a new round's when that one is older than cacheSeconds. */
  results(): Promise<CheckResult[]> {
    if (!this.last || performance.now() - this.last.at > this.cacheMs) {
      this.last = {
        at: performance.now(),
        results: Promise.all(this.checks.map((c) => c().catch((err) => failed("Check", err)))),
      };
    }
    return this.last.results;
  }

  /** GET or HEAD /healthcheck: 200 (HEAD 204) or 503, in plain text or, when asked for, JSON. */
  async respond(request: Request): Promise<Response> {
    const results = await this.results();
    const healthy = results.every((r) => r.available);
    const status = healthy ? 200 : 503;
    if (request.method === "HEAD") {
      return new Response(null, {
        status: healthy ? 204 : 503,
        headers: { "Content-Type": "text/plain; charset=UTF-8" },
      });
    }
    const url = new URL(request.url);
    const detailed = url.searchParams.has("detailed") &&
      !/^(0|false|no)$/i.test(url.searchParams.get("detailed") ?? "");
    // Unhealthy: the failing checks' reasons; healthy: one "OK" (oslo lists one reason per backend).
    const reasons = healthy ? ["OK"] : results.filter((r) => !r.available).map((r) => r.reason);
    if (detailed || prefersJson(request.headers.get("accept"))) {
      const body = detailed
        ? {
          detailed: true,
          now: new Date().toISOString().replace("T", " ").replace("Z", ""),
          reasons: results.map((r) => ({ class: r.name, details: r.details, reason: r.reason })),
        }
        : { detailed: false, reasons };
      return new Response(JSON.stringify(body, null, 4), { status, headers: { "Content-Type": "application/json" } });
    }
    return new Response(reasons.join("\n"), { status, headers: { "Content-Type": "text/plain; charset=UTF-8" } });
  }
}

/** oslo offers text/plain, then text/html, then application/json: JSON only when the client prefers it to plain text. */
function prefersJson(accept: string | null): boolean {
  return accept !== null && qValue(accept, "application/json") > qValue(accept, "text/plain");
}

/** The q-value the Accept header gives a media type (most specific matching range wins), 0 when none matches. */
function qValue(accept: string, type: string): number {
  let specificity = -1;
  let value = 0;
  for (const part of accept.split(",")) {
    const [range, ...params] = part.trim().toLowerCase().split(";").map((s) => s.trim());
    const s = range === type ? 2 : range === `${type.split("/")[0]}/*` ? 1 : range === "*/*" ? 0 : -1;
    if (s <= specificity) continue;
    const qp = params.find((p) => p.startsWith("q="));
    specificity = s;
    value = qp ? Number(qp.slice(2)) || 0 : 1;
  }
  return value;
}

function failed(name: string, err: unknown): CheckResult {
  const code = (err as { code?: string })?.code;
  return {
    name,
    available: false,
    reason: `${name} failed`,
    details: code ?? (err instanceof Error ? err.name : "error"),
  };
}

/** Fills write into incomplete/ and commit into the cache directory: both must take a new file. */
export function cacheWritableCheck(dirs: string[]): Check {
  return async () => {
    const name = "CacheDirectoryCheck";
    for (const dir of dirs) {
      const probe = join(dir, `.healthcheck-${process.pid}`);
      try {
        await writeFile(probe, "");
        await rm(probe, { force: true });
      } catch (err) {
        const code = (err as { code?: string }).code ?? "error";
        return {
          name,
          available: false,
          reason: "CACHE DIRECTORY NOT WRITABLE",
          details: `cannot create a file in the cache directory (${code})`,
        };
      }
    }
    return { name, available: true, reason: "OK", details: "the cache directory takes new files" };
  };
}

/** The cache's filesystem keeps at least minFreePercent of its size available. */
export function diskSpaceCheck(dir: string, minFreePercent: number): Check {
  return async () => {
    const name = "DiskSpaceCheck";
    const s = await statfs(dir);
    const free = s.bavail * s.bsize;
    const size = s.blocks * s.bsize;
    const percent = size > 0 ? (100 * free) / size : 0;
    const details = `${gib(free)} GiB free of ${gib(size)} GiB (${percent.toFixed(1)}%), minimum ${minFreePercent}%`;
    if (percent < minFreePercent) return { name, available: false, reason: "CACHE DISK NEARLY FULL", details };
    return { name, available: true, reason: "OK", details };
  };
}

/** An HTTP service we depend on answers (any status below 500) within timeoutMs. */
export function reachableCheck(name: string, what: string, url: string, timeoutMs = 3000, send?: Fetch): Check {
  return async () => {
    try {
      const res = await (send ?? fetch)(url, { signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      if (res.status >= 500) {
        return {
          name,
          available: false,
          reason: `${what} UNAVAILABLE`,
          details: `${what.toLowerCase()} answered ${res.status}`,
        };
      }
      return { name, available: true, reason: "OK", details: `${what.toLowerCase()} answered ${res.status}` };
    } catch (err) {
      return {
        name,
        available: false,
        reason: `${what} UNREACHABLE`,
        details: `${what.toLowerCase()} did not answer (${connectError(err)})`,
      };
    }
  };
}

/** oslo's disable_by_file: an operator drains the node by creating the file. */
export function disableByFileCheck(path: string): Check {
  return async () => {
    const name = "DisableByFileHealthcheck";
    if (existsSync(path)) {
      return { name, available: false, reason: "DISABLED BY FILE", details: "the disable file exists" };
    }
    return { name, available: true, reason: "OK", details: "the disable file does not exist" };
  };
}

/** Node puts the errno in cause.code; Deno only says it in the message (which also holds the URL: not shown). */
function connectError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.cause?.code) return e.cause.code;
  if (e.name === "TimeoutError") return "timed out";
  if (/connection refused/i.test(`${e.message} ${e.cause?.message}`)) return "ECONNREFUSED";
  return e.name ?? "error";
}

function gib(n: number): string {
  return (n / 1024 ** 3).toFixed(1);
}

/** What the node's health depends on. */
export interface NodeHealthOptions {
  /** Directories fills write and commit into. */
  cacheDirs: string[];
  /** 503 below this much free space on the cache's filesystem (%). */
  minFreePercent?: number;
  /** The upstream Glance, when the node is in front of one. */
  upstreamUrl?: string;
  /** How the upstream is asked (its client's CA bundle); default global fetch. */
  upstreamFetch?: Fetch;
  /** The upstream's link (upstream_outage.ts): told what the probe found; while it serves the cache, the node is up. */
  upstreamLink?: UpstreamLink;
  /** Keystone's v3 URL, when tokens are validated or the node has service credentials. */
  keystoneUrl?: string;
  /** How Keystone is asked (cafile, insecure); default global fetch. */
  keystoneFetch?: Fetch;
  /** oslo's disable_by_file_path. */
  disableByFilePath?: string;
  /** Image records the embedded store found unreadable at start and moved aside. */
  unreadableRecords?: UnreadableRecord[];
}

/** The node's checks: the cache takes files and has room, the services it depends on answer, not drained. */
export function nodeHealthChecks(opts: NodeHealthOptions): Check[] {
  const checks = [
    cacheWritableCheck(opts.cacheDirs),
    diskSpaceCheck(opts.cacheDirs[0], opts.minFreePercent ?? OPTIONS.healthcheck.fields.minFreePercent.default),
  ];
  if (opts.upstreamUrl) {
    const url = `${opts.upstreamUrl.replace(/\/+$/, "")}/versions`;
    const probe = reachableCheck("UpstreamGlanceCheck", "GLANCE", url, 3000, opts.upstreamFetch);
    checks.push(opts.upstreamLink ? upstreamCheck(probe, opts.upstreamLink) : probe);
  }
  if (opts.keystoneUrl) {
    const probe = reachableCheck("KeystoneCheck", "KEYSTONE", opts.keystoneUrl, 3000, opts.keystoneFetch);
    checks.push(keystoneCheck(probe));
  }
  if (opts.disableByFilePath) checks.push(disableByFileCheck(opts.disableByFilePath));
  if (opts.unreadableRecords) checks.push(recordsCheck(opts.unreadableRecords));
  return checks;
}

/** The upstream's link as the health check sees it. */
export interface UpstreamLink {
  answered(): void;
  failed(why: string): void;
  view(): OutageView;
}

/**
 * The upstream probe, told to the link. An unreachable upstream does not make the node unavailable while it
 * serves its cache from kept records (a load balancer must not pull it); `?detailed` still says GLANCE UNREACHABLE.
 */
export function upstreamCheck(probe: Check, link: UpstreamLink): Check {
  return async () => {
    const result = await probe();
    if (result.available) {
      link.answered();
      return result;
    }
    link.failed(result.details);
    const view = link.view();
    if (!view.servingCached) return result;
    const since = view.downSince === null ? 0 : Math.floor(Date.now() / 1000) - view.downSince;
    return {
      ...result,
      available: true,
      details: `${result.details}; cached images are served from their kept records (outage of ${since} s)`,
    };
  };
}

/**
 * Keystone's check: unreachable, the node still serves the callers whose tokens it validated before (memory), so
 * it stays available and `?detailed` tells the outage; answering 5xx is still a failure of the check's probe.
 */
export function keystoneCheck(probe: Check): Check {
  return async () => {
    const result = await probe();
    if (result.available) return result;
    return { ...result, available: true, details: `${result.details}; tokens validated before are served from memory` };
  };
}

/**
 * Records moved aside at start: the node serves every other image, so it stays available, but the details of
 * ?detailed name each one for the operator.
 */
export function recordsCheck(unreadable: UnreadableRecord[]): Check {
  return async () => ({
    name: "ImageRecordsCheck",
    available: true,
    reason: "OK",
    details: unreadable.length
      ? `${unreadable.length} unreadable image record(s) moved aside at start: ${
        unreadable.map((u) => `${u.file} -> ${u.movedTo}`).join(", ")
      }`
      : "every image record was read",
  });
}
