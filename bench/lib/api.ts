// A server under test as the benchmark sees it, and the Glance wire API calls it makes (same for our node and Glance).
import { runOk } from "../../support/processes.ts";
import { sleep } from "./measure.ts";

export type TargetName = "node" | "deno" | "glance";

export interface Target {
  name: TargetName;
  /** e.g. "Node v20.20.2", "glance-api 2:25.1.0-2+deb12u5". */
  version: string;
  url: string;
  /** Identity headers (Glance runs without Keystone, behind a header shim). */
  headers: Record<string, string>;
  /** The process that serves the data: its CPU time and peak RSS are measured. */
  pid: number;
  stop(): Promise<void>;
}

export async function api(t: Target, method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { ...t.headers };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(`${t.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

interface Listing {
  cached_images: { image_id: string }[];
  queued_images: string[];
}

export async function listing(t: Target): Promise<Listing> {
  const res = await api(t, "GET", "/v2/cache");
  if (res.status !== 200) throw new Error(`${t.name} GET /v2/cache: ${res.status} ${await res.text()}`);
  return (await res.json()) as Listing;
}

const isCached = (l: Listing, id: string) => l.cached_images.some((c) => c.image_id === id);

export const fileUrl = (t: Target, id: string) => `${t.url}/v2/images/${id}/file`;

export async function createImage(t: Target, name: string): Promise<string> {
  const res = await api(t, "POST", "/v2/images", { name, disk_format: "raw", container_format: "bare" });
  if (res.status !== 201) throw new Error(`${t.name} POST /v2/images: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** PUT the file's bytes with curl (streamed); seconds of the PUT alone. The image must be active after. */
export async function uploadData(t: Target, id: string, file: string): Promise<number> {
  const headers = Object.entries(t.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const put = await runOk("curl", [
    "-sS",
    "-f",
    "-X",
    "PUT",
    "-H",
    "Content-Type: application/octet-stream",
    "-H",
    "Expect:",
    ...headers,
    "-T",
    file,
    fileUrl(t, id),
  ]);
  const img = (await (await api(t, "GET", `/v2/images/${id}`)).json()) as { status: string };
  if (img.status !== "active") throw new Error(`${t.name}: image ${id} is ${img.status} after its upload`);
  return put.seconds;
}

export async function deleteImage(t: Target, id: string): Promise<void> {
  await (await api(t, "DELETE", `/v2/images/${id}`)).body?.cancel();
}

/** DELETE /v2/cache, then waits until nothing is cached or queued. */
export async function clearCache(t: Target): Promise<void> {
  const res = await api(t, "DELETE", "/v2/cache");
  await res.body?.cancel();
  if (res.status >= 300) throw new Error(`${t.name} DELETE /v2/cache: ${res.status}`);
  for (let i = 0;; i++) {
    const l = await listing(t);
    if (!l.cached_images.length && !l.queued_images.length) return;
    if (i > 600) throw new Error(`${t.name}: cache not empty 60 s after DELETE /v2/cache`);
    await sleep(100);
  }
}

/**
 * PUT /v2/cache/{id}, then GET /v2/cache every `intervalMs` (start to start) until the image is listed
 * as cached: seconds from the PUT to that listing; each GET's latency (ms) goes to `latencies`.
 */
export async function putAndWait(t: Target, id: string, intervalMs: number, latencies: number[] = []): Promise<number> {
  const t0 = performance.now();
  const res = await api(t, "PUT", `/v2/cache/${id}`);
  await res.body?.cancel();
  if (res.status >= 300) throw new Error(`${t.name} PUT /v2/cache/${id}: ${res.status}`);
  for (;;) {
    const ts = performance.now();
    const l = await listing(t);
    const te = performance.now();
    latencies.push(te - ts);
    if (isCached(l, id)) return (te - t0) / 1000;
    if (te - t0 > 1200_000) throw new Error(`${t.name}: image ${id} not cached 1200 s after PUT /v2/cache`);
    const wait = intervalMs - (performance.now() - ts);
    if (wait > 0) await sleep(wait);
  }
}

export async function ensureCached(t: Target, id: string): Promise<void> {
  if (!isCached(await listing(t), id)) await putAndWait(t, id, 20);
}

/** Waits (up to a minute) until a download-triggered fill has committed. */
export async function waitListed(t: Target, id: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (isCached(await listing(t), id)) return;
    await sleep(100);
  }
  throw new Error(`${t.name}: ${id} not cached a minute after its download`);
}
