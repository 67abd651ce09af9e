// Test helpers: a cache node on a loopback port over a temporary data directory, and small HTTP shortcuts.
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type App, type AppOptions, createApp } from "../../src/app.ts";
import { runtimeServe, type ServeOptions, type ServeTls } from "../../src/adapter/serve.ts";
import { clientFetch } from "../../src/platform/tls_fetch.ts";

export const ADMIN = {
  "X-Identity-Status": "Confirmed",
  "X-Roles": "admin",
  "X-Tenant-Id": "adminproj",
  "X-User-Id": "adminuser",
};
export const MEMBER = {
  "X-Identity-Status": "Confirmed",
  "X-Roles": "member",
  "X-Tenant-Id": "memberproj",
  "X-User-Id": "memberuser",
};

export interface Running {
  url: string;
  dir: string;
  app: App;
  /** Stops the server and the app; the data directory stays (for restarts). */
  stop(): Promise<void>;
  /** Stops and removes the data directory. */
  close(): Promise<void>;
  /** fetch against the node with admin identity unless headers say otherwise. */
  req(path: string, init?: RequestInit & { as?: Record<string, string> }): Promise<Response>;
}

export async function tempDir(prefix = "gcn-test-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * A node on loopback (`port` 0: any free one) over `dir`, or over a new temporary directory. With `tls` it serves
 * HTTPS, and `req` trusts `tls.ca`; `limits` are the server's bounds on connections (headersTimeout,
 * maxConnections), the program's defaults when absent.
 */
export async function start(
  options: Partial<AppOptions> & { tls?: ServeTls & { ca: string } } = {},
  dir?: string,
  port = 0,
  limits: Omit<ServeOptions, "host" | "port" | "tls"> = {},
): Promise<Running> {
  const { tls, ...opts } = options;
  const dataDir = dir ?? (await tempDir());
  const app = await createApp({ auth: "headers", log: () => {}, ...opts, dataDir });
  const serve = await runtimeServe();
  const listening = await serve(app.fetch, { host: "127.0.0.1", port, tls, ...limits });
  const url = `${tls ? "https" : "http"}://127.0.0.1:${listening.port}`;
  const send = tls ? clientFetch({ ca: tls.ca }) : fetch;
  const stop = async () => {
    await listening.close();
    await app.close();
  };
  return {
    url,
    dir: dataDir,
    app,
    stop,
    async close() {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
    req(path, init = {}) {
      const { as = ADMIN, headers, ...rest } = init;
      return send(url + path, { ...rest, headers: { ...as, ...(headers as Record<string, string>) } });
    },
  };
}

export function bytes(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

export const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

/** Creates an image (as `as`) and uploads `data` unless it is undefined. */
export async function createImage(
  node: Running,
  data: Uint8Array | undefined,
  fields: Record<string, unknown> = {},
  as: Record<string, string> = ADMIN,
): Promise<string> {
  const res = await node.req("/v2/images", {
    as,
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "test", disk_format: "raw", container_format: "bare", ...fields }),
  });
  if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  if (data) {
    const up = await node.req(`/v2/images/${id}/file`, {
      as,
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: data as unknown as BodyInit,
    });
    if (up.status !== 204) throw new Error(`upload: ${up.status} ${await up.text()}`);
  }
  return id;
}

export interface Listing {
  cached_images: { image_id: string; hits: number; last_accessed: number; last_modified: number; size: number }[];
  queued_images: string[];
}

export async function listing(node: Running): Promise<Listing> {
  const res = await node.req("/v2/cache");
  if (res.status !== 200) throw new Error(`list: ${res.status}`);
  return (await res.json()) as Listing;
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The rest of a stream's bytes, after the chunks the test has already read (`first`). */
export async function readAll(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  first: Uint8Array[] = [],
): Promise<Uint8Array> {
  const chunks = [...first];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  return concat(chunks);
}

/** The chunks one after the other, in one array. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

export const waitCached = (node: Running, id: string, timeoutMs?: number) =>
  waitFor(`${id} cached`, async () => (await listing(node)).cached_images.find((c) => c.image_id === id), timeoutMs);

/** Every file under dir with its size: compare before and after to prove nothing was touched. */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string) {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(`${p.slice(dir.length)} ${(await stat(p)).size}`);
    }
  }
  await walk(dir);
  return out.sort();
}

/** PUT /v2/cache/{id} on the node, as admin. */
export const put = (node: Running, id: string) => node.req(`/v2/cache/${id}`, { method: "PUT" });

/** DELETE /v2/cache/{id} on the node, as admin. */
export const del = (node: Running, id: string) => node.req(`/v2/cache/${id}`, { method: "DELETE" });

/** The node's cache directory, or a path in it. */
export const cacheDir = (node: Running, sub = "") => join(node.dir, "cache", sub);
