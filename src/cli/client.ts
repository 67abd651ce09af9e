// The node's cache API as the CLI uses it: listing, queueing, deleting, clearing, node facts.
import type { NodeRow } from "../fleet/nodes.ts";
import { causeOf, type Connection } from "./connection.ts";
import { CliError } from "./errors.ts";

/** One cached image in GET /v2/cache: times in epoch seconds, size in bytes. */
export interface CachedImage {
  image_id: string;
  /** Downloads the cached copy served. */
  hits: number;
  last_accessed: number;
  /** When the copy was cached. */
  last_modified: number;
  size: number;
}

/** A fill in progress in the node's listing (caching_images); times in epoch seconds. */
export interface FillProgress {
  bytes_written: number;
  /** The image's size as its source says it; null when it does not. */
  expected_size: number | null;
  started_at: number;
}

/** GET /v2/cache: what Glance's cache API answers, and our fills in progress. */
export interface CacheListing {
  cached_images: CachedImage[];
  queued_images: string[];
  /** Our extension: fills in progress (absent on a plain Glance). */
  caching_images?: Record<string, FillProgress>;
}

/** GET /v2/x-cache-node/status: this node's own facts; sizes in bytes. */
export interface NodeStatus {
  /** The node's software version (package.json). */
  version: string;
  /** Seconds since the node started. */
  uptime: number;
  source: { type: "embedded" } | { type: "upstream"; url: string; link?: UpstreamLinkStatus };
  cache: { size: number; max_size: number; cached: number; queued: number; caching: number };
  disk: { free: number; total: number };
  /** Keystone as the node last saw it (auth keystone); null or absent otherwise. */
  keystone?: {
    reachable: boolean;
    down_since: number | null;
    remembered_tokens: number;
    authenticated_from_memory: number;
  } | null;
  /** Names of the listed images the node knows, by id (absent from older nodes). */
  names?: Record<string, string>;
  /** The fleet as the status page shows it, null for a node alone; the CLI does not read it. */
  fleet: unknown;
}

/** A node as GET /v2/x-fleet/nodes shows it: the fleet's own row type. */
export type FleetNode = NodeRow;

/** Where one image is in the fleet view: the URLs of the nodes that hold, queue or fill it. */
export interface FleetImage {
  cached: string[];
  queued: string[];
  filling: { node: string; bytes: number; total: number | null }[];
}

/** A page of GET /v2/x-fleet/view. */
export interface FleetView {
  /** The URL of the node that answered. */
  self: string;
  nodes: FleetNode[];
  images: Record<string, FleetImage>;
  /** The path of the next page; absent on the last. */
  next?: string;
}

/** One node's part of a fan-out job. */
export interface FleetTarget {
  node: string;
  node_id: number;
  site: string;
  node_status: "alive" | "stale" | "retired";
  /** A cache job's part ends cached, a clean, prune or clear's done; either may fail, or expire at the deadline. */
  state: "waiting" | "queued" | "filling" | "cached" | "failed" | "done" | "expired";
  bytes: number;
  total: number | null;
  /** Why the part failed, null otherwise. */
  reason: string | null;
  /** What a clean, prune or clear did on the node (its counts); null for a cache job. */
  result: unknown;
}

/** A fan-out job with every node's part; `nodes` and `site` are null when they did not narrow it. */
export interface FleetJob {
  id: string;
  /** cache, clean, prune or clear. */
  action: string;
  /** The image of a cache job, null for the other actions. */
  image_id: string | null;
  site: string | null;
  nodes: string[] | null;
  created_by: string;
  created_at: number;
  state: "running" | "done";
  targets: FleetTarget[];
}

/** A job in GET /v2/x-fleet/jobs: its nodes counted by state instead of listed. */
export type FleetJobSummary = Omit<FleetJob, "targets" | "nodes"> & { targets: Record<string, number> };

/** What `glance-cache clear` empties. */
export type ClearTarget = "cache" | "queue" | "both";

/** A pin as GET /v2/x-cache-node/pins lists it. */
export interface PinRow {
  image_id: string;
  pinned_at: number;
  size: number;
  cached: boolean;
}

/**
 * The node's HTTP API as the CLI's commands use it. Any failure (unreachable, an error status) is a CliError
 * carrying the node's own message.
 */
export class CacheClient {
  constructor(private readonly conn: Connection) {}

  /** The node's root URL. */
  get url(): string {
    return this.conn.imageUrl;
  }

  /** The API versions the node offers (GET /versions). */
  async versions(): Promise<{ id: string; status: string }[]> {
    const res = await this.call("GET", "/versions");
    return ((await res.json()) as { versions: { id: string; status: string }[] }).versions;
  }

  /** Cached images, fills in progress and the queue (GET /v2/cache). */
  async listing(): Promise<CacheListing> {
    return (await this.call("GET", "/v2/cache")).json() as Promise<CacheListing>;
  }

  /** Our node's facts; undefined from a node that does not have them (a plain Glance). */
  async node(): Promise<NodeStatus | undefined> {
    const res = await this.call("GET", "/v2/x-cache-node/status", [404]);
    return res.status === 404 ? undefined : ((await res.json()) as NodeStatus);
  }

  /** Queues an image for caching. */
  async queue(id: string): Promise<void> {
    await this.call("PUT", `/v2/cache/${encodeURIComponent(id)}`);
  }

  /** Removes an image from the cache or the queue; a fill in progress stops. */
  async remove(id: string): Promise<void> {
    await this.call("DELETE", `/v2/cache/${encodeURIComponent(id)}`);
  }

  /** Pins an image: cached now if it is not, and never evicted (PUT /v2/x-cache-node/pins/{id}). */
  async pin(id: string): Promise<void> {
    await this.call("PUT", `/v2/x-cache-node/pins/${encodeURIComponent(id)}`);
  }

  /** Lets a pinned image go. */
  async unpin(id: string): Promise<void> {
    await this.call("DELETE", `/v2/x-cache-node/pins/${encodeURIComponent(id)}`);
  }

  /** The pinned images (GET /v2/x-cache-node/pins). */
  async pins(): Promise<PinRow[]> {
    return ((await (await this.call("GET", "/v2/x-cache-node/pins")).json()) as { pins: PinRow[] }).pins;
  }

  /** Empties the cache, the queue, or both. */
  async clear(target: ClearTarget): Promise<void> {
    // The API's "empty" header means both.
    await this.call("DELETE", "/v2/cache", [], { "x-image-cache-clear-target": target === "both" ? "" : target });
  }

  /** A temp URL that downloads the image without a token for `ttl` seconds (the node's default if undefined). */
  async tempUrl(id: string, ttl?: number): Promise<{ url: string; expires: number }> {
    const body = JSON.stringify(ttl === undefined ? { image_id: id } : { image_id: id, ttl });
    const res = await this.call("POST", "/v2/x-cache-node/temp-urls", [], { "Content-Type": "application/json" }, body);
    return res.json() as Promise<{ url: string; expires: number }>;
  }

  /** The node's bandwidth limits (bytes/s, 0: none); `set` changes those it names first (PUT). */
  async bandwidth(set?: { upstream?: number; peer?: number }): Promise<{ upstream: number; peer: number }> {
    const path = "/v2/x-cache-node/bandwidth";
    const res = set
      ? await this.call("PUT", path, [], { "Content-Type": "application/json" }, JSON.stringify(set))
      : await this.call("GET", path);
    return res.json() as Promise<{ upstream: number; peer: number }>;
  }

  // ---- the fleet extension (/v2/x-fleet/...) ----

  /** Every node of the fleet, retired ones included. */
  async fleetNodes(): Promise<FleetNode[]> {
    return ((await (await this.call("GET", "/v2/x-fleet/nodes")).json()) as { nodes: FleetNode[] }).nodes;
  }

  /** One page of the fleet view: `path` is a `next` link from the previous page, or built from the options. */
  async fleetView(q: { imageId?: string; limit?: number; path?: string }): Promise<FleetView> {
    const params = new URLSearchParams();
    if (q.imageId) params.set("image_id", q.imageId);
    if (q.limit) params.set("limit", String(q.limit));
    const qs = params.toString();
    const path = q.path ?? `/v2/x-fleet/view${qs ? `?${qs}` : ""}`;
    return (await this.call("GET", path)).json() as Promise<FleetView>;
  }

  /** Whether an image is cached on every alive node (of `site`): GET /v2/x-fleet/ready. */
  async fleetReady(imageId: string, site?: string): Promise<FleetReadiness> {
    const params = new URLSearchParams({ image_id: imageId });
    if (site !== undefined) params.set("site", site);
    return (await this.call("GET", `/v2/x-fleet/ready?${params}`)).json() as Promise<FleetReadiness>;
  }

  /** Starts a fan-out job; `body` is POST /v2/x-fleet/jobs's document (image_id, and site or nodes). */
  async createJob(body: Record<string, unknown>): Promise<FleetJob> {
    const res = await this.call(
      "POST",
      "/v2/x-fleet/jobs",
      [],
      { "Content-Type": "application/json" },
      JSON.stringify(body),
    );
    return res.json() as Promise<FleetJob>;
  }

  /** One job, with every node's part. */
  async job(id: string): Promise<FleetJob> {
    return (await this.call("GET", `/v2/x-fleet/jobs/${encodeURIComponent(id)}`)).json() as Promise<FleetJob>;
  }

  /** The newest `limit` jobs, summarized. */
  async jobs(limit: number): Promise<FleetJobSummary[]> {
    return ((await (await this.call("GET", `/v2/x-fleet/jobs?limit=${limit}`)).json()) as { jobs: FleetJobSummary[] })
      .jobs;
  }

  /** Retires a fleet node: it gets no more work until it restarts. */
  async retire(nodeId: number): Promise<void> {
    await this.call("DELETE", `/v2/x-fleet/nodes/${nodeId}`);
  }

  private async call(
    method: string,
    path: string,
    allowed: number[] = [],
    headers: Record<string, string> = {},
    body?: string,
  ): Promise<Response> {
    const all: Record<string, string> = { Accept: "application/json", "User-Agent": "glance-cache", ...headers };
    if (this.conn.token) all["X-Auth-Token"] = this.conn.token;
    let res: Response;
    try {
      res = await (this.conn.send ?? fetch)(this.conn.imageUrl + path, { method, headers: all, body });
    } catch (err) {
      throw new CliError(`${this.conn.imageUrl} cannot be reached: ${causeOf(err)}`);
    }
    if (res.ok || allowed.includes(res.status)) return res;
    throw new CliError(`${method} ${this.conn.imageUrl}${path}: ${res.status} ${await errorMessage(res)}`.trim());
  }
}

/** Glance's JSON error body carries the message with webob's "<br /><br />" tail. */
async function errorMessage(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { message?: string; title?: string };
    return (body.message ?? body.title ?? "").replace(/<br \/>[\s\S]*$/, "").trim();
  } catch {
    return text.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim().slice(0, 200);
  }
}

/** GET /v2/x-fleet/ready's answer. */
export interface FleetReadiness {
  ready: boolean;
  nodes: number;
  cached: number;
  missing: string[];
}

/** The upstream's link in the status document (absent from nodes older than this field). */
export interface UpstreamLinkStatus {
  state: "up" | "down";
  /** Seconds since the epoch when the outage started; null while up. */
  down_since: number | null;
  /** Seconds since the upstream last answered. */
  last_answer_seconds: number;
  /** Whether cached images are being served from their kept records now. */
  serving_cached: boolean;
  /** Downloads answered from kept records since the node started. */
  kept_answers: number;
  /** Cached images with a kept record. */
  kept_records: number;
}
