// The node's cache API as the CLI uses it: listing, queueing, deleting, clearing, node facts.
import type { NodeRow } from "../fleet/nodes.ts";
import { causeOf, type Connection } from "./connection.ts";
import { CliError } from "./errors.ts";

export interface CachedImage {
  image_id: string;
  hits: number;
  last_accessed: number;
  last_modified: number;
  size: number;
}

export interface FillProgress {
  bytes_written: number;
  expected_size: number | null;
  started_at: number;
}

export interface CacheListing {
  cached_images: CachedImage[];
  queued_images: string[];
  /** Our extension: fills in progress (absent on a plain Glance). */
  caching_images?: Record<string, FillProgress>;
}

export interface NodeStatus {
  version: string;
  uptime: number;
  source: { type: "embedded" } | { type: "upstream"; url: string };
  cache: { size: number; max_size: number; cached: number; queued: number; caching: number };
  disk: { free: number; total: number };
  fleet: unknown;
}

/** A node as GET /v2/x-fleet/nodes shows it: the fleet's own row type. */
export type FleetNode = NodeRow;

export interface FleetImage {
  cached: string[];
  queued: string[];
  filling: { node: string; bytes: number; total: number | null }[];
}

export interface FleetView {
  self: string;
  nodes: FleetNode[];
  images: Record<string, FleetImage>;
  next?: string;
}

export interface FleetTarget {
  node: string;
  node_id: number;
  site: string;
  node_status: "alive" | "stale" | "retired";
  state: "queued" | "filling" | "cached" | "failed" | "done";
  bytes: number;
  total: number | null;
  reason: string | null;
  result: unknown;
}

export interface FleetJob {
  id: string;
  action: string;
  image_id: string | null;
  site: string | null;
  nodes: string[] | null;
  created_by: string;
  created_at: number;
  state: "running" | "done";
  targets: FleetTarget[];
}

export type FleetJobSummary = Omit<FleetJob, "targets" | "nodes"> & { targets: Record<string, number> };

export type ClearTarget = "cache" | "queue" | "both";

export class CacheClient {
  constructor(private readonly conn: Connection) {}

  get url(): string {
    return this.conn.imageUrl;
  }

  async versions(): Promise<{ id: string; status: string }[]> {
    const res = await this.call("GET", "/versions");
    return ((await res.json()) as { versions: { id: string; status: string }[] }).versions;
  }

  async listing(): Promise<CacheListing> {
    return (await this.call("GET", "/v2/cache")).json() as Promise<CacheListing>;
  }

  /** Our node's facts; undefined from a node that does not have them (a plain Glance). */
  async node(): Promise<NodeStatus | undefined> {
    const res = await this.call("GET", "/v2/x-cache-node/status", [404]);
    return res.status === 404 ? undefined : ((await res.json()) as NodeStatus);
  }

  async queue(id: string): Promise<void> {
    await this.call("PUT", `/v2/cache/${encodeURIComponent(id)}`);
  }

  async remove(id: string): Promise<void> {
    await this.call("DELETE", `/v2/cache/${encodeURIComponent(id)}`);
  }

  async clear(target: ClearTarget): Promise<void> {
    // The API's "empty" header means both.
    await this.call("DELETE", "/v2/cache", [], { "x-image-cache-clear-target": target === "both" ? "" : target });
  }

  // ---- the fleet extension (/v2/x-fleet/...) ----

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

  async job(id: string): Promise<FleetJob> {
    return (await this.call("GET", `/v2/x-fleet/jobs/${encodeURIComponent(id)}`)).json() as Promise<FleetJob>;
  }

  async jobs(limit: number): Promise<FleetJobSummary[]> {
    return ((await (await this.call("GET", `/v2/x-fleet/jobs?limit=${limit}`)).json()) as { jobs: FleetJobSummary[] })
      .jobs;
  }

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
      res = await fetch(this.conn.imageUrl + path, { method, headers: all, body });
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
