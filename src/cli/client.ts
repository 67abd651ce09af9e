// The node's cache API as the CLI uses it: listing, queueing, deleting, clearing, node facts.
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

  private async call(method: string, path: string, allowed: number[] = [], headers: Record<string, string> = {}): Promise<Response> {
    const all: Record<string, string> = { Accept: "application/json", "User-Agent": "glance-cache", ...headers };
    if (this.conn.token) all["X-Auth-Token"] = this.conn.token;
    let res: Response;
    try {
      res = await fetch(this.conn.imageUrl + path, { method, headers: all });
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
